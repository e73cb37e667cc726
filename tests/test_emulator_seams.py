"""The local runtime's seams into moto: each fails here if a moto upgrade moves its target."""

from __future__ import annotations

import inspect
import io
import json
import time
import uuid
import zipfile

import pytest
from moto import backends
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.stepfunctions.parser.asl.utils import boto_client

from bisonflow.deploy import cfn_template
from bisonflow.layout import MonthLayout
from bisonflow.local import moto_routing
from bisonflow.local.ec2.agent import boot_environment, imds_answer, metadata_paths
from bisonflow.local.lambdas import worker as lambda_worker
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import instance_tags

HANDLERS = """
import os, time
def info(event, context):
    print("invoked with", event)
    return {"pid": os.getpid(), "name": context.function_name, "memory": context.memory_limit_in_mb,
            "remaining": context.get_remaining_time_in_millis(), "request": context.aws_request_id,
            "colour": os.environ.get("COLOUR"), "event": event}
def slow(event, context):
    time.sleep(5)
class Boom(Exception):
    pass
def boom(event, context):
    raise Boom("boom: " + event.get("why", ""))
def launch(event, context):
    return {"ok": True}
def whoami(event, context):
    import boto3
    if event.get("exit"):
        os._exit(3)
    identity = boto3.client("sts").get_caller_identity()
    return {"arn": identity["Arn"], "key": os.environ["AWS_ACCESS_KEY_ID"], "pid": os.getpid()}
"""


def _lambda_role(runtime: LocalRuntime) -> str:
    """The deployed check_gbif function's role (any Lambda role serves these checks)."""
    assert runtime.deployment
    name = f"{runtime.deployment.stack_name}-check_gbif"
    return runtime.clients["lambda"].get_function_configuration(FunctionName=name)["Role"]


#: The role of these tests' own state machines: it may invoke the seamcheck functions, as a
#: state machine's role must (the IAM seam authorizes its calls as that role).
STATES_ROLE = "seamcheck-states"
#: The trust policy of a state machine's role: Step Functions may assume it.
STATES_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "states.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _states_role(runtime: LocalRuntime) -> str:
    iam = runtime.clients["iam"]
    try:
        return iam.get_role(RoleName=STATES_ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    arn = iam.create_role(RoleName=STATES_ROLE, AssumeRolePolicyDocument=json.dumps(STATES_TRUST))[
        "Role"
    ]["Arn"]
    invoke = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": "arn:aws:lambda:us-east-1:123456789012:function:seamcheck-*",
            }
        ],
    }
    iam.put_role_policy(
        RoleName=STATES_ROLE, PolicyName="invoke-seamcheck", PolicyDocument=json.dumps(invoke)
    )
    return arn


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("seamcheck.py", HANDLERS)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def functions(runtime: LocalRuntime) -> dict[str, str]:
    awslambda = runtime.clients["lambda"]
    role = _lambda_role(runtime)
    arns = {}
    for handler, timeout in (
        ("info", 10),
        ("slow", 1),
        ("boom", 10),
        ("launch", 10),
        ("whoami", 10),
    ):
        arns[handler] = awslambda.create_function(
            FunctionName=f"seamcheck-{handler}",
            Runtime="python3.12",
            Role=role,
            Handler=f"seamcheck.{handler}",
            Code={"ZipFile": _zip()},
            Timeout=timeout,
            MemorySize=192,
            Environment={"Variables": {"COLOUR": "green"}},
        )["FunctionArn"]
    return arns


def _invoke(runtime: LocalRuntime, name: str, event: dict) -> tuple[dict, str | None]:
    response = runtime.clients["lambda"].invoke(
        FunctionName=f"seamcheck-{name}", Payload=json.dumps(event).encode()
    )
    return json.loads(response["Payload"].read()), response.get("FunctionError")


# --- the targets ---------------------------------------------------------------------------
def test_seam_targets_exist() -> None:
    """What the emulator relies on besides its seams' targets (tests/test_seams.py checks
    those)."""
    (invoke,) = lambda_worker.SEAM.patches
    assert invoke.owner() is LambdaFunction
    assert list(inspect.signature(getattr(LambdaFunction, invoke.name)).parameters) == [
        "self",
        "event",
    ]
    assert "execute_state_machine" in default_user_config["stepfunctions"]
    # The interpreter reaches the other services at localhost:$MOTO_PORT.
    assert "moto_server_port()" in inspect.getsource(boto_client.boto_client_for)


