"""StartMonth (functions/start_month.py, bisonflow.steps.scheduled_start): the monthly schedule's
target starts one execution per month, named after the month; retries start nothing more.

The Lambda is called directly against the emulator with its deployed environment: it starts
the state machine's `live` alias (through the StartExecution seam, bisonflow.local.sfn.start)
for a month no test publishes and whose scheduled time is ahead, so the run waits for its
snapshot (costing nothing) while the retries are tried, and is stopped at the end."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import wait_for_end, waiting_for_its_snapshot

from bisonflow.config import ConfigError
from bisonflow.layout import MonthError, execution_name_problem
from bisonflow.local.credentials import role_credentials
from bisonflow.local.emulator import CREDENTIALS, REGION
from bisonflow.local.lambdas.destinations import (
    FailedInvocation,
    deliver_failure,
    invocation_record,
)
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.scheduler import ScheduleFireError, fire
from bisonflow.schemas import SchemaViolation
from bisonflow.steps.scheduled_start import (
    execution_arn,
    scheduled_execution_arn,
    scheduled_execution_name,
)
from functions import start_month

ALIAS = "arn:aws:states:us-east-1:123456789012:stateMachine:bisonflow-workflow:live"
#: A month no test publishes, scheduled ahead of now: its run waits for the snapshot.
MONTH = "2031-07"
SCHEDULED = "2031-07-02T06:00:00Z"


def test_the_month_decides_the_name_and_where_the_execution_is() -> None:
    assert scheduled_execution_name("2028-04") == "scheduled-2028-04"
    assert execution_name_problem(scheduled_execution_name("2028-04")) is None
    expected = "arn:aws:states:us-east-1:123456789012:execution:bisonflow-workflow:x"
    for machine in (ALIAS, ALIAS.removesuffix(":live"), ALIAS.removesuffix("live") + "3"):
        assert execution_arn(machine, "x") == expected
    # The month is the scheduled time's month in UTC, as CheckGbif derives it.
    late = scheduled_execution_arn(ALIAS, "2026-12-31T23:30:00-05:00")
    assert late.endswith(":execution:bisonflow-workflow:scheduled-2027-01")
    with pytest.raises(ValueError, match="is not a state machine, alias or version ARN"):
        execution_arn("arn:aws:lambda:us-east-1:123456789012:function:f", "x")


def test_a_retried_or_repeated_start_starts_nothing_more(aws_env: LocalRuntime) -> None:
    sfn = aws_env.clients["stepfunctions"]
    first = start_month.handler({"scheduled_time": SCHEDULED}, None)
    try:
        assert first["started"] is True and first["month"] == MONTH
        assert first["execution"] == scheduled_execution_arn(
            aws_env.deployment.state_machine_arn, SCHEDULED
        )
        waiting_for_its_snapshot(sfn, first["execution"])
        # A retry with the same input while it runs: StartExecution returns the running one.
        again = start_month.handler({"scheduled_time": SCHEDULED}, None)
        assert again["execution"] == first["execution"] and again["started"] is True
        # Another scheduled time of the same month: ExecutionAlreadyExists, handled.
        other = start_month.handler({"scheduled_time": "2031-07-20T06:00:00Z"}, None)
        assert other["started"] is False and other["execution"] == first["execution"]
        assert "started nothing" in other["reason"]
        named = [
            e
            for e in sfn.list_executions(stateMachineArn=aws_env.deployment.state_machine_arn)[
                "executions"
            ]
            if e["name"] == f"scheduled-{MONTH}"
        ]
        assert len(named) == 1
    finally:
        sfn.stop_execution(executionArn=first["execution"])
        wait_for_end(aws_env, first["execution"], timeout=90)
    # Once it has ended, even the same input starts nothing.
    closed = start_month.handler({"scheduled_time": SCHEDULED}, None)
    assert closed["started"] is False and closed["execution"] == first["execution"]
    assert sfn.describe_execution(executionArn=first["execution"])["status"] == "ABORTED"


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        ({}, SchemaViolation, "scheduled_time"),
        ({"scheduled_time": "yesterday"}, SchemaViolation, r"\$\.scheduled_time"),
        ({"scheduled_time": SCHEDULED, "month": MONTH}, SchemaViolation, "month"),
        ({"scheduled_time": "2031-07-02T06:00:00"}, MonthError, "has no time zone offset"),
    ],
)
def test_bad_input_is_one_line_naming_it(
    aws_env: LocalRuntime, event: dict, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        start_month.handler(event, None)
    assert len(str(raised.value).splitlines()) == 1


def test_without_the_alias_in_its_environment_it_says_so(
    aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKFLOW_ALIAS_ARN")
    with pytest.raises(ConfigError, match="environment variable WORKFLOW_ALIAS_ARN is not set"):
        start_month.handler({"scheduled_time": SCHEDULED}, None)


def role_client(rt: LocalRuntime, role_name_part: str, service: str) -> Any:
    """A client signed by a session of the deployed role whose name contains the part."""
    assert rt.deployment
    roles = rt.clients["iam"].list_roles()["Roles"]
    (role,) = [r for r in roles if f"{rt.deployment.stack_name}-{role_name_part}-" in r["RoleName"]]
    return boto3.client(
        service,
        endpoint_url=rt.endpoint_url,
        region_name="us-east-1",
        **role_credentials(role["Arn"], "least-privilege-test"),
    )


def test_the_scheduled_start_grants_are_least(aws_env: LocalRuntime) -> None:
    """Enough is shown by the fired schedule (test_scheduler_fire); here, no more: StartMonth
    starts the machine only through `live`, the schedule invokes only StartMonth's alias."""
    assert aws_env.deployment
    machine, stack = aws_env.deployment.state_machine_arn, aws_env.deployment.stack_name
    sfn = role_client(aws_env, "StartMonthRole", "stepfunctions")
    with pytest.raises(ClientError, match="AccessDenied"):
        sfn.start_execution(stateMachineArn=machine, input="{}")  # unqualified
    awslambda = role_client(aws_env, "ScheduleRole", "lambda")
    for function in (f"{stack}-start_month", f"{stack}-check_gbif:live"):
        with pytest.raises(ClientError, match="AccessDenied"):
            awslambda.invoke(FunctionName=function, InvocationType="Event", Payload=b"{}")


