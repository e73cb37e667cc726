"""Redrive (issue 11): RedriveExecution on the emulator (bisonflow.local.sfn.redrive) behaves as
Step Functions documents it, and the workflow continues a run that failed at a late step.

The seam tests run small machines of Pass, Parallel, Wait and Fail states (no service calls):
a Pass whose Parameters read `$$.Execution.RedriveTime` fails on a fresh run ("RedriveTime is
only available if you've redriven an execution", developer guide, "Context object") and passes
once redriven, so "fails once" needs no outside help.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for_end

from bisonflow.history.executions import history
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.sfn import redrive as sfn_redrive

ROLE = "redrive-seam-states"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
#: Fails (States.Runtime, uncaught) on a fresh run, passes once redriven.
FAILS_UNTIL_REDRIVEN = {
    "Type": "Pass",
    "Parameters": {"redrives.$": "$$.Execution.RedriveCount", "at.$": "$$.Execution.RedriveTime"},
    "ResultPath": "$.check",
    "Next": "Done",
}

#: Pass, a state that fails until the execution is redriven, then Succeed.
FAILS_ONCE = {
    "First": {"Type": "Pass", "Next": "Check"},
    "Check": FAILS_UNTIL_REDRIVEN,
    "Done": {"Type": "Succeed"},
}


def _machine(runtime: LocalRuntime, states: dict[str, Any], start: str = "First") -> str:
    iam, sfn = runtime.clients["iam"], runtime.clients["stepfunctions"]
    try:
        role = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"][
            "Arn"
        ]
    definition = {"StartAt": start, "States": states}
    return sfn.create_state_machine(
        name=f"redrive-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]


def _run(runtime: LocalRuntime, machine: str, payload: dict[str, Any]) -> str:
    sfn = runtime.clients["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(payload))["executionArn"]
    wait_for_end(runtime, arn, timeout=30)
    return arn


def _history(runtime: LocalRuntime, arn: str) -> list[dict[str, Any]]:
    """Every event, page after page: one page is 100 events, as on AWS."""
    return history(runtime.clients["stepfunctions"], arn)


def _entered(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


def _error_code(excinfo: pytest.ExceptionInfo[ClientError]) -> str:
    return str(excinfo.value.response["Error"]["Code"])


def test_an_uncaught_failure_is_redriven_from_its_state_with_the_same_arn(
    runtime: LocalRuntime,
) -> None:
    sfn = runtime.clients["stepfunctions"]
    machine = _machine(
        runtime,
        {
            "First": {
                "Type": "Pass",
                "Parameters": {"redrives.$": "$$.Execution.RedriveCount"},
                "ResultPath": "$.first",
                "Next": "Check",
            },
            "Check": FAILS_UNTIL_REDRIVEN,
            "Done": {"Type": "Succeed"},
        },
    )
    arn = _run(runtime, machine, {"month": "2026-11"})
    failed = sfn.describe_execution(executionArn=arn)
    assert failed["status"] == "FAILED" and failed["error"] == "States.Runtime"
    assert failed["redriveCount"] == 0 and failed["redriveStatus"] == "REDRIVABLE"
    assert "redriveDate" not in failed
    before = len(_history(runtime, arn))

    answer = sfn.redrive_execution(executionArn=arn)
    description = wait_for_end(runtime, arn, timeout=30)
    assert description["status"] == "SUCCEEDED", description
    assert description["executionArn"] == arn and description["startDate"] == failed["startDate"]
    assert description["redriveCount"] == 1
    assert description["redriveDate"] == answer["redriveDate"]
    assert description["redriveStatus"] == "NOT_REDRIVABLE"
    assert description["redriveStatusReason"] == "Execution is SUCCEEDED and cannot be redriven"
    output = json.loads(description["output"])
    assert output["check"]["redrives"] == 1 and output["check"]["at"].startswith("20")
    # First ran on the first attempt only (RedriveCount 0 then, as on AWS) and its result stayed.
    assert output == {"month": "2026-11", "first": {"redrives": 0}, "check": output["check"]}

    events = _history(runtime, arn)
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))  # one history, appended
    redriven = events[before]
    assert redriven["type"] == "ExecutionRedriven"
    assert redriven["executionRedrivenEventDetails"] == {"redriveCount": 1}
    # First ran once, before the redrive; Check once in each attempt, with the same input.
    assert _entered(events) == ["First", "Check", "Check", "Done"]
    inputs = [
        e["stateEnteredEventDetails"]["input"]
        for e in events
        if e.get("stateEnteredEventDetails", {}).get("name") == "Check"
    ]
    assert inputs[0] == inputs[1] and json.loads(inputs[1])["first"] == {"redrives": 0}
    assert [e["type"] for e in events].count("ExecutionStarted") == 1

    with pytest.raises(ClientError) as refused:
        sfn.redrive_execution(executionArn=arn)
    assert _error_code(refused) == "ExecutionNotRedrivable"
    assert "SUCCEEDED" in str(refused.value)


def test_a_failure_caught_into_a_fail_state_is_redriven_at_that_fail_state(
    runtime: LocalRuntime,
) -> None:
    """AWS redrives the state entered and never exited: after a Catch, the Fail state. So the
    redrive fails again at once, and the caught step is not rerun (docs/aws.md, "Redrive")."""
    sfn = runtime.clients["stepfunctions"]
    inner = {k: v for k, v in FAILS_UNTIL_REDRIVEN.items() if k != "Next"} | {"End": True}
    check = {  # Pass states take no Catch: the failing Pass runs in a Parallel that has one
        "Type": "Parallel",
        "Branches": [{"StartAt": "Inner", "States": {"Inner": inner}}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
        "Next": "Done",
    }
    machine = _machine(
        runtime,
        {
            "First": {"Type": "Pass", "Next": "Check"},
            "Check": check,
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    )
    arn = _run(runtime, machine, {})
    sfn.redrive_execution(executionArn=arn)
    description = wait_for_end(runtime, arn, timeout=30)
    assert description["status"] == "FAILED" and description["error"] == "States.Runtime"
    assert description["redriveCount"] == 1 and description["redriveStatus"] == "REDRIVABLE"
    assert _entered(_history(runtime, arn)) == ["First", "Check", "Inner", "Failed", "Failed"]


def test_what_aws_refuses_is_refused_with_its_error(runtime: LocalRuntime) -> None:
    sfn = runtime.clients["stepfunctions"]
    machine = _machine(
        runtime,
        {"First": {"Type": "Wait", "Seconds": 3, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    )
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    with pytest.raises(ClientError) as running:
        sfn.redrive_execution(executionArn=arn)
    assert _error_code(running) == "ExecutionNotRedrivable"
    assert "Execution is RUNNING and cannot be redriven" in str(running.value)
    missing = arn.rsplit(":", 1)[0] + ":no-such-execution"
    with pytest.raises(ClientError) as unknown:
        sfn.redrive_execution(executionArn=missing)
    assert _error_code(unknown) == "ExecutionDoesNotExist"
    with pytest.raises(ClientError) as malformed:
        sfn.redrive_execution(executionArn="not-an-arn")
    assert _error_code(malformed) == "InvalidArn"
    wait_for_end(runtime, arn, timeout=30)


def test_redrivability_follows_the_documented_limits(runtime: LocalRuntime) -> None:
    """14 days after its end, a year after its start: not redrivable."""
    machine = _machine(
        runtime,
        FAILS_ONCE,
    )
    arn = _run(runtime, machine, {})
    execution = runtime_execution(arn)
    assert sfn_redrive.not_redrivable_reason(execution) is None
    later = (
        execution.stop_date + sfn_redrive.REDRIVABLE_PERIOD + sfn_redrive.dt.timedelta(seconds=1)
    )
    assert sfn_redrive.not_redrivable_reason(execution, later) == (
        "Execution redrivable period exceeded"
    )
    a_year = execution.start_date + sfn_redrive.MAX_OPEN_TIME + sfn_redrive.dt.timedelta(days=1)
    execution.stop_date = a_year  # ended just now, but opened over a year ago
    assert sfn_redrive.not_redrivable_reason(execution, a_year) == (
        "Execution has exceeded the max execution time"
    )


def test_a_repeated_client_token_answers_the_first_redrive(runtime: LocalRuntime) -> None:
    sfn = runtime.clients["stepfunctions"]
    machine = _machine(
        runtime,
        {
            "First": {"Type": "Pass", "Next": "Check"},
            "Check": {**FAILS_UNTIL_REDRIVEN, "Next": "Slow"},
            "Slow": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    )
    arn = _run(runtime, machine, {})
    first = sfn.redrive_execution(executionArn=arn, clientToken="once")
    again = sfn.redrive_execution(executionArn=arn, clientToken="once")
    assert again["redriveDate"] == first["redriveDate"]
    description = wait_for_end(runtime, arn, timeout=30)
    assert description["status"] == "SUCCEEDED" and description["redriveCount"] == 1


def runtime_execution(arn: str) -> Any:
    """moto's execution object behind `arn` (the seam's unit of state)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    account, region = arn.split(":")[4], arn.split(":")[3]
    return stepfunctions_parser_backends[account][region].describe_execution(arn)


