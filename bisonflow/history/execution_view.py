"""What happened to each state of one execution, derived from its history and definition.

The terminal view, `bisonflow watch` and report.html all draw from this one model, so they
can never disagree about a state's status, timings or error. It needs only what AWS and the
emulator both return: DescribeExecution, GetExecutionHistory (all pages) and
DescribeStateMachineForExecution.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SUCCEEDED, FAILED, CAUGHT, RUNNING, CANCELLED, NOT_RUN = (
    "SUCCEEDED",
    "FAILED",
    "CAUGHT",
    "RUNNING",
    "CANCELLED",
    "NOT_RUN",
)
#: Every status a state can have, with what it means (the report's legend).
STATUSES: dict[str, str] = {
    SUCCEEDED: "entered and left normally",
    FAILED: "failed, and the failure was not caught here",
    CAUGHT: "failed, and its Catch sent the execution on",
    RUNNING: "entered and not yet left",
    CANCELLED: "stopped unfinished because a parallel branch or the execution failed",
    NOT_RUN: "never entered in this execution",
}

_FAILURE_EVENTS = (
    "TaskFailed",
    "TaskTimedOut",
    "TaskSubmitFailed",
    "TaskStartFailed",
    "LambdaFunctionFailed",
    "LambdaFunctionTimedOut",
    "ParallelStateFailed",
    "MapStateFailed",
    "ExecutionFailed",
)


@dataclass(frozen=True)
class StateDef:
    """A state as the definition declares it, with the Parallel branch it sits in."""

    name: str
    type: str
    branch: tuple[str, int] | None  # (Parallel state name, branch index), None at top level
    definition: dict[str, Any]


@dataclass
class StateRun:
    """One state's part in the execution (all visits of a state in a loop are summed)."""

    name: str
    type: str
    branch: tuple[str, int] | None
    status: str = NOT_RUN
    visits: int = 0
    attempts: int = 0  # task invocations (TaskScheduled); attempts - visits = retries
    entered: dt.datetime | None = None  # first entry
    exited: dt.datetime | None = None  # last exit
    intervals: list[list[dt.datetime | None]] = field(default_factory=list)  # [entered, exited]
    input: str | None = None  # of the last visit
    output: str | None = None
    error: str | None = None
    cause: str | None = None
    resource: str | None = None
    event_ids: list[int] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return max(0, self.attempts - self.visits)

    @property
    def busy_seconds(self) -> float:
        """Time inside the state summed over its finished visits."""
        return sum((end - start).total_seconds() for start, end in self.intervals if start and end)


@dataclass
class ExecutionView:
    name: str
    arn: str
    status: str
    start: dt.datetime | None
    stop: dt.datetime | None
    input: str | None
    output: str | None
    error: str | None
    cause: str | None
    definition: dict[str, Any]
    states: dict[str, StateRun]  # every state of the definition, in definition order
    events: list[dict[str, Any]]

    @property
    def duration_seconds(self) -> float | None:
        if not self.start:
            return None
        end = self.stop or max((e["timestamp"] for e in self.events), default=self.start)
        return (end - self.start).total_seconds()

    def in_order(self) -> list[StateRun]:
        """States that ran, by first entry; then those that never ran."""
        entered = {s.name: s.entered for s in self.states.values() if s.entered}
        ran = sorted((self.states[name] for name in entered), key=lambda s: entered[s.name])
        return ran + [s for s in self.states.values() if not s.entered]


def state_defs(definition: dict[str, Any]) -> list[StateDef]:
    """Every state in the definition, Parallel branches included, in declaration order."""

    def walk(states: dict[str, Any], branch: tuple[str, int] | None) -> list[StateDef]:
        found = []
        for name, state in states.items():
            found.append(StateDef(name, state["Type"], branch, state))
            for index, sub in enumerate(state.get("Branches", [])):
                found.extend(walk(sub["States"], (name, index)))
        return found

    return walk(definition["States"], None)


