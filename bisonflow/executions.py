"""Follow a Step Functions execution and keep its record: history, description, outputs.

Uses only DescribeExecution and GetExecutionHistory, which behave the same on AWS and on the
local emulator.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


def history(sfn: Any, execution_arn: str) -> list[dict[str, Any]]:
    """Every event, following nextToken."""
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        events.extend(page["events"])
        if not page.get("nextToken"):
            return events
        kwargs["nextToken"] = page["nextToken"]


#: States whose entry and exit a person follows; Choice, Pass and Wait are bookkeeping.
_FOLLOWED = ("Task", "Parallel", "Succeed", "Fail")


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def describe_event(event: dict[str, Any]) -> str | None:
    """One human line for the events a person follows; None for the rest."""
    kind, details = event["type"], _details(event)
    if kind.endswith("StateEntered") and kind.startswith(_FOLLOWED):
        return f"-> {details.get('name')}"
    if kind.endswith("StateExited") and kind.startswith(_FOLLOWED):
        return f"<- {details.get('name')}"
    if kind == "TaskSubmitted" and details.get("resource") == "invoke.waitForTaskToken":
        return "   task launched on EC2; waiting for it to report back"
    if kind == "TaskSucceeded" and details.get("resource") == "invoke.waitForTaskToken":
        return "   task reported success"
    if kind == "TaskSucceeded":
        return _sql_progress(details.get("output"))
    if kind in ("TaskFailed", "TaskTimedOut", "ExecutionFailed", "ExecutionTimedOut"):
        return f"!! {kind}: {details.get('error', '')}: {_first_line(details.get('cause'))}"
    if kind in ("ExecutionSucceeded", "ExecutionAborted"):
        return kind
    return None


def _sql_progress(output: str | None) -> str | None:
    """`subset SQL batch 2/5: FINISHED` when a Lambda polled a Redshift statement."""
    try:
        payload = json.loads(output or "{}").get("Payload") or {}
    except (ValueError, AttributeError):
        return None
    if isinstance(payload, dict) and {"status", "batch", "batches", "step"} <= payload.keys():
        batch = f"{payload['batch'] + 1}/{payload['batches']}"
        return f"   {payload['step']} SQL batch {batch}: {payload['status']}"
    return None


def _first_line(cause: str | None) -> str:
    if not cause:
        return ""
    try:
        data = json.loads(cause)
        if isinstance(data, dict) and "errorMessage" in data:
            cause = str(data["errorMessage"])
    except (ValueError, TypeError):
        pass
    lines = [line for line in str(cause).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def follow(
    sfn: Any, execution_arn: str, show: Callable[[str], None], interval: float = 0.25
) -> dict[str, Any]:
    """Print progress state by state until the execution ends; return DescribeExecution."""
    started = time.monotonic()
    seen = 0
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events = history(sfn, execution_arn)
        for line in _lines(events[seen:]):
            show(f"[{time.monotonic() - started:6.1f}s] {line}")
        seen = len(events)
        if description["status"] in TERMINAL:
            return description
        time.sleep(interval)


def _lines(events: list[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        line = describe_event(event)
        if line:
            yield line


def save_record(
    sfn: Any, execution_arn: str, out_dir: Path, description: dict[str, Any] | None = None
) -> Path:
    """Write execution.json and history.json under out_dir/<execution name>/."""
    description = description or sfn.describe_execution(executionArn=execution_arn)
    run_dir = out_dir / description["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "execution.json").write_text(json.dumps(description, indent=2, default=str))
    events = history(sfn, execution_arn)
    (run_dir / "history.json").write_text(json.dumps({"events": events}, indent=2, default=str))
    return run_dir


def download_prefixes(s3: Any, bucket: str, prefixes: list[str], target: Path) -> list[Path]:
    """Copy every object under the prefixes into target/, keeping the key layout."""
    written = []
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                path = target / obj["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, obj["Key"], str(path))
                written.append(path)
    return written
