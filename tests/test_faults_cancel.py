"""Faults: a run that fails or is stopped while a Data API statement runs leaves no statement
running (issue 11, "cancels its Data API statements"). Its statements carry its name
(StatementName `bisonflow/<execution>/...`); the cleanup asks the SQL Lambda, whose role ran
them, to cancel them (bisonflow.steps.run_cleanup), both from CleanupTasks in a failed run and from
ExecutionEndedUncleanRule after a stopped one (delivered locally by bisonflow.local.sfn.events).

Here: why the cleanup must ask (only the submitting role sees and cancels a statement,
bisonflow.local.redshift.owner), and the helpers tests/test_faults_stopped.py uses to show it
done in a stopped run, whose subset statement bisonflow.local.faults.sql_fault holds running
until it is cancelled, as a long Redshift query would run. A cancel that fails is in
tests/test_faults_cleanup.py."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from bisonflow.local import faults
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.statements import LIVE_STATES, run_prefix

SUBSET_SQL = r"CREATE TABLE bison_\d{4}_\d\d_01 AS"


def run_statements(rt: LocalRuntime, execution: str) -> list[dict[str, Any]]:
    """Every statement of run `execution` (its name), as the operator lists them."""
    pages = rt.clients["redshift-data"].get_paginator("list_statements")
    return [
        s
        for page in pages.paginate(StatementName=run_prefix(execution), Status="ALL")
        for s in page["Statements"]
    ]


def wait_for_running_statement(rt: LocalRuntime, execution: str, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for statement in run_statements(rt, execution):
            if statement["Status"] == "STARTED" and "CREATE TABLE" in str(statement):
                return str(statement["Id"])
        time.sleep(0.2)
    raise AssertionError(f"{execution} ran no subset statement in {timeout} s")


def assert_cancelled(rt: LocalRuntime, execution: str, statement: str) -> None:
    """`statement` ended ABORTED (CancelStatement interrupts a running query, which then
    ends: allow it a moment) and no statement of the run is queued or running."""
    deadline = time.monotonic() + 30
    while True:
        found = {s["Id"]: s["Status"] for s in run_statements(rt, execution)}
        if found[statement] == "ABORTED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found[statement] == "ABORTED", found
    assert not [i for i, status in found.items() if status in LIVE_STATES], found


def test_only_the_role_that_ran_a_statement_may_list_or_cancel_it(runtime: LocalRuntime) -> None:
    """The reason the cleanup asks the SQL Lambda: as its own role it sees none of the SQL
    role's statements, nor may it cancel one (bisonflow.local.redshift.owner); another session
    of the SQL role may (RoleLevel: "all statements run by the caller's IAM role")."""
    import boto3

    from bisonflow.local.credentials import role_credentials

    assert runtime.deployment
    awslambda = runtime.clients["lambda"]

    def client_of(function: str, session: str) -> Any:
        fn = f"{runtime.deployment.stack_name}-{function}"
        config = awslambda.get_function_configuration(FunctionName=fn)
        client = boto3.client(
            "redshift-data",
            endpoint_url=runtime.endpoint_url,
            region_name="us-east-1",
            **role_credentials(config["Role"], session),
        )
        return client, config["Environment"]["Variables"]

    submitter, env = client_of("submit_statements", "submitter")
    workgroup = {"WorkgroupName": env["REDSHIFT_WORKGROUP"], "Database": env["REDSHIFT_DATABASE"]}
    with faults.sql_fault("SELECT 42", hang=True):
        statement = submitter.execute_statement(
            Sql="SELECT 42", StatementName=run_prefix("owner-check") + "x", **workgroup
        )["Id"]
        poller, _ = client_of("poll_statement", "another-session")
        cleaner, _ = client_of("cleanup_task", "cleanup")
        # Even granted the Data API actions, another role sees none of the SQL role's work.
        role = awslambda.get_function_configuration(
            FunctionName=f"{runtime.deployment.stack_name}-cleanup_task"
        )["Role"].rsplit("/", 1)[1]
        grant = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["redshift-data:ListStatements", "redshift-data:CancelStatement"],
                    "Resource": "*",
                }
            ],
        }
        iam = runtime.clients["iam"]
        iam.put_role_policy(
            RoleName=role, PolicyName="try-direct", PolicyDocument=json.dumps(grant)
        )
        try:
            listed = {s["Id"] for s in cleaner.list_statements(Status="ALL")["Statements"]}
            assert statement not in listed
            with pytest.raises(cleaner.exceptions.ResourceNotFoundException):
                cleaner.cancel_statement(Id=statement)
        finally:
            iam.delete_role_policy(RoleName=role, PolicyName="try-direct")
        mine = poller.list_statements(StatementName=run_prefix("owner-check"), Status="ALL")
        assert [s["Id"] for s in mine["Statements"]] == [statement]
        # RoleLevel false: "only statements run by the caller's IAM role in the current IAM
        # session" (Data API reference, ListStatements), and this is another session.
        this_session = poller.list_statements(
            StatementName=run_prefix("owner-check"), Status="ALL", RoleLevel=False
        )
        assert this_session["Statements"] == []
        assert poller.cancel_statement(Id=statement)["Status"] is True
    deadline = time.monotonic() + 30
    while poller.describe_statement(Id=statement)["Status"] != "ABORTED":
        assert time.monotonic() < deadline, "the cancelled statement never ended ABORTED"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"statement_id": "x", "step": "subset", "batch": 0}, "missing required field 'batches'"),
        ({"cancel_run": "run-1", "batch": 0}, "'batch' was unexpected"),
        ({"cancel_run": ""}, "$.cancel_run"),
    ],
)
def test_a_bad_request_to_the_sql_lambda_is_told_what_its_own_shape_lacks(
    event: dict[str, Any], message: str
) -> None:
    """poll_statement takes two shapes (a statement to poll, the cleanup's cancel request);
    its schema picks the shape by `cancel_run` (if/then/else), so the error names the field
    that shape lacks instead of "not valid under any of the given schemas" (oneOf)."""
    from bisonflow.schemas import SchemaViolation
    from functions import poll_statement

    with pytest.raises(SchemaViolation) as raised:
        poll_statement.handler(event, None)
    assert message in str(raised.value)
