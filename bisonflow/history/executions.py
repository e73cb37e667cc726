"""Find, follow and keep the record of Step Functions executions of the BISON workflow.

Uses only calls that behave the same on AWS and on the local emulator: DescribeExecution,
GetExecutionHistory (all pages), DescribeStateMachineForExecution, and ListStateMachines /
ListExecutions to find the workflow and its executions.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bisonflow.history.execution_view import ExecutionView, build_view, details_of

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
#: The state machine's name, on AWS and in the local runtime (bisonflow.local.deploy).
STATE_MACHINE_NAME = "bison-workflow"


class ExecutionNotFound(LookupError):
    """An execution name or ARN, or the BISON state machine, that the account does not have."""


def find_state_machine(sfn: Any, name: str = STATE_MACHINE_NAME) -> str:
    """The ARN of the state machine called `name`."""
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return machine["stateMachineArn"]
    raise ExecutionNotFound(f"no state machine named {name!r} in this account and region")


def list_executions(
    sfn: Any, state_machine_arn: str, status: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Executions newest first (ListExecutions, every page until `limit`)."""
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn}
    if status:
        kwargs["statusFilter"] = status
    found: list[dict[str, Any]] = []
    for page in sfn.get_paginator("list_executions").paginate(**kwargs):
        found.extend(page["executions"])
        if limit is not None and len(found) >= limit:
            break
    found.sort(key=lambda e: e["startDate"], reverse=True)
    return found[:limit] if limit is not None else found


def resolve_execution(sfn: Any, execution: str, state_machine_arn: str | None = None) -> str:
    """The ARN of an execution given by ARN or by name (an execution of the BISON machine)."""
    if execution.startswith("arn:"):
        return execution
    machine = state_machine_arn or find_state_machine(sfn)
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for found in page["executions"]:
            if found["name"] == execution:
                return found["executionArn"]
    raise ExecutionNotFound(f"no execution named {execution!r} of {machine}")


def month_of(description: dict[str, Any]) -> str:
    """The month an execution was started for; "(current)" when its input names none."""
    try:
        payload = json.loads(description.get("input") or "{}")
    except ValueError:
        return "(unreadable input)"
    month = payload.get("month") if isinstance(payload, dict) else None
    return str(month) if month else "(current)"


def definition_of(sfn: Any, execution_arn: str) -> dict[str, Any]:
    """The definition the execution ran (DescribeStateMachineForExecution)."""
    found = sfn.describe_state_machine_for_execution(executionArn=execution_arn)
    return json.loads(found["definition"])


def load_view(
    sfn: Any, execution_arn: str, definition: dict[str, Any] | None = None
) -> ExecutionView:
    """DescribeExecution + GetExecutionHistory (+ the definition) as an ExecutionView."""
    description = sfn.describe_execution(executionArn=execution_arn)
    events = history(sfn, execution_arn)
    return build_view(description, definition or definition_of(sfn, execution_arn), events)


def poll(
    sfn: Any,
    execution_arn: str,
    update: Callable[[ExecutionView], None],
    interval: float = 0.5,
) -> ExecutionView:
    """Call update(view) every `interval` seconds until the execution ends; the final view.
    Each look asks only for the events after those it has (`events_after`), as `follow`."""
    definition = definition_of(sfn, execution_arn)
    events: list[dict[str, Any]] = []
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events += events_after(sfn, execution_arn, events[-1]["id"] if events else 0)
        view = build_view(description, definition, events)
        update(view)
        if view.status in TERMINAL:
            return view
        time.sleep(interval)


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


def describe_event(event: dict[str, Any]) -> str | None:
    """One human line for the events a person follows; None for the rest."""
    kind, details = event["type"], details_of(event)
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
        return f"!! {kind}: {details.get('error', '')}: {summary_line(details.get('cause'))}"
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


def summary_line(cause: str | None, limit: int = 300) -> str:
    """The one line of a cause worth showing.

    A Lambda error's JSON gives its errorMessage; a Python traceback its last line (the
    exception); anything else its first non-empty line.
    """
    if not cause:
        return ""
    try:
        data = json.loads(cause)
        if isinstance(data, dict) and "errorMessage" in data:
            cause = str(data["errorMessage"])
    except (ValueError, TypeError):
        pass
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1] if lines[0].startswith("Traceback (most recent call last)") else lines[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def follow(
    sfn: Any, execution_arn: str, show: Callable[[str], None], interval: float = 0.25
) -> dict[str, Any]:
    """Print progress state by state until the execution ends; return DescribeExecution."""
    started = time.monotonic()
    seen = 0
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        events = events_after(sfn, execution_arn, seen)
        for line in _lines(events):
            show(f"[{time.monotonic() - started:6.1f}s] {line}")
        seen = events[-1]["id"] if events else seen
        if description["status"] in TERMINAL:
            return description
        time.sleep(interval)


def events_after(sfn: Any, execution_arn: str, seen: int) -> list[dict[str, Any]]:
    """The events after event id `seen`, oldest first: the history read newest first, a page
    at a time, until a page reaches an event already seen (not the whole history each look:
    a megabyte by the demo's end)."""
    newest_first: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "executionArn": execution_arn,
        "reverseOrder": True,
        "maxResults": 25,  # a look a second seldom finds more; the next page if it does
    }
    while True:
        page = sfn.get_execution_history(**kwargs)
        new = [event for event in page["events"] if event["id"] > seen]
        newest_first.extend(new)
        if len(new) < len(page["events"]) or not page.get("nextToken"):
            return newest_first[::-1]
        kwargs["nextToken"] = page["nextToken"]


def _lines(events: list[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        line = describe_event(event)
        if line:
            yield line


#: A run record's files: what DescribeExecution and GetExecutionHistory returned, and the
#: folder the month's published outputs are copied into (keys kept as paths).
RECORD_EXECUTION, RECORD_HISTORY, RECORD_OUTPUTS = "execution.json", "history.json", "outputs"


def record_outputs(run_dir: Path) -> Path | None:
    """The outputs/ folder of the run record in run_dir; None when run_dir is not a run
    record or it holds no outputs."""
    outputs = Path(run_dir) / RECORD_OUTPUTS
    is_record = (Path(run_dir) / RECORD_EXECUTION).is_file()
    return outputs if is_record and outputs.is_dir() else None


def save_record(
    sfn: Any,
    execution_arn: str,
    out_dir: Path,
    description: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Path:
    """Write execution.json and history.json under out_dir/<execution name>/. `events`: the
    ended execution's history when the caller read it already (a megabyte for the demo)."""
    description = description or sfn.describe_execution(executionArn=execution_arn)
    run_dir = out_dir / description["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RECORD_EXECUTION).write_text(json.dumps(description, indent=2, default=str))
    events = history(sfn, execution_arn) if events is None else events
    (run_dir / RECORD_HISTORY).write_text(json.dumps({"events": events}, indent=2, default=str))
    return run_dir


def download_prefixes(s3: Any, bucket: str, prefixes: list[str], target: Path) -> list[Path]:
    """Copy every object under the prefixes into target/, keeping the key layout.

    One streamed GetObject each: download_file starts a transfer manager and its threads and
    asks HeadObject first, for each of a month's 47 files."""
    written = []
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                path = target / obj["Key"]
                path.parent.mkdir(parents=True, exist_ok=True)
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
                with path.open("wb") as out:
                    shutil.copyfileobj(body, out, 2**20)
                written.append(path)
    return written
