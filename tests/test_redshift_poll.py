"""The workflow's Data API client (bisonflow.steps.statements: the poll Lambda's summary,
run_batches) against the stand-in: a finished statement's rows reach the state machine only
in the shape it can carry."""

from __future__ import annotations

import time
from typing import Any

import pytest
from redshift_data_api import (  # noqa: F401 (rsd_fixture: the `rsd` fixture)
    WHERE,
    rsd_fixture,
)

from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.statements import SqlStatementFailed, SummaryShapeError, run_batches

# --- the poll Lambda reads a finished statement's summary -----------------------------------


def _poll_until_done(statement_id: str) -> dict[str, Any]:
    from functions import poll_statement

    event = {"statement_id": statement_id, "step": "aggregate", "batch": 7, "batches": 8}
    for _ in range(400):
        polled = poll_statement.handler(event, None)
        if polled["status"] == "FINISHED":
            return polled
        time.sleep(0.025)
    raise AssertionError(f"statement {statement_id} did not finish")


def test_poll_returns_the_summary_of_a_finished_select(aws_env: LocalRuntime, rsd: Any) -> None:
    data, where = rsd, WHERE
    single = data.execute_statement(
        Sql="SELECT 'occurrences_by_region' AS tally, 'AK' AS label, 5 AS value "
        "UNION ALL SELECT 'occurrences_by_region', 'L48', 7 UNION ALL SELECT 'sites', 'state', 2",
        **where,
    )
    polled = _poll_until_done(single["Id"])
    assert polled["result"] == {"occurrences_by_region": {"AK": 5, "L48": 7}, "sites": {"state": 2}}
    assert polled["more_batches"] is False

    batch = data.batch_execute_statement(
        Sqls=[
            "CREATE TEMP TABLE poll_t AS SELECT 'sites' AS tally, 'aiannh' AS label, 4 AS value",
            "SELECT tally, label, value FROM poll_t",
        ],
        **where,
    )
    assert _poll_until_done(batch["Id"])["result"] == {"sites": {"aiannh": 4}}
    no_rows = data.execute_statement(Sql="CREATE TEMP TABLE poll_u (a INT)", **where)
    assert _poll_until_done(no_rows["Id"])["result"] is None


def test_run_batches_names_the_failing_batch(rsd: Any) -> None:
    with pytest.raises(SqlStatementFailed, match=r"batch 2/2 FAILED: .*no_such_table"):
        run_batches(rsd, [["SELECT 1"], ["SELECT * FROM no_such_table"]], WHERE["WorkgroupName"])


def test_poll_refuses_a_result_the_state_machine_cannot_carry(
    aws_env: LocalRuntime, rsd: Any
) -> None:
    data, where = rsd, WHERE
    wrong = data.execute_statement(Sql="SELECT 1 AS n, 2 AS m", **where)
    with pytest.raises(SummaryShapeError, match=r"columns \('n', 'm'\)"):
        _poll_until_done(wrong["Id"])
    many = data.execute_statement(
        Sql="SELECT 'sites' AS tally, CAST(i AS VARCHAR) AS label, i AS value FROM range(101) t(i)",
        **where,
    )
    with pytest.raises(SummaryShapeError, match="101 rows"):
        _poll_until_done(many["Id"])
