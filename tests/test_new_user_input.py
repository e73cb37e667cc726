"""Issue 12: a workflow input that is no object, or an execution name AWS refuses, is refused
with a message a user can act on, at the state machine as at the CLI."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for_end

from bisonflow.history.executions import history
from bisonflow.layout import EXECUTION_NAME_MAX
from bisonflow.local.runtime import LocalRuntime


def entered(events: list[dict]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("[]", "field $ = [] is invalid: [] is not of type 'object'"),
        ('"2026-12"', "field $ = \"2026-12\" is invalid: '2026-12' is not of type 'object'"),
        ('{"month": 5}', "field $.month = 5 is invalid: 5 is not of type 'string'"),
    ],
)
def test_an_input_that_is_no_valid_object_fails_with_the_schema_message(
    runtime: LocalRuntime, payload: str, message: str
) -> None:
    """Any JSON value reaches CheckGbif, whose schema names what was wrong; the run goes
    through CleanupTasks and fails with that message (not States.Runtime: the Catch's
    ResultPath $.error cannot be applied to an array, string or null)."""
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=runtime.deployment.state_machine_arn, input=payload)[
        "executionArn"
    ]
    description = wait_for_end(runtime, arn)
    assert description["status"] == "FAILED"
    assert description["error"] == "SchemaViolation"
    # The cause is the Lambda's error document, as Step Functions records a function's error.
    error = json.loads(description["cause"])
    assert error["errorType"] == "SchemaViolation"
    assert error["errorMessage"].startswith("check_gbif.input: ")
    assert message in error["errorMessage"]
    events = history(sfn, arn)
    assert entered(events) == ["CheckGbif", "CheckGbifFailed", "CleanupTasks", "WorkflowFailed"]
    cleaned = [e for e in events if e["type"] == "TaskSucceeded"][-1]
    assert json.loads(cleaned["taskSucceededEventDetails"]["output"])["Payload"]["terminated"] == []


def test_a_null_input_runs_as_an_empty_one(runtime: LocalRuntime) -> None:
    """`null` is valid JSON, so StartExecution takes it; the lambda:invoke integration of
    moto's interpreter (LocalStack's: lambda_eval_utils.to_payload_type) sends a null Payload
    as `{}`, so CheckGbif checks this month, as for `{}`. Either way it is no States.Runtime.
    `bisonflow start --input null` refuses it before starting (test_new_user_arguments)."""
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=runtime.deployment.state_machine_arn, input="null")[
        "executionArn"
    ]
    description = wait_for_end(runtime, arn)
    events = history(sfn, arn)
    assert entered(events)[:2] == ["CheckGbif", "SnapshotReady?"], description
    scheduled = next(e for e in events if e["type"] == "TaskScheduled")
    assert json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"] is None


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("a" * (EXECUTION_NAME_MAX + 1), "ValidationException"),
        ("2026/12", "InvalidName"),
        ("2026-12*", "InvalidName"),
        ("two words", "InvalidName"),
        ("[2026-12]", "InvalidName"),
        ("tab\tname", "InvalidName"),
        ("bell\x07", "InvalidName"),
        ("c1\x9f", "InvalidName"),
        ("em\u2003space", "InvalidName"),
    ],
)
def test_start_execution_refuses_the_names_aws_refuses(
    runtime: LocalRuntime, name: str, code: str
) -> None:
    """boto3 against the emulator gets AWS's answer, and no execution is started."""
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    machine = runtime.deployment.state_machine_arn
    before = len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"])
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=machine, name=name, input="{}")
    error = refused.value.response["Error"]
    assert error["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if code == "ValidationException":
        assert "Member must have length less than or equal to 80" in error["Message"]
    else:
        assert error["Message"] == f"Invalid Name: '{name}'"
    after = len(sfn.list_executions(stateMachineArn=machine, maxResults=1000)["executions"])
    assert after == before


def test_names_aws_accepts_still_start(runtime: LocalRuntime) -> None:
    """The longest name, letters beyond ASCII and the characters the rule allows all start
    (a run that finds no snapshot for a month before GBIF's first ends at once)."""
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    payload = json.dumps({"month": "2001-01"})
    for name in ("n" * EXECUTION_NAME_MAX, "café-2001_01.retry+1=@!'()"):
        arn = sfn.start_execution(
            stateMachineArn=runtime.deployment.state_machine_arn, name=name, input=payload
        )["executionArn"]
        assert arn.endswith(f":{name}")
        assert wait_for_end(runtime, arn)["name"] == name
