"""Launch an EC2 task for a callback step (after ending a lost earlier attempt's instance), in
the first instance type and market with capacity; the task reports back with the stored
token."""

from __future__ import annotations

from typing import Any

from bisonflow.layout import MonthLayout
from bisonflow.steps.ec2_tasks import launch
from bisonflow.steps.lambda_edge import step_handler


@step_handler("launch_task")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    launched = launch(
        event["task"],
        MonthLayout.for_run(event["month"], event["execution"]),
        event["execution"],
        event["task_token"],
        event.get("attempt", 0),
        force=event.get("force", False),
    )
    return {
        "task": event["task"],
        "instance_id": launched.instance_id,
        "spec_key": launched.spec_key,
        "replaced": launched.replaced,
        **launched.pool.to_dict(),  # where it runs: the first pool with room
        "refused": launched.refused,  # capacity errors of the pools tried before
    }
