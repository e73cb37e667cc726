"""The fault matrix, task faults (issue 11): each callback step's task lost every way a task
is lost, and StopExecution during each callback step, through the real local runtime.

Lost tasks are retried on a new instance (the callback states' Retry on
States.HeartbeatTimeout and TaskInstanceLost, at most twice), so those rows end SUCCEEDED:
kill -9 (the task ends without a word), SIGSTOP (it stays alive and silent: only the missing
heartbeats tell), and its instance terminated from outside. Two runs carry them, so each
costs no run of its own: the first publishes the month (AnnotateRiis stopped, then its
relaunch's instance terminated, which spends the step's two retries; CalcStats killed), the
last is the forced rerun after the stops (AnnotateRiis killed, CalcStats stopped), so it is
also the group's "a rerun succeeds" (test_fault_matrix's docstring says why once per group).
A lost task is noticed after 12 s without a heartbeat (TASK_HEARTBEAT_SECONDS; the tasks beat
every second here), or at once where its instance's boot script reports it.

A stopped run (StopExecution) runs no Catch; the stack's rule on ABORTED executions runs the
cleanup (delivered by the emulator as EventBridge would: bisonflow.local.sfn.events).
The published month must stay byte-identical and nothing may be left.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from conftest import wait_for_end
from fault_harness import assert_nothing_left, explained, published_month
from lambda_live import live_environment
from test_faults_stopped import delivered

from bisonflow.history.executions import history
from bisonflow.layout import MonthLayout
from bisonflow.local import faults
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import TAG_ATTEMPT, TAG_STEP
from bisonflow.steps.month_lock import lock_key

MONTH = "2029-07"
#: Short, so a lost task is noticed soon, but longer than a task process takes to start and
#: send its first heartbeat on a loaded machine (8 s was too short at load 13).
HEARTBEAT = {"TASK_HEARTBEAT_SECONDS": "12"}
#: A callback task's heartbeat timeout, as the history names it.
HEARTBEAT_TIMEOUT = "States.Timeout"
#: What a task's boot script or runner reports when its instance is lost (tasks.runner).
INSTANCE_LOST = "TaskInstanceLost"
#: Generous: from the start to CalcStats' task, with lost tasks, on a loaded machine.
TO_CALC_STATS_SECONDS = 420
#: The task each callback step runs (the ASL's launch_task payload).
TASKS = {"AnnotateRiis": "annotate_riis", "CalcStats": "calc_stats"}

#: Loses `step`'s task in execution `name` on an instance not in `skip`; returns the instance.
Lose = Callable[[LocalRuntime, str, str, tuple[str, ...]], str]


@dataclass(frozen=True)
class Loss:
    """A way to lose a step's task: the errors its attempt may end with, and whether its
    instance is still running when the step relaunches (then the relaunch must end it)."""

    lose: Lose
    errors: tuple[str, ...]
    instance_left: bool | None  # None: either (the boot script may have shut it down)


def _signal(signum: int) -> Lose:
    def lose(rt: LocalRuntime, name: str, step: str, skip: tuple[str, ...]) -> str:
        return faults.signal_task(rt, name, step, signum, TO_CALC_STATS_SECONDS, skip)

    return lose


def _terminate(rt: LocalRuntime, name: str, step: str, skip: tuple[str, ...]) -> str:
    return faults.terminate_task_instance(rt, name, step, TO_CALC_STATS_SECONDS, skip)


#: Alive and silent on a running instance: only the missing heartbeats tell.
SIGSTOP = Loss(_signal(signal.SIGSTOP), (HEARTBEAT_TIMEOUT,), instance_left=True)
#: Ended without a word: the heartbeat tells, or the instance's boot script reports the exited
#: container at once (TaskInstanceLost) and shuts the instance down, where the runtime plays it.
SIGKILL = Loss(_signal(signal.SIGKILL), (HEARTBEAT_TIMEOUT, INSTANCE_LOST), instance_left=None)
#: The machine is gone, its boot script with it: only the heartbeat tells.
TERMINATED = Loss(_terminate, (HEARTBEAT_TIMEOUT,), instance_left=False)


@dataclass(frozen=True)
class LostRun:
    description: dict[str, Any]
    #: step -> its lost attempts in order: (the instance whose task was lost, how)
    lost: dict[str, list[tuple[str, Loss]]]


def run_losing_tasks(rt: LocalRuntime, plan: dict[str, list[Loss]], **start: object) -> LostRun:
    """A run of MONTH whose steps lose their first tasks as `plan` says, in order."""
    with live_environment(rt, "check_gbif", HEARTBEAT):
        arn = rt.start_execution(MONTH, **start)
        name = arn.rsplit(":", 1)[1]
        lost: dict[str, list[tuple[str, Loss]]] = {}
        for step, losses in plan.items():
            for loss in losses:
                done = tuple(instance for instance, _ in lost.get(step, []))
                lost.setdefault(step, []).append((loss.lose(rt, name, step, done), loss))
        return LostRun(wait_for_end(rt, arn, timeout=TO_CALC_STATS_SECONDS), lost)


@dataclass
class Attempt:
    """One callback attempt as the history tells it."""

    task: str
    attempt: int
    replaced: list[str] | None = None  # what its launch_task terminated of the attempt before
    error: str | None = None  # how it ended, if not with success


def callback_attempts(events: list[dict[str, Any]]) -> list[Attempt]:
    """The callback steps' attempts in order (the two steps never overlap)."""
    found: list[Attempt] = []
    for event in events:
        if "waitForTaskToken" not in json.dumps(event, default=str):
            continue
        details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
        if event["type"] == "TaskScheduled":
            payload = json.loads(details["parameters"])["Payload"]
            found.append(Attempt(payload["task"], payload["attempt"]))
        elif event["type"] == "TaskSubmitted":
            found[-1].replaced = json.loads(details["output"])["Payload"]["replaced"]
        elif event["type"] in ("TaskTimedOut", "TaskFailed"):
            found[-1].error = details["error"]
    return found


