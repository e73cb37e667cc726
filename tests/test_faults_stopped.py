"""Faults: a stopped (or timed-out) run is cleaned up (issue 11). StopExecution runs no Catch,
so CleanupTasks never runs; the stack's ExecutionEndedUncleanRule sends the execution's status
change to the cleanup Lambda instead. moto's EventBridge neither receives Step Functions'
events nor invokes Lambda targets, so the test plays EventBridge's part with the deployed
rule: its pattern must match the event, and its input transformer makes the cleanup's input,
which goes to the rule's target as EventBridge would send it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from conftest import wait_for_end
from moto.events.models import EventPattern

from bisonflow.ec2_tasks import TAG_EXECUTION
from bisonflow.layout import MonthLayout
from bisonflow.local import sfn_stop
from bisonflow.local.runtime import LocalRuntime
from bisonflow.month_lock import lock_key

MONTH = "2023-08"


def cleanup_rule(rt: LocalRuntime) -> tuple[dict, dict]:
    """The deployed rule whose target is the cleanup Lambda, and that target."""
    events = rt.clients["events"]
    for rule in events.list_rules()["Rules"]:
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if "cleanup_task" in target["Arn"]:
                return rule, target
    raise AssertionError("no rule targets the cleanup Lambda")


def transformed(transformer: dict[str, Any], event: dict[str, Any]) -> str:
    """An input transformer's output for `event`: each <name> replaced by its path's value
    (EventBridge User Guide, "Amazon EventBridge input transformation")."""
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        values[name] = value
    return re.sub(r"<(\w+)>", lambda m: str(values[m.group(1)]), transformer["InputTemplate"])


def test_a_stopped_run_leaves_nothing_once_its_rule_ran_the_cleanup(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    runtime.publish_snapshot(MONTH)
    runtime.agent.paused = True  # the instance stays idle: the task never writes anything
    try:
        arn = runtime.start_execution(MONTH)
        name = arn.rsplit(":", 1)[1]
        ec2 = runtime.clients["ec2"]
        deadline = time.monotonic() + 150  # generous: the suite shares two cores
        while True:
            found = ec2.describe_instances(
                Filters=[
                    {"Name": f"tag:{TAG_EXECUTION}", "Values": [name]},
                    {"Name": "instance-state-name", "Values": ["pending", "running"]},
                ]
            )["Reservations"]
            if found:
                break
            assert time.monotonic() < deadline, "the run never launched its task"
            time.sleep(0.2)
        instance = found[0]["Instances"][0]["InstanceId"]
        runtime.clients["stepfunctions"].stop_execution(executionArn=arn)
        description = wait_for_end(runtime, arn, timeout=90)
    finally:
        runtime.agent.paused = False
    assert description["status"] == "ABORTED", (description.get("error"), description.get("cause"))

    rule, target = cleanup_rule(runtime)
    event = {
        "version": "0",
        "id": "1",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "account": arn.split(":")[4],
        "region": "us-east-1",
        "time": "2023-08-02T06:00:00Z",
        "resources": [arn],
        "detail": {
            "executionArn": arn,
            "stateMachineArn": runtime.deployment.state_machine_arn,
            "name": name,
            "status": "ABORTED",
        },
    }
    assert EventPattern.load(rule["EventPattern"]).matches_event(event)
    failed = {**event, "detail": {**event["detail"], "status": "FAILED"}}
    assert not EventPattern.load(rule["EventPattern"]).matches_event(failed)  # has its Catch
    response = runtime.clients["lambda"].invoke(
        FunctionName=target["Arn"], Payload=transformed(target["InputTransformer"], event)
    )
    result = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, result
    assert result == {
        "terminated": [instance],
        "deleted_tokens": 1,
        "released_locks": [lock_key(MonthLayout.for_month(MONTH))],
    }


def test_the_stop_seam_is_installed_on_its_target(runtime: LocalRuntime) -> None:
    """asl_fixes installs sfn_stop; a moto upgrade that moves Environment.set_error fails
    here (the workflow test above fails FAILED / States.Timeout without it)."""
    for owner, attribute in sfn_stop.PATCHED:
        assert owner.__dict__[attribute] is sfn_stop.set_error
