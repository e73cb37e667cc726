"""After a failure: terminate the instances the execution launched and drop its task tokens."""

from __future__ import annotations

from typing import Any

from bisonflow.ec2_tasks import cleanup
from bisonflow.lambda_edge import step_handler


@step_handler("cleanup_task")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    terminated, deleted = cleanup(event["execution"])
    return {"terminated": terminated, "deleted_tokens": deleted}
