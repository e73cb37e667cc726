"""Run the workflow's SQL through the Redshift Data API, one batch per submit/poll round.

The state machine loops submit -> wait -> poll over the batches of a step in order, so this
module never waits: it submits one batch, or describes one statement. When a finished
statement returned rows (the aggregate step's last batch does), polling also reads them, so
the step's counts travel in the state machine's own data and show in its history; they must
be the few rows of redshift_sql.SUMMARY_COLUMNS, as states pass only small dicts.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.layout import MonthLayout
from bisonflow.sql.subset_rules import SubsetRules
from bisonflow.sql.workflow_sql import SUMMARY_COLUMNS, SqlTarget, statement_batches

FAILED_STATES = ("FAILED", "ABORTED")
#: At most this many result rows are handed to the state machine (its payloads are small).
MAX_SUMMARY_ROWS = 100

#: {tally: {label: value}}, e.g. {"occurrences_by_assessment": {"invasive": 120, ...}}.
Summary = dict[str, dict[str, int]]


class SqlStatementFailed(RuntimeError):
    """A Data API statement ended FAILED or ABORTED; the message carries the SQL error."""


class SqlStatementTimedOut(RuntimeError):
    """A statement ran past its bound (steps.waits); it was cancelled (CancelStatement)."""


def sql_target() -> SqlTarget:
    redshift = config.RedshiftTarget.from_env()
    return SqlTarget(
        gbif_bucket=config.gbif_bucket(),
        bison_bucket=config.bison_bucket(),
        iam_role=redshift.iam_role,
        region=aws.region(),
    )


@dataclass(frozen=True)
class Submitted:
    statement_id: str
    batch: int
    batches: int
    statements: int


def submit_batch(step: str, layout: MonthLayout, batch: int) -> Submitted:
    batches = statement_batches(step, layout, sql_target(), SubsetRules.from_env())
    if not 0 <= batch < len(batches):
        raise ValueError(f"{step} has {len(batches)} SQL batches; batch {batch} does not exist")
    sqls = batches[batch]
    redshift = config.RedshiftTarget.from_env()
    where = {"WorkgroupName": redshift.workgroup, "Database": redshift.database}
    client = aws.client("redshift-data")
    name = f"{run_prefix(layout.run)}{step}-{layout.datestamp}-{batch}" if layout.run else None
    named = {"StatementName": name} if name else {}
    if len(sqls) == 1:
        response = client.execute_statement(Sql=sqls[0], **named, **where)
    else:
        response = client.batch_execute_statement(Sqls=sqls, **named, **where)
    return Submitted(response["Id"], batch, len(batches), len(sqls))


def run_batches(
    client: Any,
    batches: list[list[str]],
    workgroup: str,
    database: str = "dev",
    timeout: float = 600.0,
) -> str:
    """Submit the batches one after the other as the state machine does, each waited for.

    For tests and benchmarks that run a step's SQL without the state machine (through the
    local stand-in or any Data API client). Returns the id of the last statement; raises
    SqlStatementFailed naming the batch and the SQL error if one does not finish, and
    TimeoutError if one runs past `timeout` seconds.
    """
    where = {"WorkgroupName": workgroup, "Database": database}
    statement_id = ""
    for n, batch in enumerate(batches):
        if len(batch) == 1:
            statement_id = client.execute_statement(Sql=batch[0], **where)["Id"]
        else:
            statement_id = client.batch_execute_statement(Sqls=batch, **where)["Id"]
        deadline = time.monotonic() + timeout
        while True:
            desc = client.describe_statement(Id=statement_id)
            if desc["Status"] == "FINISHED" or desc["Status"] in FAILED_STATES:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {n + 1}/{len(batches)} still {desc['Status']}")
            time.sleep(0.01)
        if desc["Status"] != "FINISHED":
            raise SqlStatementFailed(
                f"batch {n + 1}/{len(batches)} {desc['Status']}: {desc.get('Error')}"
            )
    return statement_id


def run_prefix(execution: str) -> str:
    """The start of the StatementName of every statement execution `execution` (its name)
    submits. `/` cannot occur in an execution name (StartExecution, `name`), so one run's
    prefix never starts another's, as a prefix ending in `-` would ("run-1-" and "run-1-b")."""
    return f"bisonflow/{execution}/"


#: Statuses of a statement still queued or running (Data API reference, DescribeStatement).
LIVE_STATES = ("SUBMITTED", "PICKED", "STARTED")


