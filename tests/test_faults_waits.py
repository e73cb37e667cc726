"""Faults: every wait is bounded (issue 11). A SQL statement running past its bound is
cancelled through the Data API and fails its step with SqlStatementTimedOut, also when the
deployed poll Lambda does it as its own role under IAM enforcement."""

from __future__ import annotations

import json
import time

import pytest
from lambda_live import live_environment

from bisonflow.config import ConfigError
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.statements import SqlStatementTimedOut
from bisonflow.steps.waits import SnapshotWait, sql_statement_timeout_seconds
from functions import poll_statement

#: Long enough on DuckDB (10^11 rows) that it is still running when the poll looks; the
#: cancel interrupts it.
SLOW_SQL = (
    "SELECT count(*) FROM (SELECT 1 AS x FROM generate_series(1, 1000000)) AS a "
    "CROSS JOIN (SELECT 1 AS y FROM generate_series(1, 100000)) AS b"
)


def status_of(rt: LocalRuntime, statement_id: str, until: str, timeout: float = 10) -> str:
    data = rt.clients["redshift-data"]
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        status = data.describe_statement(Id=statement_id)["Status"]
        if status == until:
            break
        time.sleep(0.1)
    return status


def slow_statement(rt: LocalRuntime) -> str:
    """A statement that is still running a few seconds after it was submitted."""
    data = rt.clients["redshift-data"]
    workgroup = rt.clients["lambda"].get_function_configuration(
        FunctionName="bisonflow-submit_statements"
    )["Environment"]["Variables"]["REDSHIFT_WORKGROUP"]
    statement = data.execute_statement(WorkgroupName=workgroup, Database="dev", Sql=SLOW_SQL)
    return statement["Id"]


def test_a_statement_past_its_bound_is_cancelled_and_named(
    aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQL_STATEMENT_TIMEOUT_SECONDS", "6")  # room for a loaded machine
    statement_id = slow_statement(aws_env)
    event = {"statement_id": statement_id, "step": "aggregate", "batch": 0, "batches": 1}
    # Within its bound the statement is only polled.
    assert poll_statement.handler(event, None)["status"] in ("SUBMITTED", "PICKED", "STARTED")
    time.sleep(6.5)
    with pytest.raises(SqlStatementTimedOut, match=r"over the bound of 6 s.*cancelled"):
        poll_statement.handler(event, None)
    assert status_of(aws_env, statement_id, "ABORTED") == "ABORTED"


def test_the_deployed_poll_lambda_may_cancel_as_its_role(runtime: LocalRuntime) -> None:
    """Through the `live` alias the state machine invokes, as the SQL role, IAM enforced: the
    role's redshift-data:CancelStatement grant is what lets the bound work on AWS."""
    assert runtime.deployment
    statement_id = slow_statement(runtime)
    event = {"statement_id": statement_id, "step": "subset", "batch": 0, "batches": 2}
    with live_environment(runtime, "poll_statement", {"SQL_STATEMENT_TIMEOUT_SECONDS": "1"}):
        time.sleep(2.5)
        response = runtime.clients["lambda"].invoke(
            FunctionName=f"{runtime.deployment.stack_name}-poll_statement:live",
            Payload=json.dumps(event),
        )
    error = json.loads(response["Payload"].read())
    assert "FunctionError" in response, error  # moto says "Handled"; AWS, "Unhandled"
    assert error["errorType"] == "SqlStatementTimedOut", error
    assert "SQL_STATEMENT_TIMEOUT_SECONDS" in error["errorMessage"]
    assert status_of(runtime, statement_id, "ABORTED") == "ABORTED"


def test_bad_bounds_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQL_STATEMENT_TIMEOUT_SECONDS", "0")
    with pytest.raises(ConfigError, match="SQL_STATEMENT_TIMEOUT_SECONDS must be >= 1"):
        sql_statement_timeout_seconds()
    monkeypatch.setenv("SNAPSHOT_WAIT_DAYS", "11")
    with pytest.raises(ConfigError, match="SNAPSHOT_WAIT_DAYS must be between 0 and 10"):
        SnapshotWait.from_env()
    monkeypatch.setenv("SNAPSHOT_WAIT_DAYS", "a week")
    with pytest.raises(ConfigError, match="SNAPSHOT_WAIT_DAYS must be a number"):
        SnapshotWait.from_env()
