"""The deployed schedule, fired as EventBridge Scheduler fires it, runs the month of its
scheduled time as the schedule's role."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from conftest import wait_for_end

from bisonflow.layout import MonthLayout
from bisonflow.local.emulator import CREDENTIALS, REGION
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.scheduler import ScheduleFireError, fire, target_call, with_context
from bisonflow.steps.scheduled_start import scheduled_execution_arn


def test_context_attributes_are_filled_in() -> None:
    text = (
        '{"t": "<aws.scheduler.scheduled-time>", "a": "<aws.scheduler.schedule-arn>", '
        '"e": "<aws.scheduler.execution-id>", "n": "<aws.scheduler.attempt-number>"}'
    )
    filled = with_context(
        text,
        {"scheduled-time": "2026-04-02T06:00:00Z", "schedule-arn": "arn:s", "execution-id": "x1",
         "attempt-number": "1"},
    )  # fmt: skip
    assert json.loads(filled) == {"t": "2026-04-02T06:00:00Z", "a": "arn:s", "e": "x1", "n": "1"}


def test_targets_are_the_calls_scheduler_makes() -> None:
    alias = "arn:aws:states:us-east-1:123456789012:stateMachine:bison-workflow:live"
    assert target_call(alias, '{"a": 1}') == (
        "stepfunctions",
        "start_execution",
        {"stateMachineArn": alias, "input": '{"a": 1}'},
    )
    universal = "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert target_call(universal, '{"stateMachineArn": "m"}') == (
        "stepfunctions",
        "start_execution",
        {"stateMachineArn": "m"},
    )
    # Scheduler invokes a Lambda target asynchronously (Lambda Developer Guide, "Invoke a
    # Lambda function on a schedule").
    function = "arn:aws:lambda:us-east-1:123456789012:function:bisonflow-start_month:live"
    assert target_call(function, '{"a": 1}') == (
        "lambda",
        "invoke",
        {"FunctionName": function, "InvocationType": "Event", "Payload": b'{"a": 1}'},
    )
    with pytest.raises(ScheduleFireError, match="only the Step Functions and Lambda templated"):
        target_call("arn:aws:sqs:us-east-1:123456789012:queue", None)


def scheduled_runs(runtime: LocalRuntime, month: str) -> list[dict]:
    """The machine's executions named as StartMonth names `month`'s scheduled run."""
    assert runtime.deployment
    pages = (
        runtime.clients["stepfunctions"]
        .get_paginator("list_executions")
        .paginate(stateMachineArn=runtime.deployment.state_machine_arn)
    )
    return [e for p in pages for e in p["executions"] if e["name"] == f"scheduled-{month}"]


def test_the_fired_schedule_processes_its_scheduled_month_once(runtime: LocalRuntime) -> None:
    """Fired as Scheduler fires it (StartMonth's alias, as the schedule's role), then fired
    again for the same scheduled time while the run runs and after it ended, as a retry
    would: one execution, scheduled-2028-04, processes the month."""
    assert runtime.deployment
    # 2028-04: a month no other test file publishes (test files share a runtime per worker, and
    # a month published already would end AlreadyProcessed).
    runtime.publish_snapshot("2028-04")
    when = datetime(2028, 4, 2, 6, 0, tzinfo=UTC)
    fired = runtime.fire_schedule(when)
    assert fired.input == '{"scheduled_time": "2028-04-02T06:00:00Z"}'
    start_month = runtime.clients["lambda"].get_alias(
        FunctionName=f"{runtime.deployment.stack_name}-start_month", Name="live"
    )
    assert fired.target_arn == start_month["AliasArn"]
    assert fired.role_arn.split("/")[-1].startswith(f"{runtime.deployment.stack_name}-ScheduleRole")
    assert fired.response["StatusCode"] == 202  # an asynchronous invocation: no payload
    arn = scheduled_execution_arn(
        runtime.deployment.outputs["StateMachineAliasArn"], fired.scheduled_time
    )
    (run,) = scheduled_runs(runtime, "2028-04")
    assert (run["executionArn"], run["status"]) == (arn, "RUNNING")
    runtime.fire_schedule(when)  # a retry while it runs gets the running execution back
    assert scheduled_runs(runtime, "2028-04") == [run]
    description = wait_for_end(runtime, arn, timeout=240)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    runtime.fire_schedule(when)  # after it ended: ExecutionAlreadyExists, handled by StartMonth
    (ended,) = scheduled_runs(runtime, "2028-04")
    assert (ended["executionArn"], ended["startDate"], ended["status"]) == (
        arn,
        run["startDate"],
        "SUCCEEDED",
    )
    assert json.loads(description["input"]) == {"scheduled_time": "2028-04-02T06:00:00Z"}
    assert json.loads(description["output"])["month"] == "2028-04"
    marker = MonthLayout.for_month("2028-04").done_marker_key
    runtime.clients["s3"].head_object(Bucket=runtime.deployment.bucket, Key=marker)


def test_a_missing_schedule_is_one_clear_error(runtime: LocalRuntime) -> None:
    operator = boto3.Session(region_name=REGION, **CREDENTIALS)
    with pytest.raises(ScheduleFireError, match="schedule nope: ResourceNotFoundException"):
        fire(operator, runtime.endpoint_url, "nope", datetime.now(UTC))


def test_start_execution_takes_the_alias_arn_as_step_functions_does(
    runtime: LocalRuntime,
) -> None:
    """The schedule's target is the `live` alias: moto alone cannot start it."""
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    alias = runtime.deployment.outputs["StateMachineAliasArn"]
    arn = sfn.start_execution(stateMachineArn=alias, input='{"month": "2025-01"}')["executionArn"]
    description = wait_for_end(runtime, arn)
    assert description["stateMachineArn"] == runtime.deployment.state_machine_arn
    assert json.loads(description["input"]) == {"month": "2025-01"}
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist, match="Alias Does Not Exist"):
        sfn.start_execution(stateMachineArn=alias.rsplit(":", 1)[0] + ":nosuchalias")