def details_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """A history event's details, {} for an event without any: GetExecutionHistory names them
    after the event's type (`taskScheduledEventDetails`, ...), so every reader of a history
    (this view, the followed lines, the cost estimate, the report) finds them by the suffix."""
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def build_view(
    description: dict[str, Any], definition: dict[str, Any] | str, events: list[dict[str, Any]]
) -> ExecutionView:
    """The model of one execution; works on histories saved as JSON too (timestamps as text)."""
    spec: dict[str, Any] = json.loads(definition) if isinstance(definition, str) else definition
    events = [{**e, "timestamp": _timestamp(e["timestamp"])} for e in events]
    runs = {d.name: StateRun(d.name, d.type, d.branch) for d in state_defs(spec)}
    _follow(runs, events)
    status = description["status"]
    if status != "RUNNING":
        _close_unfinished(runs, description)
    return ExecutionView(
        name=description["name"],
        arn=description["executionArn"],
        status=status,
        start=_maybe_time(description.get("startDate")),
        stop=_maybe_time(description.get("stopDate")),
        input=description.get("input"),
        output=description.get("output"),
        error=description.get("error"),
        cause=description.get("cause"),
        definition=spec,
        states=runs,
        events=events,
    )


def _follow(runs: dict[str, StateRun], events: list[dict[str, Any]]) -> None:
    """Each event, in order, into the run of the state it belongs to."""
    by_id = {e["id"]: e for e in events}
    owner: dict[int, str] = {}  # event id -> the state it belongs to
    for event in events:
        kind, details = event["type"], details_of(event)
        if kind.endswith("StateEntered"):
            run = runs.get(details.get("name", ""))
            if run is not None:
                owner[event["id"]] = run.name
                _enter(run, event, details)
            continue
        name = details.get("name") or _owning_state(event, by_id, owner)
        if name is None or name not in runs:
            continue
        failed_in = runs[name]
        if kind.startswith(("Parallel", "Map")) and failed_in.branch:
            # ParallelStateFailed follows the failing branch's event; it is the Parallel's,
            # and it fails with that branch's error.
            name = failed_in.branch[0]
            runs[name].error, runs[name].cause = failed_in.error, failed_in.cause
        owner[event["id"]] = name
        _record(runs[name], kind, event, details)


def _enter(run: StateRun, event: dict[str, Any], details: dict[str, Any]) -> None:
    run.visits += 1
    run.status = RUNNING
    run.entered = run.entered or event["timestamp"]
    run.input = details.get("input")
    run.intervals.append([event["timestamp"], None])
    run.event_ids.append(event["id"])


def _record(run: StateRun, kind: str, event: dict[str, Any], details: dict[str, Any]) -> None:
    """What one event of a state (other than its entry) says about the state's run."""
    run.event_ids.append(event["id"])
    if kind == "TaskScheduled":
        run.attempts += 1
        run.resource = details.get("resource")
    elif kind in _FAILURE_EVENTS:
        run.status = FAILED
        run.error = details.get("error", run.error)
        run.cause = details.get("cause", run.cause)
    elif kind.endswith("StateExited"):
        run.exited = event["timestamp"]
        run.output = details.get("output")
        run.status = CAUGHT if run.status == FAILED else SUCCEEDED
        if run.intervals and run.intervals[-1][1] is None:
            run.intervals[-1][1] = event["timestamp"]
    elif kind == "TaskSucceeded":
        # A retried task that finally succeeded is no longer failed.
        run.error = run.cause = None
        run.status = RUNNING


def _close_unfinished(runs: dict[str, StateRun], description: dict[str, Any]) -> None:
    """The states still running when the execution ended: a Fail state ends it on purpose;
    anything else was stopped by a failure elsewhere."""
    for run in runs.values():
        if run.status == RUNNING:
            run.status = FAILED if run.type == "Fail" else CANCELLED
            if run.type == "Fail":
                run.error, run.cause = description.get("error"), description.get("cause")
            elif run.type == "Succeed":
                run.status = SUCCEEDED


def _maybe_time(value: Any) -> dt.datetime | None:
    return None if value in (None, "") else _timestamp(value)


def _owning_state(
    event: dict[str, Any], by_id: dict[int, dict[str, Any]], owner: dict[int, str]
) -> str | None:
    """Follow previousEventId back to the event of a state this one belongs to."""
    previous = event.get("previousEventId")
    seen = 0
    while previous and seen < 10_000:
        if previous in owner:
            return owner[previous]
        parent = by_id.get(previous)
        if parent is None:
            return None
        previous = parent.get("previousEventId")
        seen += 1
    return None