def cancel_run(execution: str) -> list[str]:
    """Cancel every statement of run `execution` still queued or running; their ids.

    ListStatements finds them by StatementName prefix ("You can list multiple statements by
    providing a prefix"), Status ALL (its default shows only finished ones), among the
    statements of the caller's IAM role (RoleLevel true, the default): so this must run as the
    role that submitted them, the SQL Lambdas' (bisonflow.steps.run_cleanup asks that Lambda). A
    statement that ended between the list and the cancel is refused with ValidationException
    and skipped.
    """
    client = aws.client("redshift-data")
    live: list[str] = []
    pages = client.get_paginator("list_statements").paginate(
        StatementName=run_prefix(execution), Status="ALL", RoleLevel=True
    )
    for page in pages:
        live += [s["Id"] for s in page["Statements"] if s["Status"] in LIVE_STATES]
    cancelled = []
    for statement_id in live:
        try:
            client.cancel_statement(Id=statement_id)
        except ClientError as exc:
            if aws.error_code(exc) != "ValidationException":
                raise
            continue
        cancelled.append(statement_id)
    return cancelled


@dataclass(frozen=True)
class Polled:
    status: str
    result: Summary | None  # the rows of a FINISHED statement that returned some, else None


def poll(statement_id: str, timeout_seconds: int | None = None) -> Polled:
    """The statement's status, and its summary rows once it FINISHED with a result set.

    Raises SqlStatementFailed with the SQL error if it failed, and SqlStatementTimedOut after
    cancelling it if it is still running `timeout_seconds` after the Data API created it.
    """
    client = aws.client("redshift-data")
    desc = client.describe_statement(Id=statement_id)
    status = desc["Status"]
    if status in FAILED_STATES:
        raise SqlStatementFailed(_failure_message(desc))
    if status != "FINISHED" and timeout_seconds is not None:
        _cancel_if_over(client, desc, timeout_seconds)
    if status != "FINISHED" or not desc.get("HasResultSet"):
        return Polled(status, None)
    return Polled(status, summary(client, _result_id(desc)))


def _cancel_if_over(client: Any, desc: dict, timeout_seconds: int) -> None:
    """Cancel a statement running past its bound and raise SqlStatementTimedOut.

    CancelStatement refuses a statement that ended meanwhile (ValidationException, "Could not
    cancel a query that is already in FINISHED state"): then the next poll reports its end.
    """
    age = (dt.datetime.now(dt.UTC) - desc["CreatedAt"]).total_seconds()
    if age <= timeout_seconds:
        return
    try:
        client.cancel_statement(Id=desc["Id"])
    except ClientError as exc:
        if aws.error_code(exc) != "ValidationException":
            raise
        return
    sql = " ".join(str(desc.get("QueryString", "")).split())[:300]
    raise SqlStatementTimedOut(
        f"statement {desc['Id']} was still {desc['Status']} after {age:.0f} s, over the "
        f"bound of {timeout_seconds} s (SQL_STATEMENT_TIMEOUT_SECONDS): cancelled"
        + (f"\n  SQL: {sql}" if sql else "")
    )


def _result_id(desc: dict) -> str:
    """The statement whose rows to read: a batch's last sub-statement with a result set."""
    with_rows = [s["Id"] for s in desc.get("SubStatements") or [] if s.get("HasResultSet")]
    return with_rows[-1] if with_rows else desc["Id"]


class SummaryShapeError(ValueError):
    """A statement's result is not a small SUMMARY_COLUMNS table."""


def summary(client: Any, result_id: str) -> Summary:
    """Fold a (tally, label, value) result into {tally: {label: value}}, all pages read."""
    pages, token = [], None
    while True:
        page = client.get_statement_result(Id=result_id, **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    columns = tuple(c["name"] for c in pages[0]["ColumnMetadata"])
    if columns != SUMMARY_COLUMNS:
        raise SummaryShapeError(
            f"statement {result_id} returned columns {columns}; the state machine takes "
            f"results of {SUMMARY_COLUMNS} only"
        )
    records = [record for page in pages for record in page["Records"]]
    if len(records) > MAX_SUMMARY_ROWS:
        raise SummaryShapeError(
            f"statement {result_id} returned {len(records)} rows; at most {MAX_SUMMARY_ROWS} "
            "fit the state machine's payload"
        )
    folded: Summary = {}
    for tally, label, value in records:
        if tally.get("isNull") or label.get("isNull") or "longValue" not in value:
            raise SummaryShapeError(
                f"statement {result_id}: a summary row needs a tally, a label and an integer "
                f"value, got {[tally, label, value]}"
            )
        folded.setdefault(tally["stringValue"], {})[label["stringValue"]] = value["longValue"]
    return folded


def _failure_message(desc: dict) -> str:
    message = f"statement {desc['Id']} {desc['Status']}: {desc.get('Error') or 'no error text'}"
    for sub in desc.get("SubStatements") or []:
        if sub.get("Status") in FAILED_STATES or sub.get("Error"):
            sql = " ".join(str(sub.get("QueryString", "")).split())[:300]
            message += f"\n  sub-statement {sub.get('Id')} {sub.get('Status')}: {sub.get('Error')}"
            message += f"\n  SQL: {sql}"
            break
    else:
        sql = " ".join(str(desc.get("QueryString", "")).split())[:300]
        if sql:
            message += f"\n  SQL: {sql}"
    return message
