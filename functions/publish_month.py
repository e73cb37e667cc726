"""PublishMonth: make this execution's run the month's published version (bisonflow.steps.publish)
with one conditional write of the month's marker; returns where the marker is and what it
names."""

from __future__ import annotations

from typing import Any

from bisonflow import aws, config
from bisonflow.layout import MonthLayout
from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.publish import publish


@step_handler("publish_month")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    run = MonthLayout.for_run(event["month"], event["execution"])
    marker = publish(
        aws.client("s3"),
        config.bison_bucket(),
        run,
        event["execution_arn"],
        event.get("published_etag"),
    )
    return {
        "marker": run.done_marker_key,
        "execution": marker["execution"],
        "summary_prefix": run.summary_prefix,
        "files": len(marker["files"]),
        "published": marker["published"],
    }