def test_a_start_month_that_fails_reaches_the_alarm_topic(template: dict) -> None:
    """Scheduler invokes StartMonth asynchronously, so its dead-letter queue never sees the
    function fail: Lambda's on-failure destination on the alias the schedule invokes does,
    after the two retries StartMonth's one name per month makes safe."""
    (config,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventInvokeConfig"
    ]
    target = template["Resources"]["MonthlySchedule"]["Properties"]["Target"]
    alias = template["Resources"][target["Arn"]["Ref"]]["Properties"]
    assert (config["FunctionName"], config["Qualifier"]) == (alias["FunctionName"], alias["Name"])
    assert config["MaximumRetryAttempts"] == 2
    assert 60 <= config["MaximumEventAgeInSeconds"] <= 21600  # the API's range
    assert config["DestinationConfig"] == {"OnFailure": {"Destination": {"Ref": "AlarmTopic"}}}


def test_the_invocation_record_is_lambdas() -> None:
    """The fields of the Lambda Developer Guide's example record, from the failed call."""
    failed = FailedInvocation(
        "arn:aws:lambda:us-east-1:123456789012:function:f:live",
        '{"scheduled_time": "x"}',
        "Unhandled",
        '{"errorMessage": "boom", "errorType": "ValueError"}',
        "req-1",
    )
    when = datetime(2031, 7, 2, 6, 0, 5, 568000, tzinfo=UTC)
    assert invocation_record(failed, "3", when) == {
        "version": "1.0",
        "timestamp": "2031-07-02T06:00:05.568Z",
        "requestContext": {
            "requestId": "req-1",
            "functionArn": failed.function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 1,  # the local runtime does not retry
        },
        "requestPayload": {"scheduled_time": "x"},
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "3",
            "functionError": "Unhandled",
        },
        "responsePayload": {"errorMessage": "boom", "errorType": "ValueError"},
    }


