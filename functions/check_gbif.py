"""CheckGbif: validate the workflow input, find the month's GBIF snapshot, skip done months."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from bisonflow.config import Timing
from bisonflow.gbif_snapshot import check_month
from bisonflow.lambda_edge import step_handler
from bisonflow.layout import MonthLayout


@step_handler("check_gbif")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    layout = MonthLayout.for_month(event.get("month"))
    result = check_month(layout, force=bool(event.get("force", False))).to_dict()
    result["settings"] = asdict(Timing.from_env())
    return result
