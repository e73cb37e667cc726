"""Run the workflow's SQL through the Redshift Data API, one batch per submit/poll round.

The state machine loops submit -> wait -> poll over the batches of a step in order, so this
module never waits: it submits one batch, or describes one statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from bisonflow import aws, config
from bisonflow.layout import MonthLayout
from bisonflow.redshift_sql import SqlTarget, statement_batches

FAILED_STATES = ("FAILED", "ABORTED")


class SqlStatementFailed(RuntimeError):
    """A Data API statement ended FAILED or ABORTED; the message carries the SQL error."""


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
    batches = statement_batches(step, layout, sql_target())
    if not 0 <= batch < len(batches):
        raise ValueError(f"{step} has {len(batches)} SQL batches; batch {batch} does not exist")
    sqls = batches[batch]
    redshift = config.RedshiftTarget.from_env()
    where = {"WorkgroupName": redshift.workgroup, "Database": redshift.database}
    client = aws.client("redshift-data")
    name = f"bisonflow-{step}-{layout.datestamp}-{batch}"
    if len(sqls) == 1:
        response = client.execute_statement(Sql=sqls[0], StatementName=name, **where)
    else:
        response = client.batch_execute_statement(Sqls=sqls, StatementName=name, **where)
    return Submitted(response["Id"], batch, len(batches), len(sqls))


def describe(statement_id: str) -> str:
    """The statement's status; raises SqlStatementFailed with the SQL error if it failed."""
    desc = aws.client("redshift-data").describe_statement(Id=statement_id)
    status = desc["Status"]
    if status in FAILED_STATES:
        raise SqlStatementFailed(_failure_message(desc))
    return status


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