def test_function_attributes_the_worker_reads(runtime: LocalRuntime, functions: dict) -> None:
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    fn = lambda_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_function("seamcheck-info")
    for attribute in lambda_worker.FUNCTION_ATTRIBUTES:
        assert hasattr(fn, attribute), attribute


# --- Lambda worker -------------------------------------------------------------------------
def test_lambda_runs_locally_warm_with_context_and_environment(
    runtime: LocalRuntime, functions: dict
) -> None:
    first, error = _invoke(runtime, "info", {"n": 1})
    second, _ = _invoke(runtime, "info", {"n": 2})
    assert error is None
    assert first["pid"] == second["pid"], "the warm worker should be reused"
    assert first["name"] == "seamcheck-info" and first["memory"] == 192
    assert 0 < first["remaining"] <= 10_000
    assert first["colour"] == "green" and second["event"] == {"n": 2}
    logs = runtime.clients["logs"]
    stream = logs.describe_log_streams(logGroupName="/aws/lambda/seamcheck-info")["logStreams"][0]
    messages = [
        e["message"]
        for e in logs.get_log_events(
            logGroupName="/aws/lambda/seamcheck-info", logStreamName=stream["logStreamName"]
        )["events"]
    ]
    assert any(m.startswith(f"START RequestId: {first['request']}") for m in messages)
    assert "invoked with {'n': 2}" in messages
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_lambda_error_and_timeout_are_reported_as_lambda_does(
    runtime: LocalRuntime, functions: dict
) -> None:
    payload, error = _invoke(runtime, "boom", {"why": "because"})
    assert error == "Handled"
    assert payload["errorType"] == "Boom" and payload["errorMessage"] == "boom: because"
    payload, error = _invoke(runtime, "slow", {})
    assert error and payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in payload["errorMessage"]


def test_lambda_code_runs_as_its_execution_role(runtime: LocalRuntime, functions: dict) -> None:
    """STS answers the function's own calls with a session of its execution role, named after
    the function, as on Lambda; a warm worker keeps its session and a new one gets its own."""
    role_name = _lambda_role(runtime).rsplit("/", 1)[1]
    expected = f"arn:aws:sts::123456789012:assumed-role/{role_name}/seamcheck-whoami"
    first, error = _invoke(runtime, "whoami", {})
    warm, _ = _invoke(runtime, "whoami", {})
    assert error is None and first["arn"] == expected
    assert (warm["pid"], warm["key"]) == (first["pid"], first["key"])
    assert first["key"] != "local", "the operator's key must never reach Lambda code"
    _, error = _invoke(runtime, "whoami", {"exit": True})  # the environment dies
    assert error
    fresh, _ = _invoke(runtime, "whoami", {})
    assert fresh["arn"] == expected
    assert fresh["pid"] != first["pid"] and fresh["key"] != first["key"]


# --- ASL interpreter fixes -----------------------------------------------------------------
def _run_machine(runtime: LocalRuntime, definition: dict, payload: dict) -> dict:
    sfn = runtime.clients["stepfunctions"]
    role = _states_role(runtime)
    arn = sfn.create_state_machine(
        name=f"seam-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=execution["executionArn"])
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.1)
    raise AssertionError("execution did not finish in 30 s")


def _parallel_with_callback(functions: dict) -> dict:
    """A Parallel whose callback branch never hears back; caught into a Fail with ErrorPath."""
    return {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "Branches": [
                    {"StartAt": "Quick", "States": {"Quick": {"Type": "Pass", "End": True}}},
                    {
                        "StartAt": "Callback",
                        "States": {
                            "Callback": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                                "Parameters": {
                                    "FunctionName": functions["launch"],
                                    "Payload": {"token.$": "$$.Task.Token"},
                                },
                                "HeartbeatSecondsPath": "$.heartbeat",
                                "TimeoutSeconds": 20,
                                "End": True,
                            }
                        },
                    },
                ],
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Caught": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }


