"""Submit one batch of a step's Redshift SQL through the Data API; returns the statement id."""

from __future__ import annotations

from typing import Any

from bisonflow.layout import MonthLayout
from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.statements import submit_batch


@step_handler("submit_statements")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    submitted = submit_batch(
        event["step"], MonthLayout.for_run(event["month"], event["execution"]), event["batch"]
    )
    return {
        "step": event["step"],
        "batch": submitted.batch,
        "batches": submitted.batches,
        "statement_id": submitted.statement_id,
        "statements": submitted.statements,
    }
