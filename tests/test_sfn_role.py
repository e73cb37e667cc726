"""sfn_credentials: the interpreter calls services as the state machine's role, as AWS does."""

from __future__ import annotations

import io
import json
import re
import time
import uuid
import zipfile
from collections.abc import Iterator

import pytest
from conftest import wait_for_end
from moto.awslambda.responses import LambdaResponse
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.sts.models import sts_backends
from test_emulator_seams import STATES_TRUST, _lambda_role

from bisonflow.local import credentials
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.sfn import role_credentials as sfn_credentials

#: Test functions and roles share this prefix; the machine role may invoke any such function.
PREFIX = "sfntest"
FUNCTION = f"{PREFIX}-echo"
HANDLER = """
def echo(event, context):
    return {"size": len(str(event)), "event": event if len(str(event)) < 1000 else None}
"""


def function_arn(runtime: LocalRuntime, name: str) -> str:
    assert runtime.emulator is not None
    return f"arn:aws:lambda:{runtime.emulator.region}:{credentials.ACCOUNT_ID}:function:{name}"


def machine_role(runtime: LocalRuntime, name: str, may_invoke: list[str]) -> str:
    """A state machine role allowed lambda:InvokeFunction on `may_invoke` (ARN patterns) only."""
    iam = runtime.clients["iam"]
    try:
        return iam.get_role(RoleName=name)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(STATES_TRUST))["Role"][
        "Arn"
    ]
    statement = {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": may_invoke}
    iam.put_role_policy(
        RoleName=name,
        PolicyName="machine",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [statement]}),
    )
    return arn


def invoker_role(runtime: LocalRuntime) -> str:
    """A machine role that may invoke every test function, unqualified or qualified."""
    functions = function_arn(runtime, f"{PREFIX}-*")
    return machine_role(runtime, f"{PREFIX}-invoker", [functions, f"{functions}:*"])


def create_echo_function(runtime: LocalRuntime) -> str:
    """A Lambda the test machines invoke (it makes no AWS calls of its own); its ARN."""
    awslambda = runtime.clients["lambda"]
    try:
        return awslambda.get_function_configuration(FunctionName=FUNCTION)["FunctionArn"]
    except awslambda.exceptions.ResourceNotFoundException:
        pass
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("sfntest.py", HANDLER)
    return awslambda.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=_lambda_role(runtime),
        Handler="sfntest.echo",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=10,
    )["FunctionArn"]


@pytest.fixture(scope="module")
def echo_function(runtime: LocalRuntime) -> str:
    return create_echo_function(runtime)


def start_as(runtime: LocalRuntime, definition: dict, payload: dict, role_arn: str) -> str:
    """Create a machine with `role_arn` and start it; its execution ARN."""
    sfn = runtime.clients["stepfunctions"]
    arn = sfn.create_state_machine(
        name=f"{PREFIX}-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role_arn
    )["stateMachineArn"]
    return sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]


def history(runtime: LocalRuntime, execution_arn: str) -> list[dict]:
    sfn = runtime.clients["stepfunctions"]
    return sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def scheduled_token(runtime: LocalRuntime, execution_arn: str) -> str:
    """The task token a waiting task was scheduled with (its TaskScheduled parameters)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for event in history(runtime, execution_arn):
            if event["type"] == "TaskScheduled":
                parameters = json.loads(event["taskScheduledEventDetails"]["parameters"])
                if "token" in parameters["Payload"]:
                    return parameters["Payload"]["token"]
        time.sleep(0.1)
    raise AssertionError("the task was never scheduled")


def invoke_task(function: str, *, wait: bool = False, **fields: object) -> dict:
    resource = "arn:aws:states:::lambda:invoke" + (".waitForTaskToken" if wait else "")
    payload = {"token.$": "$$.Task.Token"} if wait else {"n": 1}
    return {
        "Type": "Task",
        "Resource": resource,
        "Parameters": {"FunctionName": function, "Payload": payload},
        **fields,
    }


@pytest.fixture
def invoke_callers(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The access key of every Lambda Invoke request the emulator receives meanwhile."""
    keys: list[str] = []
    original = LambdaResponse.invoke

    def recording(self: LambdaResponse) -> object:
        keys.append(self.get_access_key())
        return original(self)

    monkeypatch.setattr(LambdaResponse, "invoke", recording)
    yield keys


def _session_of(access_key: str) -> object:
    return sts_backends[credentials.ACCOUNT_ID]["aws"].get_assumed_role_from_access_key(access_key)


def test_lambda_calls_are_signed_by_a_session_of_the_machine_role(
    runtime: LocalRuntime, echo_function: str, invoke_callers: list[str]
) -> None:
    role = invoker_role(runtime)
    machine = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": invoke_task(echo_function, ResultPath="$.first", Next="Callback"),
            "Callback": invoke_task(f"{echo_function}:$LATEST", wait=True, End=True),
        },
    }
    execution = start_as(runtime, machine, {}, role)
    runtime.clients["stepfunctions"].send_task_success(
        taskToken=scheduled_token(runtime, execution), output='{"called": "back"}'
    )
    assert wait_for_end(runtime, execution)["status"] == "SUCCEEDED"

    assert len(invoke_callers) == 2  # lambda:invoke and lambda:invoke.waitForTaskToken
    for key in invoke_callers:
        session = _session_of(key)
        assert session is not None, f"Invoke signed with {key!r}, not a role session"
        assert session.role_arn == role
        # Step Functions' session names: 32 letters (see sfn_credentials).
        assert re.fullmatch(rf".*:assumed-role/{PREFIX}-invoker/[A-Za-z]{{32}}", session.arn)


