"""Describe a submitted statement; raise SqlStatementFailed with the SQL error if it failed."""

from __future__ import annotations

from typing import Any

from bisonflow.lambda_edge import step_handler
from bisonflow.statements import describe


@step_handler("poll_statement")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    status = describe(event["statement_id"])
    next_batch = event["batch"] + 1
    return {
        **event,
        "status": status,
        "next_batch": next_batch,
        "more_batches": next_batch < event["batches"],
    }
