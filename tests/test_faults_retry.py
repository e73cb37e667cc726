"""Faults: a callback step whose task is lost is retried on a new instance (issue 11).

Through the real local runtime: the first AnnotateRiis task process is killed (kill -9, as a
reclaimed instance or a crashed container leaves it: no report, no more heartbeats), the
heartbeat timeout fires, the state's Retry relaunches the task on a new instance after
launch_task terminated the old one, and the month is published.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_for_end
from lambda_live import live_environment
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)

from bisonflow.ec2_tasks import TAG_ATTEMPT, TAG_EXECUTION, TAG_STEP
from bisonflow.executions import history
from bisonflow.layout import MonthLayout
from bisonflow.local import sfn_heartbeat
from bisonflow.local.runtime import LocalRuntime
from bisonflow.month_lock import lock_key

MONTH = "2023-05"


class _Env:
    """The little of moto's Environment that ErrorEqualsDecl uses: a stack."""

    def __init__(self, error_name: object) -> None:
        self.stack = [error_name]


def matched(declared: list[str], error_name: object) -> bool:
    """Whether a retrier or catcher declaring `declared` matches `error_name`, as moto's
    interpreter evaluates ErrorEquals."""
    decl = ErrorEqualsDecl([StatesErrorName.from_name(name) for name in declared])
    env = _Env(error_name)
    decl._eval_body(env)  # type: ignore[arg-type]
    return env.stack.pop()


def test_a_heartbeat_timeout_matches_both_timeout_names_and_a_task_timeout_only_one() -> None:
    """AWS: a heartbeat timeout is reported as States.Timeout and matched by a retrier naming
    States.HeartbeatTimeout or States.Timeout; a task past TimeoutSeconds by States.Timeout
    only (Developer Guide, "Error handling in Step Functions", Error names)."""
    heartbeat = sfn_heartbeat.HeartbeatTimeoutName()
    task_timeout = StatesErrorName(StatesErrorNameType.StatesTimeout)
    assert heartbeat.error_name == "States.Timeout"  # what the history and the Catch see
    assert matched(["States.HeartbeatTimeout"], heartbeat)
    assert matched(["States.Timeout"], heartbeat)
    assert matched(["States.ALL"], heartbeat)
    assert not matched(["States.TaskFailed"], heartbeat)
    assert not matched(["States.HeartbeatTimeout"], task_timeout)
    assert matched(["States.Timeout"], task_timeout)


def test_the_heartbeat_seam_is_installed_on_its_target(runtime: LocalRuntime) -> None:
    """The emulator runs with the seam (asl_fixes.install); a moto upgrade that moves
    StateTask._from_error fails here."""
    for owner, attribute in sfn_heartbeat.PATCHED:
        assert owner.__dict__[attribute] is sfn_heartbeat.from_error


def task_process(instance_id: str) -> int | None:
    """The pid of the local process running `instance_id`'s task, found as an operator would
    find it on the host: by the INSTANCE_ID its boot script exported."""
    wanted = f"INSTANCE_ID={instance_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours
        if wanted in environ:
            return int(entry.name)
    return None