def test_heartbeat_timeout_in_a_parallel_branch_is_caught(
    runtime: LocalRuntime, functions: dict
) -> None:
    description = _run_machine(runtime, _parallel_with_callback(functions), {"heartbeat": 1})
    # Unpatched, moto fails the whole execution with States.Runtime and skips the Catch.
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"


def test_send_task_failure_keeps_its_cause(runtime: LocalRuntime, functions: dict) -> None:
    sfn = runtime.clients["stepfunctions"]
    definition = _parallel_with_callback(functions)
    role = _states_role(runtime)
    arn = sfn.create_state_machine(
        name=f"seam-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    execution_arn = sfn.start_execution(stateMachineArn=arn, input='{"heartbeat": 20}')[
        "executionArn"
    ]
    token, submitted = None, False
    for _ in range(300):
        for event in sfn.get_execution_history(executionArn=execution_arn)["events"]:
            params = event.get("taskScheduledEventDetails", {}).get("parameters")
            if params:
                token = json.loads(params)["Payload"]["token"]
            # The callback is registered once the launching Lambda returned (TaskSubmitted).
            submitted = submitted or event["type"] == "TaskSubmitted"
        if token and submitted:
            break
        time.sleep(0.1)
    assert token and submitted
    sfn.send_task_failure(taskToken=token, error="RiisMissing", cause="s3://b/k is missing")
    for _ in range(100):
        description = sfn.describe_execution(executionArn=execution_arn)
        if description["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert description["error"] == "RiisMissing"
    assert description["cause"] == "s3://b/k is missing"


# --- EC2 agent -------------------------------------------------------------------------------
def _instance(tags: list[dict]) -> dict:
    """An instance as DescribeInstances describes it."""
    return {"InstanceId": "i-0abc", "Placement": {"AvailabilityZone": "us-east-1a"}, "Tags": tags}


def test_agent_answers_every_metadata_path_the_boot_script_reads() -> None:
    paths = metadata_paths(cfn_template.boot_script())
    assert {"TASK_APP", "TASK_SPEC_URI", "INSTANCE_ID", "TASK_LOG_GROUP"} <= set(paths)
    instance = _instance([])
    for path in paths.values():
        imds_answer(instance, path)  # raises for a path the agent does not emulate
    with pytest.raises(ValueError, match="public-keys"):
        imds_answer(instance, "public-keys/0")


def test_agent_runs_the_task_its_tags_name(runtime: LocalRuntime) -> None:
    """The per-run tags from launch_task and the launch template's tags, read as IMDS would."""
    assert runtime.deployment
    spec = "s3://bucket/tasks/2026_11_01/x/calc_stats.json"
    tags = instance_tags("calc_stats", MonthLayout.for_month("2026-11"), "x", spec)
    template = runtime.clients["ec2"].describe_launch_template_versions(
        LaunchTemplateId=runtime.deployment.outputs["CalcStatsLaunchTemplateId"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    tags += template["TagSpecifications"][0]["Tags"]
    env = boot_environment(cfn_template.boot_script(), _instance(tags))
    assert env["TASK_APP"] == "calc_stats" and env["TASK_SPEC_URI"] == spec
    assert env["INSTANCE_ID"] == "i-0abc" and env["AWS_REGION"] == "us-east-1"
    assert env["TASK_LOG_GROUP"] == runtime.deployment.outputs["TaskLogGroupName"]


def test_an_unnamed_execution_gets_a_uuid_name(runtime: LocalRuntime) -> None:
    sfn = runtime.clients["stepfunctions"]
    role = _states_role(runtime)
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name=f"seam-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    assert first != second
    name = sfn.describe_execution(executionArn=first)["name"]
    assert str(uuid.UUID(name)) == name


def test_moto_routes_with_its_module_list_listed_once(runtime: LocalRuntime) -> None:
    """bisonflow.local.moto_routing (speed only) answers what moto's own listing answers."""
    assert runtime.emulator is not None
    assert backends.list_of_moto_modules is moto_routing.list_of_moto_modules
    assert list(backends.list_of_moto_modules()) == list(moto_routing._listed())
    assert "stepfunctions" in backends.list_of_moto_modules()
