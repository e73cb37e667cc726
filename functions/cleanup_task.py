"""After a failure or a stop: cancel the SQL the execution left running (through the SQL
Lambda, whose role ran it), terminate the instances it launched, drop its task tokens and
release the month lock it holds (bisonflow.steps.run_cleanup)."""

from __future__ import annotations

from typing import Any

from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.run_cleanup import clean_up_run


@step_handler("cleanup_task")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    return clean_up_run(event["execution"], event.get("execution_arn"), event.get("ended"))
