"""After a failure: terminate the instances the execution launched, drop its task tokens and
release the month lock it holds (bisonflow.month_lock)."""

from __future__ import annotations

from typing import Any

from bisonflow.ec2_tasks import cleanup
from bisonflow.lambda_edge import step_handler
from bisonflow.month_lock import release


@step_handler("cleanup_task")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    terminated, deleted = cleanup(event["execution"])
    released = release(event["execution_arn"]) if "execution_arn" in event else []
    return {"terminated": terminated, "deleted_tokens": deleted, "released_locks": released}
