"""CheckGbif: validate the workflow input, find the month's GBIF snapshot, skip done months."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bisonflow.config import Timing
from bisonflow.gbif_snapshot import check_month
from bisonflow.lambda_edge import step_handler
from bisonflow.layout import MonthLayout, month_of_timestamp


@step_handler("check_gbif")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    month = event.get("month")
    if month is None and "scheduled_time" in event:  # started by the monthly schedule
        month = month_of_timestamp(event["scheduled_time"])
    layout = MonthLayout.for_month(month)
    result = check_month(layout, force=bool(event.get("force", False))).to_dict()
    result["settings"] = asdict(Timing.from_env())
    return result