def test_the_redrive_seam_is_installed_on_its_targets(runtime: LocalRuntime) -> None:
    from moto.stepfunctions.responses import StepFunctionResponse

    assert StepFunctionResponse.redrive_execution is sfn_redrive.redrive_execution
    assert StepFunctionResponse.describe_execution is sfn_redrive.describe_execution


# --- `bisonflow redrive` ---------------------------------------------------------------------
def _cli(runtime: LocalRuntime, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    from bisonflow.cli.main import main

    capsys.readouterr()
    code = main(["redrive", *args, "--endpoint-url", runtime.endpoint_url])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_the_command_redrives_and_refuses_in_one_line(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    machine = _machine(
        runtime,
        FAILS_ONCE,
    )
    arn = _run(runtime, machine, {})
    code, out = _cli(runtime, capsys, arn)
    assert code == 0, out
    assert f"redriven {arn} from Check at " in out and "(redrive 1)" in out
    assert f"bisonflow watch --endpoint-url {runtime.endpoint_url} {arn}" in out
    assert wait_for_end(runtime, arn, timeout=30)["status"] == "SUCCEEDED"

    with pytest.raises(SystemExit) as refused:
        _cli(runtime, capsys, arn)
    assert refused.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"bisonflow: cannot redrive {arn}: Execution is SUCCEEDED and cannot be redriven"
    ]


def test_the_command_refuses_a_run_that_would_fail_again_at_its_fail_state(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    inner = {k: v for k, v in FAILS_UNTIL_REDRIVEN.items() if k != "Next"} | {"End": True}
    machine = _machine(
        runtime,
        {
            "First": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Inner", "States": {"Inner": inner}}],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}
                ],
                "End": True,
            },
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    )
    arn = _run(runtime, machine, {})
    with pytest.raises(SystemExit) as refused:
        _cli(runtime, capsys, arn)
    assert refused.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "would only fail again" in line and "'Failed'" in line and "States.Runtime" in line
    description = runtime.clients["stepfunctions"].describe_execution(executionArn=arn)
    assert description["redriveCount"] == 0  # nothing was asked of Step Functions