def instances(rt: LocalRuntime, execution: str) -> list[dict]:
    pages = rt.clients["ec2"].describe_instances(
        Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]}]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def tags(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def kill_first_task(rt: LocalRuntime, execution: str, step: str, timeout: float = 60) -> str:
    """Wait for `step`'s first instance to run its task, SIGKILL the task; the instance id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for instance in instances(rt, execution):
            if tags(instance).get(TAG_STEP) == step:
                pid = task_process(instance["InstanceId"])
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    return instance["InstanceId"]
        time.sleep(0.1)
    raise AssertionError(f"{step}'s task never started in {execution}")


@dataclass(frozen=True)
class KilledRun:
    description: dict  # DescribeExecution of the run whose first task was killed
    killed: str  # the instance whose task was killed
    duplicate: dict  # DescribeExecution of a second start of the month meanwhile


@pytest.fixture(scope="module")
def killed_run(runtime: LocalRuntime) -> KilledRun:
    """One month's run with two faults: its first AnnotateRiis task is killed, and the month
    is started again while it waits for the lost task's heartbeat (one run serves both, as
    each costs a whole month locally)."""
    runtime.publish_snapshot(MONTH)
    # The lost task is noticed after 8 s without a heartbeat (the tasks beat every second).
    with live_environment(runtime, "check_gbif", {"TASK_HEARTBEAT_SECONDS": "8"}):
        arn = runtime.start_execution(MONTH)
        killed = kill_first_task(runtime, arn.rsplit(":", 1)[1], "AnnotateRiis")
        duplicate = wait_for_end(runtime, runtime.start_execution(MONTH), timeout=60)
        return KilledRun(wait_for_end(runtime, arn, timeout=240), killed, duplicate)


def test_a_killed_task_is_retried_on_a_new_instance_and_the_month_succeeds(
    runtime: LocalRuntime, killed_run: KilledRun
) -> None:
    description, killed = killed_run.description, killed_run.killed
    arn, execution = description["executionArn"], description["name"]
    assert description["status"] == "SUCCEEDED", description.get("cause")

    events = history(runtime.clients["stepfunctions"], arn)
    callbacks = [
        e
        for e in events
        if e["type"].startswith("Task")
        and any(
            isinstance(v, dict) and v.get("resource") == "invoke.waitForTaskToken"
            for v in e.values()
        )
    ]
    kinds = [e["type"] for e in callbacks]
    # The lost attempt timed out on its heartbeat, then the step was scheduled again.
    lost = kinds.index("TaskTimedOut")
    assert kinds[:lost] == ["TaskScheduled", "TaskStarted", "TaskSubmitted"]
    assert kinds[lost + 1 : lost + 5] == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
    ]
    timed_out = callbacks[lost]["taskTimedOutEventDetails"]
    assert timed_out["error"] == "States.Timeout"
    scheduled = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]
        for e in callbacks
        if e["type"] == "TaskScheduled"
    ]
    assert [(p["task"], p["attempt"]) for p in scheduled] == [
        ("annotate_riis", 0),
        ("annotate_riis", 1),
        ("calc_stats", 0),
    ]
    # Whether AWS gives a retried task a new token is not documented (moto reuses it), so
    # nothing relies on it: the relaunch overwrote the stored token and ended the old instance.

    # The relaunch ended the killed attempt's instance; every instance is gone at the end.
    relaunched = [e for e in callbacks if e["type"] == "TaskSubmitted"][1]
    output = json.loads(relaunched["taskSubmittedEventDetails"]["output"])
    assert output["Payload"]["replaced"] == [killed]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        launched = instances(runtime, execution)
        if {i["State"]["Name"] for i in launched} == {"terminated"}:
            break
        time.sleep(0.2)
    annotate = sorted(
        (tags(i)[TAG_ATTEMPT], i["InstanceId"])
        for i in launched
        if tags(i)[TAG_STEP] == "AnnotateRiis"
    )
    assert [attempt for attempt, _ in annotate] == ["0", "1"] and annotate[0][1] == killed
    assert {i["State"]["Name"] for i in launched} == {"terminated"}


def test_a_second_run_of_a_running_month_is_refused_naming_the_first(
    killed_run: KilledRun,
) -> None:
    """One run per month at a time (bisonflow.month_lock): the second start fails before any
    work, naming the run that holds the month."""
    duplicate, first = killed_run.duplicate, killed_run.description
    assert duplicate["status"] == "FAILED"
    assert duplicate["error"] == "MonthAlreadyRunning"
    assert f"being processed by execution {first['executionArn']}" in duplicate["cause"]


def test_the_lock_is_released_when_the_month_is_published(
    runtime: LocalRuntime, killed_run: KilledRun
) -> None:
    assert runtime.deployment
    key = lock_key(MonthLayout.for_month(MONTH))
    listed = runtime.clients["s3"].list_objects_v2(Bucket=runtime.deployment.bucket, Prefix=key)
    assert listed["KeyCount"] == 0
    assert json.loads(killed_run.description["output"])["lock"] == {"released": [key]}


def test_a_task_that_never_reports_is_relaunched_to_the_bound_then_cleaned_up(
    runtime: LocalRuntime,
) -> None:
    """The instances never boot (as a task that dies before its first heartbeat): each
    heartbeat timeout relaunches the step, each relaunch ending the instance before it, until
    the Retry's MaxAttempts; the execution then fails with States.Timeout and CleanupTasks
    ends the last instance. The heartbeat comes from CheckGbif's `live` environment."""
    month = "2023-06"
    runtime.publish_snapshot(month)
    runtime.agent.paused = True
    try:
        with live_environment(runtime, "check_gbif", {"TASK_HEARTBEAT_SECONDS": "2"}):
            arn = runtime.start_execution(month)
            description = wait_for_end(runtime, arn, timeout=120)
    finally:
        runtime.agent.paused = False
    assert description["status"] == "FAILED"
    assert description["error"] == "States.Timeout"
    events = history(runtime.clients["stepfunctions"], arn)
    assert [e["type"] for e in events].count("TaskTimedOut") == 3  # the first try and 2 retries
    launched = instances(runtime, arn.rsplit(":", 1)[1])
    assert len(launched) == 3 and {i["State"]["Name"] for i in launched} == {"terminated"}
    by_attempt = {tags(i)[TAG_ATTEMPT]: i["InstanceId"] for i in launched}
    cleanup = json.loads(
        [e for e in events if e["type"] == "TaskSucceeded"][-1]["taskSucceededEventDetails"][
            "output"
        ]
    )["Payload"]
    assert cleanup["terminated"] == [by_attempt["2"]]
    assert cleanup["released_locks"] == ["locks/2023_06_01.json"]  # the failed run's
