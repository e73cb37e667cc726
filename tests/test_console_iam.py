"""The console's role (the template's ConsoleUserRole) is sufficient and least-privilege.

Every AWS call the console makes (bisonflow/console/** and the library functions it reaches)
is known to the emulator's IAM mapping; a session of the role may make each one on the
workflow's own resources and is refused it on any other, as AWS would refuse it; and the
console `bisonflow local up` serves runs as that session, so its pages work with what the role
grants and no more. No workflow runs: a call on an execution that does not exist is authorized
before Step Functions looks for it, so "does not exist" proves the grant as well as a result.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FunctionType, ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError
from test_iam_mapping import ROOT, operations_in

from bisonflow.aws import error_code
from bisonflow.deploy import emulated
from bisonflow.deploy.target import Target
from bisonflow.layout import ANNOTATED_ROOT, SUMMARY_ROOT, MonthLayout
from bisonflow.local.console import (
    CONSOLE_ROLE_OUTPUT,
    CONSOLE_SESSION,
    console_target,
    local_console,
)
from bisonflow.local.deploy import emulator_target
from bisonflow.local.iam import seam
from bisonflow.local.iam.requests import MAPPERS
from bisonflow.local.runtime import LocalRuntime

CONSOLE = ROOT / "bisonflow" / "console"
#: The services the console's code calls.
SERVICES = ("s3", "stepfunctions", "scheduler", "cloudformation", "logs", "redshift-data", "sts")
#: Made by what the console uses but does not scan: connect() reads the account
#: (Target.account_id), a call that needs no permission.
IMPLICIT = {("sts", "GetCallerIdentity")}
#: Reached by stack_outputs only for a target whose DescribeStacks reports no outputs (the
#: emulator's CloudFormation; AWS's always reports them), and the local console is handed
#: the deploy's outputs instead: not a call the console makes on AWS.
NOT_ON_AWS = {emulated.outputs}
#: Calls the console makes that the role does not grant, and why.
NOT_GRANTED = {
    ("redshift-data", "DescribeStatement"): "the Data API shows a statement only to the role "
    "that ran it; report.html's cost then uses the history's timing",
}
#: AWS's refusal codes (JSON services; S3 and the query services).
DENIED = {"AccessDeniedException", "AccessDenied"}
#: A month no run of the test session publishes: the test's own objects go under it.
MONTH = MonthLayout.for_month("2001-03")


# -- what the console calls -------------------------------------------------------------------


def _console_modules() -> list[ModuleType]:
    return [
        importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for path in sorted(CONSOLE.rglob("*.py"))
    ]


def _library_function(value: Any) -> FunctionType | None:
    """`value` as a bisonflow function outside the console (decorators unwrapped), else None."""
    value = inspect.unwrap(value) if callable(value) else value
    if not isinstance(value, FunctionType):
        return None
    module = value.__module__ or ""
    if not module.startswith("bisonflow.") or module.startswith("bisonflow.console"):
        return None
    return value


def library_functions() -> set[FunctionType]:
    """The library functions the console's modules import, and those they call in turn (by
    name, or through a bisonflow module: `stack.outputs`), transitively."""
    todo = [
        fn
        for module in _console_modules()
        for value in vars(module).values()
        if (fn := _library_function(value)) is not None
    ]
    seen: set[FunctionType] = set()
    while todo:
        fn = todo.pop()
        if fn in seen or fn in NOT_ON_AWS:
            continue
        seen.add(fn)
        source, names = inspect.getsource(fn), fn.__globals__
        for name in set(re.findall(r"\b[A-Za-z_]\w*\b", source)):
            if (found := _library_function(names.get(name))) is not None:
                todo.append(found)
        for owner, attribute in set(re.findall(r"\b(\w+)\.(\w+)\b", source)):
            module = names.get(owner)
            if not isinstance(module, ModuleType) or not module.__name__.startswith("bisonflow."):
                continue
            if (found := _library_function(getattr(module, attribute, None))) is not None:
                todo.append(found)
    return seen


def console_operations() -> set[tuple[str, str]]:
    texts = [path.read_text() for path in sorted(CONSOLE.rglob("*.py"))]
    texts += [inspect.getsource(fn) for fn in library_functions()]
    return {op for text in texts for op in operations_in(text, SERVICES)} | IMPLICIT


def test_the_scan_reaches_the_library_the_console_calls() -> None:
    reached = {f"{fn.__module__}.{fn.__qualname__}" for fn in library_functions()}
    for name in (
        "bisonflow.deploy.stack_outputs",
        "bisonflow.deploy.stack.outputs",
        "bisonflow.history.executions.events_after",
        "bisonflow.history.cost_inputs.estimate_execution",
        "bisonflow.history.cost_inputs._reports",
        "bisonflow.steps.publish.published",
    ):
        assert name in reached
    assert "bisonflow.steps.publish.publish" not in reached  # imported by no console module
    operations = console_operations()
    for expected in (
        ("cloudformation", "DescribeStacks"),
        ("stepfunctions", "StopExecution"),
        ("stepfunctions", "DescribeStateMachineForExecution"),
        ("scheduler", "GetSchedule"),
        ("s3", "ListObjectsV2"),
        ("logs", "FilterLogEvents"),
    ):
        assert expected in operations


def test_every_console_call_is_mapped() -> None:
    missing = sorted(op for op in console_operations() if op not in MAPPERS)
    assert missing == [], f"add these to bisonflow/local/iam/requests.py: {missing}"


# -- the role's session on the workflow's resources ---------------------------------------------


@dataclass
class Setting:
    """The role's and the operator's clients, and the resources the calls name."""

    role: Target
    admin: Target
    outputs: dict[str, str]
    stack: str
    other_machine: str
    other_execution: str
    other_bucket: str

    @property
    def machine(self) -> str:
        return self.outputs["StateMachineArn"]

    @property
    def bucket(self) -> str:
        return self.outputs["BucketName"]

    @property
    def execution(self) -> str:
        """An execution ARN of the workflow's machine (none runs: its calls are authorized
        before Step Functions finds it missing)."""
        return self.machine.replace(":stateMachine:", ":execution:") + ":console-iam-check"

    def sfn(self) -> Any:
        return self.role.client("stepfunctions")


#: The keys the operator puts for the checks: one the role may read, one it may not.
READABLE = f"{MONTH.summary_prefix}console-iam-check.txt"
UNREADABLE = f"tasks/{MONTH.datestamp}/console-iam-check.json"


@pytest.fixture(scope="module")
def setting(runtime: LocalRuntime) -> Iterator[Setting]:
    assert runtime.deployment is not None and runtime.emulator is not None
    admin = emulator_target(runtime.emulator)
    outputs = runtime.deployment.outputs
    sfn = admin.client("stepfunctions")
    role_arn = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])["roleArn"]
    other = sfn.create_state_machine(
        name="console-iam-other",
        definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        ),
        roleArn=role_arn,
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=other)["executionArn"]
    s3 = admin.client("s3")
    for key in (READABLE, UNREADABLE):
        s3.put_object(Bucket=outputs["BucketName"], Key=key, Body=b"check")
    try:
        yield Setting(
            role=console_target(runtime),
            admin=admin,
            outputs=outputs,
            stack=runtime.deployment.stack_name,
            other_machine=other,
            other_execution=execution,
            other_bucket=runtime.deployment.gbif_bucket,
        )
    finally:
        for key in (READABLE, UNREADABLE):
            s3.delete_object(Bucket=outputs["BucketName"], Key=key)
        sfn.delete_state_machine(stateMachineArn=other)


Call = Callable[[Setting], Any]

#: Each call the console makes, as a page makes it, on the workflow's resources.
GRANTED: dict[tuple[str, str], Call] = {
    ("cloudformation", "DescribeStacks"): lambda s: s.role.client("cloudformation").describe_stacks(
        StackName=s.stack
    ),
    ("sts", "GetCallerIdentity"): lambda s: s.role.client("sts").get_caller_identity(),
    ("stepfunctions", "DescribeStateMachine"): lambda s: s.sfn().describe_state_machine(
        stateMachineArn=s.machine
    ),
    ("stepfunctions", "ListStateMachineVersions"): lambda s: s.sfn().list_state_machine_versions(
        stateMachineArn=s.machine
    ),
    ("stepfunctions", "ListStateMachineAliases"): lambda s: s.sfn().list_state_machine_aliases(
        stateMachineArn=s.machine
    ),
    ("stepfunctions", "DescribeStateMachineAlias"): lambda s: s.sfn().describe_state_machine_alias(
        stateMachineAliasArn=s.outputs["StateMachineAliasArn"]
    ),
    ("stepfunctions", "ListExecutions"): lambda s: s.sfn().list_executions(
        stateMachineArn=s.machine
    ),
    # Input that is not JSON: authorized, then refused by Step Functions, so nothing runs.
    ("stepfunctions", "StartExecution"): lambda s: s.sfn().start_execution(
        stateMachineArn=s.machine, input="{"
    ),
    ("stepfunctions", "DescribeExecution"): lambda s: s.sfn().describe_execution(
        executionArn=s.execution
    ),
    ("stepfunctions", "GetExecutionHistory"): lambda s: s.sfn().get_execution_history(
        executionArn=s.execution
    ),
    ("stepfunctions", "DescribeStateMachineForExecution"): lambda s: (
        s.sfn().describe_state_machine_for_execution(executionArn=s.execution)
    ),
    ("stepfunctions", "StopExecution"): lambda s: s.sfn().stop_execution(executionArn=s.execution),
    ("stepfunctions", "RedriveExecution"): lambda s: s.sfn().redrive_execution(
        executionArn=s.execution
    ),
    ("scheduler", "GetSchedule"): lambda s: s.role.client("scheduler").get_schedule(
        Name=s.outputs["ScheduleName"]
    ),
    ("s3", "ListObjectsV2"): lambda s: s.role.client("s3").list_objects_v2(
        Bucket=s.bucket, Prefix=SUMMARY_ROOT, Delimiter="/"
    ),
    ("s3", "GetObject"): lambda s: s.role.client("s3").get_object(Bucket=s.bucket, Key=READABLE),
    ("s3", "HeadObject"): lambda s: s.role.client("s3").head_object(
        Bucket=s.bucket, Key=f"{ANNOTATED_ROOT}{MONTH.datestamp}/missing.csv"
    ),
    ("logs", "FilterLogEvents"): lambda s: s.role.client("logs").filter_log_events(
        logGroupName=f"/aws/lambda/{s.stack}-check_gbif", filterPattern='"REPORT RequestId"'
    ),
}

#: Calls outside the workflow's resources, or not granted at all: each refused as AWS would.
REFUSED: dict[str, Call] = {
    "start another machine": lambda s: s.sfn().start_execution(stateMachineArn=s.other_machine),
    "stop another machine's execution": lambda s: s.sfn().stop_execution(
        executionArn=s.other_execution
    ),
    "describe another machine's execution": lambda s: s.sfn().describe_execution(
        executionArn=s.other_execution
    ),
    "the history of another machine's execution": lambda s: s.sfn().get_execution_history(
        executionArn=s.other_execution
    ),
    "describe another machine": lambda s: s.sfn().describe_state_machine(
        stateMachineArn=s.other_machine
    ),
    "list another machine's executions": lambda s: s.sfn().list_executions(
        stateMachineArn=s.other_machine
    ),
    "read a task spec (outside the published folders)": lambda s: s.role.client("s3").get_object(
        Bucket=s.bucket, Key=UNREADABLE
    ),
    "list another bucket (GBIF's)": lambda s: s.role.client("s3").list_objects_v2(
        Bucket=s.other_bucket, Prefix="occurrence/"
    ),
    "another schedule": lambda s: s.role.client("scheduler").get_schedule(Name="another-schedule"),
    "another stack": lambda s: s.role.client("cloudformation").describe_stacks(
        StackName="another-stack"
    ),
    "the state machine's log group": lambda s: s.role.client("logs").filter_log_events(
        logGroupName=s.outputs["StateMachineLogGroupName"]
    ),
    "another stack's Lambda logs": lambda s: s.role.client("logs").filter_log_events(
        logGroupName="/aws/lambda/another-stack-check_gbif"
    ),
    "a SQL statement's duration": lambda s: s.role.client("redshift-data").describe_statement(
        Id="00000000-0000-0000-0000-000000000000"
    ),
}


def test_every_console_call_is_checked() -> None:
    """A page that adds a call fails here until the role grants it (GRANTED) or says why not
    (NOT_GRANTED); the template's role is then checked by the calls below."""
    assert console_operations() == set(GRANTED) | set(NOT_GRANTED)


