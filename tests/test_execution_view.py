"""The execution model behind the terminal view and report.html, on saved real executions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bisonflow.history.execution_view import (
    CANCELLED,
    CAUGHT,
    FAILED,
    NOT_RUN,
    RUNNING,
    SUCCEEDED,
    ExecutionView,
    build_view,
    state_defs,
)

EXECUTIONS = Path(__file__).parent / "data" / "executions"


def load(name: str) -> ExecutionView:
    folder = EXECUTIONS / name
    return build_view(
        json.loads((folder / "execution.json").read_text()),
        (folder / "definition.json").read_text(),
        json.loads((folder / "history.json").read_text())["events"],
    )


def test_every_state_of_the_definition_is_in_the_view() -> None:
    view = load("succeeded")
    names = [d.name for d in state_defs(view.definition)]
    assert list(view.states) == names and len(names) == 32
    assert view.states["AnnotateRiis"].branch == ("SubsetAndAnnotate", 1)
    assert view.states["CheckGbif"].branch is None


def _entered(name: str, state: str) -> int:
    """How often the recorded history entered `state`: its StateEntered events."""
    events = json.loads((EXECUTIONS / name / "history.json").read_text())["events"]
    return sum(1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == state)


def test_a_succeeded_execution() -> None:
    view = load("succeeded")
    states = view.states
    assert {states[n].status for n in ("CalcStats", "PublishMonth", "Published")} == {SUCCEEDED}
    not_run = ("CheckGbifFailed", "CleanupTasks", "WorkflowFailed", "NoSnapshotYet")
    assert {states[n].status for n in not_run} == {NOT_RUN}
    poll = states["PollSubset"]
    polls = _entered("succeeded", "PollSubset")
    assert polls >= 5  # one per subset batch at least
    assert poll.visits == poll.attempts == polls and poll.retries == 0
    assert len(poll.intervals) == polls and all(end for _, end in poll.intervals)
    assert states["CalcStats"].resource == "invoke.waitForTaskToken"
    order = [s.name for s in view.in_order()]
    assert order[0] == "CheckGbif" and order.index("CalcStats") > order.index("PollSubset")


def test_a_failed_execution_shows_where_and_why() -> None:
    view = load("failed")
    states = view.states
    assert states["AnnotateRiis"].status == FAILED
    assert states["AnnotateRiis"].error == "FileNotFoundError"
    assert "USRIISv2_MasterList.csv" in states["AnnotateRiis"].cause
    assert states["SubsetAndAnnotate"].status == CAUGHT
    assert states["SubsetAndAnnotate"].error == "FileNotFoundError"
    assert states["WaitForSubset"].status == CANCELLED
    assert states["CleanupTasks"].status == SUCCEEDED
    assert states["WorkflowFailed"].status == FAILED
    assert states["CalcStats"].status == NOT_RUN


def test_a_running_execution() -> None:
    view = load("running")
    assert view.status == "RUNNING"
    running = {s.name for s in view.states.values() if s.status == RUNNING}
    assert "SubsetAndAnnotate" in running
    assert view.duration_seconds and view.duration_seconds > 0


@pytest.mark.parametrize("name", ["succeeded", "failed", "running"])
def test_every_event_after_the_start_belongs_to_a_state(name: str) -> None:
    view = load(name)
    owned = {i for s in view.states.values() for i in s.event_ids}
    execution_level = {"ExecutionStarted", "ExecutionSucceeded", "ExecutionFailed"}
    loose = [e["type"] for e in view.events if e["id"] not in owned]
    assert set(loose) <= execution_level
