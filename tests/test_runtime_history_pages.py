"""bisonflow.local.sfn.history_pages: GetExecutionHistory pages as Step Functions pages it,
and `bisonflow run` follows an execution by reading only the events it has not seen."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from moto.stepfunctions.exceptions import InvalidToken, ValidationException

from bisonflow.history import executions
from bisonflow.history.executions import events_after, history
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.sfn import history_pages as sfn_history_pages
from tests.conftest import wait_for_end

ARN = "arn:aws:states:us-east-1:123456789012:execution:m:e"


def _all_pages(events: list[dict], reverse: bool, size: int | None) -> list[list[int]]:
    pages, token = [], None
    while True:
        answer = sfn_history_pages.page(events, ARN, size, reverse, token)
        pages.append([e["id"] for e in answer["events"]])
        token = answer.get("nextToken")
        if token is None:
            return pages


def test_pages_are_as_step_functions_sizes_and_orders_them() -> None:
    events = [{"id": i} for i in range(1, 251)]
    ascending = _all_pages(events, reverse=False, size=None)  # the default page: 100
    assert [len(p) for p in ascending] == [100, 100, 50]
    assert sum(ascending, []) == list(range(1, 251))
    assert sum(_all_pages(events, reverse=True, size=0), []) == list(range(250, 0, -1))
    big = [{"id": i} for i in range(1, 2501)]
    assert [len(p) for p in _all_pages(big, reverse=False, size=1000)] == [1000, 1000, 500]
    for size in (1001, -1):  # the member's range is 0-1000: more is refused, not cut down
        with pytest.raises(ValidationException, match="maxResults"):
            sfn_history_pages.page(big, ARN, size, False, None)
    token = sfn_history_pages.page(events, ARN, 100, False, None)["nextToken"]
    for arn, reverse in ((ARN, True), (ARN.replace(":e", ":other"), False)):
        with pytest.raises(InvalidToken):
            sfn_history_pages.page(events, arn, 100, reverse, token)
    with pytest.raises(InvalidToken):
        sfn_history_pages.page(events, ARN, 100, False, "not-a-token")


def test_the_emulator_pages_a_long_history_and_run_reads_only_new_events(
    runtime: LocalRuntime,
) -> None:
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    role = sfn.describe_state_machine(stateMachineArn=runtime.deployment.state_machine_arn)[
        "roleArn"
    ]
    states = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(70)}
    states["P70"] = {"Type": "Succeed"}
    machine = sfn.create_state_machine(
        name="history-pages",
        definition=json.dumps({"StartAt": "P0", "States": states}),
        roleArn=role,
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    wait_for_end(runtime, arn, timeout=60)

    first = sfn.get_execution_history(executionArn=arn)
    everything = history(sfn, arn)  # follows nextToken
    assert len(everything) > 100 and len(first["events"]) == 100 and first["nextToken"]
    assert [e["id"] for e in everything] == list(range(1, len(everything) + 1))
    newest = sfn.get_execution_history(executionArn=arn, reverseOrder=True, maxResults=3)
    assert [e["id"] for e in newest["events"]] == [len(everything) - k for k in range(3)]
    # run's follow: what came after the last event it showed, oldest first, across pages.
    assert events_after(sfn, arn, 5) == everything[5:]
    assert events_after(sfn, arn, len(everything)) == []


class GrowingHistory:
    """An execution seen by `poll`: three more events at each look, SUCCEEDED at the third;
    GetExecutionHistory as the seam pages it, every call recorded."""

    def __init__(self) -> None:
        self.looks, self.calls = 0, []
        self.events = [{"id": 1, "type": "ExecutionStarted"}]

    def describe_execution(self, executionArn: str) -> dict:
        self.looks += 1
        start = len(self.events) + 1
        self.events += [{"id": i, "type": "PassStateEntered"} for i in range(start, start + 3)]
        status = "SUCCEEDED" if self.looks == 3 else "RUNNING"
        return {"executionArn": executionArn, "status": status, "name": "e", "input": "{}"}

    def describe_state_machine_for_execution(self, executionArn: str) -> dict:
        return {"definition": json.dumps({"StartAt": "P", "States": {"P": {"Type": "Succeed"}}})}

    def get_execution_history(self, executionArn: str, **kwargs) -> dict:
        self.calls.append(kwargs)
        return sfn_history_pages.page(
            self.events,
            executionArn,
            kwargs.get("maxResults"),
            kwargs.get("reverseOrder", False),
            kwargs.get("nextToken"),
        )


def test_the_live_table_asks_only_for_events_it_has_not_got(monkeypatch) -> None:
    """`run` and `watch` in a terminal (executions.poll): every look asks for the newest page
    only, and the last view holds every event once, in order."""
    fake, seen = GrowingHistory(), []

    def view(description: dict, definition: dict, events: list[dict]) -> SimpleNamespace:
        seen.append((description["status"], [e["id"] for e in events]))
        return SimpleNamespace(status=description["status"])

    monkeypatch.setattr(executions, "build_view", view)
    executions.poll(fake, ARN, lambda view: None, interval=0)
    assert seen[-1] == ("SUCCEEDED", list(range(1, 11)))
    assert all(call["reverseOrder"] and call["maxResults"] == 25 for call in fake.calls)
    assert len(fake.calls) == 3  # one page a look: never the whole history again
