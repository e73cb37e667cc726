"""CheckGbif: validate the workflow input, find the month's GBIF snapshot, skip done months;
for a scheduled run, say whether to wait for a late snapshot (bisonflow.steps.waits)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bisonflow.config import Timing
from bisonflow.layout import MonthLayout, month_of_timestamp
from bisonflow.steps.gbif_snapshot import check_month
from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.waits import SnapshotWait, late_snapshot


@step_handler("check_gbif")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    month = event.get("month")
    if month is None and "scheduled_time" in event:  # started by the monthly schedule
        month = month_of_timestamp(event["scheduled_time"])
    layout = MonthLayout.for_month(month)
    force = bool(event.get("force", False))
    check = check_month(layout, force=force)
    wait = SnapshotWait.from_env()
    late = late_snapshot(check, event.get("scheduled_time"), force, wait)
    settings = asdict(Timing.from_env()) | {"snapshot_recheck_seconds": wait.recheck_seconds}
    return check.to_dict() | late | {"settings": settings}