@pytest.mark.parametrize("operation", sorted(GRANTED), ids=lambda op: f"{op[0]}-{op[1]}")
def test_the_role_may_make_each_console_call_on_the_workflows_resources(
    setting: Setting, operation: tuple[str, str]
) -> None:
    problems = len(seam.PROBLEMS)
    try:
        GRANTED[operation](setting)
    except ClientError as exc:  # the service's own answer, after IAM allowed the call
        assert error_code(exc) not in DENIED, exc
    assert seam.PROBLEMS[problems:] == []


def test_a_missing_published_file_is_missing_not_refused(setting: Setting) -> None:
    """published() reads an unpublished month's marker as None only if S3 answers 404, which
    it does only to a caller allowed s3:ListBucket on the bucket."""
    with pytest.raises(ClientError) as missing:
        setting.role.client("s3").get_object(Bucket=setting.bucket, Key=MONTH.done_marker_key)
    assert error_code(missing.value) == "NoSuchKey"


@pytest.mark.parametrize("call", sorted(REFUSED))
def test_the_role_is_refused_outside_the_workflows_resources(setting: Setting, call: str) -> None:
    with pytest.raises(ClientError) as refused:
        REFUSED[call](setting)
    assert error_code(refused.value) in DENIED
    assert "is not authorized to perform" in str(refused.value)


# -- the local console runs as the role -----------------------------------------------------------


@pytest.fixture(scope="module")
def console(runtime: LocalRuntime) -> Iterator[Any]:
    with local_console(runtime) as server:
        yield server


def test_the_local_console_is_a_session_of_the_role(runtime: LocalRuntime, console: Any) -> None:
    assert runtime.deployment is not None
    role = runtime.deployment.outputs[CONSOLE_ROLE_OUTPUT]
    role_name = role.rsplit("/", 1)[1]
    identity = console.connection.client("sts").get_caller_identity()
    assert identity["Arn"] == (
        f"arn:aws:sts::{identity['Account']}:assumed-role/{role_name}/{CONSOLE_SESSION}"
    )
    assert console.connection.account == identity["Account"]


@pytest.mark.parametrize("path", ["", "executions", "outputs", "start"])
def test_the_console_pages_work_as_the_role(console: Any, path: str) -> None:
    """Each page's calls are granted: none is shown refused."""
    with urllib.request.urlopen(console.url + path, timeout=60) as response:
        page = response.read().decode()
    assert "AWS refused" not in page