def test_sessions_are_kept_per_role_and_renewed(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = invoker_role(runtime)
    other = machine_role(runtime, f"{PREFIX}-unqualified", [function_arn(runtime, FUNCTION)])
    first = sfn_credentials.role_session(role)
    assert sfn_credentials.role_session(role) == first
    assert sfn_credentials.role_session(other)["aws_access_key_id"] != first["aws_access_key_id"]
    monkeypatch.setattr(sfn_credentials, "RENEW_AFTER_SECONDS", -1)
    renewed = sfn_credentials.role_session(role)
    assert renewed["aws_access_key_id"] != first["aws_access_key_id"]
    assert _session_of(renewed["aws_access_key_id"]).role_arn == role


@pytest.fixture(scope="module")
def live_alias(runtime: LocalRuntime, echo_function: str) -> str:
    """The test function's `live` alias, as the workflow invokes its functions; its ARN."""
    awslambda = runtime.clients["lambda"]
    try:
        return awslambda.get_alias(FunctionName=FUNCTION, Name="live")["AliasArn"]
    except awslambda.exceptions.ResourceNotFoundException:
        pass
    version = awslambda.publish_version(FunctionName=FUNCTION)["Version"]
    return awslambda.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=version)[
        "AliasArn"
    ]


def test_a_role_that_may_not_invoke_the_alias_fails_the_task_as_on_aws(
    runtime: LocalRuntime, live_alias: str
) -> None:
    # The role may invoke the unqualified function only; the machine invokes the `live` alias,
    # which IAM authorizes on the alias-qualified ARN. On AWS the task fails with
    # Lambda.AWSLambdaException and Lambda's AccessDenied as the cause (sfn_credentials);
    # Retry and Catch apply to it as to any task failure.
    role = machine_role(runtime, f"{PREFIX}-unqualified", [function_arn(runtime, FUNCTION)])
    machine = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": invoke_task(
                live_alias,
                Retry=[
                    {
                        "ErrorEquals": ["Lambda.AWSLambdaException"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 1,
                    }
                ],
                Catch=[
                    {
                        "ErrorEquals": ["Lambda.AWSLambdaException"],
                        "ResultPath": "$.error",
                        "Next": "Refused",
                    }
                ],
                Next="Invoked",
            ),
            "Invoked": {"Type": "Succeed"},
            "Refused": {"Type": "Pass", "End": True},
        },
    }
    execution = start_as(runtime, machine, {}, role)
    end = wait_for_end(runtime, execution)
    assert end["status"] == "SUCCEEDED"
    events = history(runtime, execution)
    failures = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert len(failures) == 2, "one retry, then caught"
    for failure in failures:
        assert failure["error"] == "Lambda.AWSLambdaException"
        assert re.fullmatch(
            rf"User: arn:aws:sts::{credentials.ACCOUNT_ID}:assumed-role/{PREFIX}-unqualified/"
            r"[A-Za-z]{32} is not authorized to perform: lambda:InvokeFunction on resource: "
            rf"{re.escape(live_alias)} because no identity-based policy allows the "
            r"lambda:InvokeFunction action \(Service: AWSLambda; Status Code: 403; Error Code: "
            r"AccessDeniedException; Request ID: [^;]*; Proxy: null\)",
            failure["cause"],
        ), failure["cause"]
    assert json.loads(end["output"])["error"]["Error"] == "Lambda.AWSLambdaException"
    assert "Invoked" not in {e.get("stateEnteredEventDetails", {}).get("name") for e in events}

    # A role granted the alias-qualified ARN invokes it.
    allowed = wait_for_end(runtime, start_as(runtime, machine, {}, invoker_role(runtime)))
    assert allowed["status"] == "SUCCEEDED"
    assert "error" not in json.loads(allowed["output"])


def test_an_error_lambda_models_for_invoke_keeps_its_name(
    runtime: LocalRuntime, echo_function: str
) -> None:
    role = invoker_role(runtime)
    missing = echo_function.replace(FUNCTION, f"{PREFIX}-missing")
    machine = {"StartAt": "Invoke", "States": {"Invoke": invoke_task(missing, End=True)}}
    end = wait_for_end(runtime, start_as(runtime, machine, {}, role))
    assert end["status"] == "FAILED"
    assert end["error"] == "Lambda.ResourceNotFoundException"


def test_every_interpreter_module_uses_the_role_signer(runtime: LocalRuntime) -> None:
    assert runtime.emulator is not None
    assert boto_client.boto_client_for is sfn_credentials.boto_client_for
    # Every other interpreter module too: tests/test_seams.py (copies_under).
