"""The AWS Step Functions Data Science SDK (`stepfunctions`, from the package
stepfunctions-without-sagemaker) attaches to the deployed machine and lists its executions.

The SDK builds its boto3 client with `boto3.client("stepfunctions")` unless it is given one,
and boto3 honours AWS_ENDPOINT_URL: the same user code works on AWS and on the emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from types import ModuleType

import boto3
import pytest
from conftest import wait_for_end

from bisonflow.local.runtime import LocalRuntime

#: A month before GBIF's open-data snapshots: CheckGbif ends the run with NoSnapshotYet.
NO_SNAPSHOT_MONTH = "2001-01"


@pytest.fixture(scope="module")
def sdk() -> Iterator[ModuleType]:
    """The SDK's import sets the root logger to ERROR; this suite's other tests keep theirs."""
    root = logging.getLogger()
    level = root.level
    import stepfunctions.workflow

    root.setLevel(level)
    yield stepfunctions


@pytest.fixture(scope="module")
def executions(runtime: LocalRuntime) -> dict[str, str]:
    """One execution that succeeds (no snapshot yet) and one that fails (bad input)."""
    arns = {
        "SUCCEEDED": runtime.start_execution(NO_SNAPSHOT_MONTH),
        "FAILED": runtime.start_execution("2026-13"),
    }
    for status, arn in arns.items():
        assert wait_for_end(runtime, arn, timeout=60)["status"] == status
    return arns


def test_workflow_attach_lists_the_deployed_machines_executions(
    runtime: LocalRuntime,
    executions: dict[str, str],
    sdk: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stepfunctions.workflow import ExecutionStatus, Workflow

    # Exactly what a user runs against AWS, with only the environment pointing elsewhere.
    monkeypatch.setenv("AWS_ENDPOINT_URL", runtime.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sdk-user")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sdk-user")
    assert runtime.deployment is not None
    workflow = Workflow.attach(runtime.deployment.state_machine_arn)
    assert workflow.name == "bison-workflow"
    assert workflow.state_machine_arn == runtime.deployment.state_machine_arn
    assert workflow.client.meta.endpoint_url == runtime.endpoint_url
    # The definition comes back as deployed: placeholders substituted with function ARNs.
    definition = workflow.definition.to_dict()
    assert definition["StartAt"] == "CheckGbif"
    assert definition["States"]["CheckGbif"]["Parameters"]["FunctionName"].startswith(
        "arn:aws:lambda:us-east-1:"
    )

    listed = {e.execution_arn: e for e in workflow.list_executions(max_items=1000)}
    assert set(executions.values()) <= set(listed)
    assert listed[executions["SUCCEEDED"]].status == "SUCCEEDED"
    failed = workflow.list_executions(status_filter=ExecutionStatus.Failed)
    assert executions["FAILED"] in {e.execution_arn for e in failed}
    assert executions["SUCCEEDED"] not in {e.execution_arn for e in failed}

    # An Execution reads its input, output and history through the same client.
    done = listed[executions["SUCCEEDED"]]
    assert done.get_input() == {"month": NO_SNAPSHOT_MONTH}
    assert done.get_output()["snapshot_exists"] is False
    events = done.list_events()
    assert events[0]["type"] == "ExecutionStarted"
    assert events[-1]["type"] == "ExecutionSucceeded"
    failure = listed[executions["FAILED"]].describe()
    assert failure["error"] == "SchemaViolation" and "2026-13" in failure["cause"]


def test_workflow_takes_an_explicit_client_too(
    runtime: LocalRuntime, executions: dict[str, str], sdk: ModuleType
) -> None:
    from stepfunctions.workflow import Workflow

    client = boto3.client(
        "stepfunctions",
        endpoint_url=runtime.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="sdk-user",
        aws_secret_access_key="sdk-user",
    )
    assert runtime.deployment is not None
    workflow = Workflow.attach(runtime.deployment.state_machine_arn, client=client)
    assert executions["FAILED"] in {e.execution_arn for e in workflow.list_executions()}
    listed = Workflow.list_workflows(client=client)
    assert runtime.deployment.state_machine_arn in {w["stateMachineArn"] for w in listed}
