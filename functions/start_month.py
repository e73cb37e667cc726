"""StartMonth: the monthly schedule's target. Starts the `live` alias for the month of the
scheduled time under that month's one execution name, so a retried or repeated firing
starts nothing more (bisonflow.steps.scheduled_start)."""

from __future__ import annotations

from typing import Any

from bisonflow import aws, config
from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.scheduled_start import start_scheduled_month


@step_handler("start_month")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    sfn = aws.client("stepfunctions")
    return start_scheduled_month(sfn, config.workflow_alias(), event["scheduled_time"]).to_dict()