def assert_retried_and_published(rt: LocalRuntime, run: LostRun) -> None:
    """Each lost attempt ended with its loss's error and the next ran on a new instance,
    whose launch ended the lost one if it was still running; the last attempt of each step
    succeeded, the month is published, its lock released, and nothing is left."""
    description = run.description
    assert description["status"] == "SUCCEEDED", explained(rt, description)
    attempts = callback_attempts(history(rt.clients["stepfunctions"], description["executionArn"]))
    expected: list[tuple[str, int]] = []
    for step, lost in run.lost.items():
        expected += [(TASKS[step], n) for n in range(len(lost) + 1)]
    assert [(a.task, a.attempt) for a in attempts] == expected
    for step, lost in run.lost.items():
        mine = [a for a in attempts if a.task == TASKS[step]]
        assert mine[-1].error is None, (step, mine[-1])
        for (instance, loss), ended, relaunch in zip(lost, mine, mine[1:], strict=False):
            assert ended.error in loss.errors, (step, ended)
            if loss.instance_left is None:
                assert relaunch.replaced in ([instance], []), (step, relaunch)
            else:
                assert relaunch.replaced == ([instance] if loss.instance_left else []), relaunch
        launched = {
            faults.instance_tags(i)[TAG_ATTEMPT]: i["InstanceId"]
            for i in faults.execution_instances(rt, description["name"])
            if faults.instance_tags(i)[TAG_STEP] == step
        }
        assert [launched.get(str(n)) for n in range(len(lost))] == [i for i, _ in lost]
        assert len(launched) == len(lost) + 1, launched  # each relaunch on a new instance
    key = lock_key(MonthLayout.for_month(MONTH))
    assert json.loads(description["output"])["lock"] == {"released": [key]}
    assert_nothing_left(rt, description["executionArn"])


@pytest.fixture(scope="module")
def first_run(runtime: LocalRuntime) -> LostRun:
    """Publishes MONTH, losing AnnotateRiis twice (stopped, then its relaunch's instance
    terminated: the step's two retries) and CalcStats once (killed)."""
    runtime.publish_snapshot(MONTH)
    return run_losing_tasks(
        runtime, {"AnnotateRiis": [SIGSTOP, TERMINATED], "CalcStats": [SIGKILL]}
    )


def test_a_stopped_then_terminated_annotate_task_and_a_killed_calc_task_are_retried(
    runtime: LocalRuntime, first_run: LostRun
) -> None:
    assert_retried_and_published(runtime, first_run)


@pytest.mark.parametrize("step", ["AnnotateRiis", "CalcStats"])
def test_a_run_stopped_during_a_callback_step_is_cleaned_up_and_publishes_nothing(
    runtime: LocalRuntime, first_run: LostRun, step: str
) -> None:
    assert first_run.description["status"] == "SUCCEEDED", "the month was not published"
    before = published_month(runtime, MONTH)
    arn = runtime.start_execution(MONTH, force=True)
    instance, _ = faults.wait_for_task(
        runtime, arn.rsplit(":", 1)[1], step, timeout=TO_CALC_STATS_SECONDS
    )
    runtime.clients["stepfunctions"].stop_execution(executionArn=arn)
    description = wait_for_end(runtime, arn, timeout=60)
    assert description["status"] == "ABORTED", explained(runtime, description)
    ((_, _, cleanup),) = delivered(arn)  # the stack's rule ran the cleanup (sfn_events)
    assert cleanup["terminated"] in ([instance], [])  # [] if the task ended first
    assert_nothing_left(runtime, arn)
    assert published_month(runtime, MONTH) == before


def test_after_the_stops_a_forced_rerun_survives_a_killed_and_a_stopped_task(
    runtime: LocalRuntime, first_run: LostRun
) -> None:
    """Last in the module: the group's rerun."""
    before = published_month(runtime, MONTH)
    rerun = run_losing_tasks(
        runtime, {"AnnotateRiis": [SIGKILL], "CalcStats": [SIGSTOP]}, force=True
    )
    assert_retried_and_published(runtime, rerun)
    after = published_month(runtime, MONTH)
    assert after and after != before  # the rerun's own files are the month now
