"""sfn_limits: Step Functions' 256 KiB payload quota, where moto's interpreter differed."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError
from conftest import wait_for_end
from test_emulator_seams import _run_machine, _states_role
from test_sfn_role import (
    create_echo_function,
    history,
    invoke_task,
    invoker_role,
    scheduled_token,
    start_as,
)

from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.seams import modules_holding
from bisonflow.local.sfn import limits as sfn_limits
from bisonflow.local.sfn.asl_fixes import INTERPRETER

QUOTA = sfn_limits.MAX_PAYLOAD_BYTES


def _pass_giving(text: str) -> dict:
    """A machine whose one Pass state outputs {"x": text}: 8 bytes of JSON around the text."""
    result = {"x": text}
    return {"StartAt": "Give", "States": {"Give": {"Type": "Pass", "Result": result, "End": True}}}


@pytest.fixture(scope="module")
def echo_function(runtime: LocalRuntime) -> str:
    return create_echo_function(runtime)


def _failure(runtime: LocalRuntime, execution_arn: str) -> dict:
    """The failure details (error, cause) of every failed-task or failed-execution event."""
    return {
        event["type"]: details
        for event in history(runtime, execution_arn)
        for key, details in event.items()
        if key.endswith("FailedEventDetails")
    }


def test_state_output_of_exactly_the_quota_passes_one_byte_more_fails(
    runtime: LocalRuntime,
) -> None:
    # The quota is a maximum: moto failed a value of exactly 262,144 bytes.
    exact = _run_machine(runtime, _pass_giving("a" * (QUOTA - 8)), {})
    assert exact["status"] == "SUCCEEDED", exact.get("cause")
    assert sfn_limits.payload_bytes(json.loads(exact["output"])) == QUOTA
    over = _run_machine(runtime, _pass_giving("a" * (QUOTA - 7)), {})
    assert over["status"] == "FAILED"
    assert over["error"] == "States.DataLimitExceeded"
    assert over["cause"] == (
        "The state/task 'Give' returned a result with a size exceeding the maximum number of "
        "bytes service limit."
    )
    # The history AWS records for it (LocalStack's AWS-validated test_start_large_input).
    assert [e["type"] for e in history(runtime, over["executionArn"])] == [
        "ExecutionStarted",
        "PassStateEntered",
        "ExecutionFailed",
    ]


def test_size_is_utf8_bytes_not_escaped_json(runtime: LocalRuntime) -> None:
    # 100,000 two-byte characters are 200,008 bytes of UTF-8 JSON: within the quota. moto
    # measured them as \\u00e9 escapes (600,008 bytes) and failed the state.
    text = "é" * 100_000
    assert sfn_limits.payload_bytes({"x": text}) == 200_008
    description = _run_machine(runtime, _pass_giving(text), {})
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert json.loads(description["output"]) == {"x": text}


def test_parameters_over_the_quota_fail_the_task_before_it_is_scheduled(
    runtime: LocalRuntime, echo_function: str
) -> None:
    # Each half fits, the Payload built from both does not: AWS fails the state with
    # States.DataLimitExceeded ("after Parameters processing"); moto invoked the Lambda.
    role = invoker_role(runtime)
    task = invoke_task(echo_function, ResultSelector={"size.$": "$.Payload.size"}, End=True)
    task["Parameters"]["Payload"] = {"first.$": "$.half", "second.$": "$.half"}
    machine = {"StartAt": "Invoke", "States": {"Invoke": task}}
    over = start_as(runtime, machine, {"half": "b" * (QUOTA // 2)}, role)
    description = wait_for_end(runtime, over)
    assert description["status"] == "FAILED"
    assert description["error"] == "States.DataLimitExceeded"
    failures = _failure(runtime, over)
    assert failures["TaskFailed"]["error"] == "States.DataLimitExceeded"
    assert "'Invoke'" in failures["TaskFailed"]["cause"]
    assert "TaskScheduled" not in {event["type"] for event in history(runtime, over)}

    # The same task with a payload that fits runs (the check is on the size, not the shape).
    fits = wait_for_end(runtime, start_as(runtime, machine, {"half": "b" * 1000}, role))
    assert fits["status"] == "SUCCEEDED", fits.get("cause")
    assert json.loads(fits["output"])["size"] > 2000


def test_start_execution_refuses_an_input_over_the_quota(runtime: LocalRuntime) -> None:
    sfn = runtime.clients["stepfunctions"]
    arn = sfn.create_state_machine(
        name=f"limits-{uuid.uuid4().hex[:8]}",
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}),
        roleArn=_states_role(runtime),
    )["stateMachineArn"]
    filler = '{"x":"' + "c" * (QUOTA - 8) + '"}'
    assert len(filler.encode()) == QUOTA
    accepted = sfn.start_execution(stateMachineArn=arn, input=filler)
    assert wait_for_end(runtime, accepted["executionArn"])["status"] == "SUCCEEDED"
    with pytest.raises(ClientError) as refused:
        sfn.start_execution(stateMachineArn=arn, input=filler.replace('"}', 'c"}'))
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "'input'" in error["Message"] and "262144" in error["Message"]
    # Nothing was started by the refused request.
    assert len(sfn.list_executions(stateMachineArn=arn)["executions"]) == 1


def test_send_task_success_refuses_an_output_over_the_quota(
    runtime: LocalRuntime, echo_function: str
) -> None:
    sfn = runtime.clients["stepfunctions"]
    role = invoker_role(runtime)
    task = invoke_task(echo_function, wait=True, TimeoutSeconds=60, End=True)
    execution_arn = start_as(runtime, {"StartAt": "Wait", "States": {"Wait": task}}, {}, role)
    token = scheduled_token(runtime, execution_arn)
    with pytest.raises(ClientError) as refused:
        sfn.send_task_success(taskToken=token, output=json.dumps("d" * QUOTA))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "'output'" in refused.value.response["Error"]["Message"]
    # The task still waits, and takes an output that fits.
    sfn.send_task_success(taskToken=token, output=json.dumps({"ok": True}))
    end = wait_for_end(runtime, execution_arn)
    assert end["status"] == "SUCCEEDED" and json.loads(end["output"]) == {"ok": True}


def test_every_interpreter_module_uses_the_quota_fix(runtime: LocalRuntime) -> None:
    assert runtime.emulator is not None
    (quota, *_) = sfn_limits.SEAM.patches
    original = sfn_limits.SEAM.original(quota)
    assert modules_holding(INTERPRETER, quota.name, original) == []
