"""Take or release the month's lock (bisonflow.steps.month_lock): one run per month at a time."""

from __future__ import annotations

from typing import Any

from bisonflow.layout import MonthLayout
from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.month_lock import acquire, release


@step_handler("month_lock")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    layout = MonthLayout.for_month(event["month"])
    if event["action"] == "acquire":
        return acquire(layout, event["execution"]).to_dict()
    return {"released": release(event["execution"], layout)}