def _alarm_copies(rt: LocalRuntime) -> tuple[str, str]:
    """(queue URL, subscription ARN): an SQS queue receiving what the alarm topic publishes."""
    assert rt.deployment
    sqs, sns = rt.clients["sqs"], rt.clients["sns"]
    url = sqs.create_queue(QueueName=f"alarm-copies-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    subscription = sns.subscribe(
        TopicArn=rt.deployment.outputs["AlarmTopicArn"],
        Protocol="sqs",
        Endpoint=arn["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )["SubscriptionArn"]
    return url, subscription


def test_a_start_month_that_raises_reaches_the_alarm_topic(runtime: LocalRuntime) -> None:
    """Fired as Scheduler fires the monthly schedule, a StartMonth that raises (here on an input
    it refuses, so no execution is started) sends Lambda's invocation record to the alarm
    topic as the function's own role; without the destination the event would be dropped."""
    assert runtime.deployment
    outputs, scheduler = runtime.deployment.outputs, runtime.clients["scheduler"]
    deployed = scheduler.get_schedule(Name=outputs["ScheduleName"])
    name = f"{runtime.deployment.stack_name}-refused-{uuid.uuid4().hex[:8]}"
    scheduler.create_schedule(
        Name=name,
        ScheduleExpression="at(2031-07-02T06:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={**deployed["Target"], "Input": '{"scheduled_time": "yesterday"}'},
    )
    url, subscription = _alarm_copies(runtime)
    operator = boto3.Session(region_name=REGION, **CREDENTIALS)
    try:
        with pytest.raises(ScheduleFireError, match="went to its on-failure destination"):
            fire(operator, runtime.endpoint_url, name, datetime.now(UTC))
        (message,) = runtime.clients["sqs"].receive_message(QueueUrl=url)["Messages"]
    finally:
        runtime.clients["sns"].unsubscribe(SubscriptionArn=subscription)
        runtime.clients["sqs"].delete_queue(QueueUrl=url)
        scheduler.delete_schedule(Name=name)
    record = json.loads(message["Body"])
    assert record["requestContext"]["functionArn"] == deployed["Target"]["Arn"]
    assert record["requestPayload"] == {"scheduled_time": "yesterday"}
    assert record["responseContext"]["functionError"]  # moto says Handled, AWS Unhandled
    assert "scheduled_time" in record["responsePayload"]["errorMessage"]


def test_only_start_months_role_may_report_to_the_alarm_topic(runtime: LocalRuntime) -> None:
    """The grant is StartMonth's alone: another function given the same destination cannot
    deliver (Lambda would count a DestinationDeliveryFailure and drop the event)."""
    assert runtime.deployment
    stack, topic = runtime.deployment.stack_name, runtime.deployment.outputs["AlarmTopicArn"]
    awslambda = runtime.clients["lambda"]
    where = {"FunctionName": f"{stack}-check_gbif", "Qualifier": "live"}
    awslambda.put_function_event_invoke_config(
        **where, DestinationConfig={"OnFailure": {"Destination": topic}}
    )
    operator = boto3.Session(region_name=REGION, **CREDENTIALS)
    alias = awslambda.get_alias(FunctionName=where["FunctionName"], Name="live")["AliasArn"]
    try:
        delivery = deliver_failure(
            operator, runtime.endpoint_url, FailedInvocation(alias, "{}", "Unhandled", "{}")
        )
    finally:
        awslambda.delete_function_event_invoke_config(**where)
    assert (delivery.destination, delivery.delivered) == (topic, False)
    assert "AccessDenied" in delivery.problem and "sns:Publish" in delivery.problem
