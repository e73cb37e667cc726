"""Faults: a task on a reclaimed Spot instance, a task that dies without reporting, EC2 without
capacity for a task's first choices, and a task whose execution was stopped (issue 11),
through the real local runtime.

One month's run carries three faults: its first AnnotateRiis instance gets the Spot
interruption notice (the runner reports TaskInstanceLost within its check interval), and its
first CalcStats task is killed with SIGKILL (the instance's boot script, played by the EC2
agent, reports TaskInstanceLost with the token the task left). Both are relaunched at once,
not after the 30 s heartbeat timeout of the suite's runtime, and the month succeeds. All the
while RunInstances refuses the tasks' first pools (the emulator's capacity seam,
bisonflow.local.ec2.capacity: moto never refuses capacity), so each launch, the relaunches
too, runs on the next pool launch_task tries (test_faults_capacity has the seam's own tests).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass

import pytest
from conftest import wait_for_end

from bisonflow.history.executions import history
from bisonflow.local.ec2 import capacity as ec2_capacity
from bisonflow.local.faults import (
    execution_instances,
    instance_tags,
    lambda_raises,
    task_process,
    wait_for_task,
)
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import (
    LIVE_STATES,
    ON_DEMAND,
    SPOT,
    TAG_ATTEMPT,
    TAG_STEP,
    TOKEN_PARAMETER_ROOT,
)
from tasks.runner import INSTANCE_LOST

MONTH = "2029-10"
STOPPED_MONTH = "2029-12"
CALLBACK = "invoke.waitForTaskToken"
#: Seconds from the notice to EC2's reclaim in these tests (two minutes on AWS): the notice is
#: given as the task's process starts, and a loaded machine may take a while to reach the
#: runner's first check; the heartbeat timeout (30 s) would show a notice never read.
RECLAIM_SECONDS = 60.0


def callback_events(events: list[dict], task: str) -> list[dict]:
    """The Task* events of the callback step launching `task`, in order: those whose details
    name the waitForTaskToken resource (the other branch's Lambda events interleave), each
    belonging to the task of the callback TaskScheduled before it (the two callback steps
    never overlap)."""
    found, current = [], None
    for event in events:
        details = next((v for v in event.values() if isinstance(v, dict)), {})
        if not event["type"].startswith("Task") or details.get("resource") != CALLBACK:
            continue
        if event["type"] == "TaskScheduled":
            current = json.loads(details["parameters"])["Payload"]["task"]
        if current == task:
            found.append(event)
    return found


def assert_nothing_running(rt: LocalRuntime, execution: str, wait: float = 20) -> None:
    """No instance of the execution alive, no task process, no stored token (a task
    terminates its instance just after reporting: allow `wait` seconds for the last)."""
    deadline = time.monotonic() + wait
    while True:
        launched = execution_instances(rt, execution)
        left = [
            f"{i['InstanceId']} {i['State']['Name']}"
            for i in launched
            if i["State"]["Name"] in LIVE_STATES
        ]
        left += [f"process of {i['InstanceId']}" for i in launched if task_process(i["InstanceId"])]
        left += [
            p["Name"]
            for p in rt.clients["ssm"].get_parameters_by_path(
                Path=f"{TOKEN_PARAMETER_ROOT}/{execution}", Recursive=True
            )["Parameters"]
        ]
        if not left:
            return
        assert time.monotonic() < deadline, f"{execution} left {left}"
        time.sleep(0.5)


@dataclass(frozen=True)
class FaultedRun:
    description: dict
    interrupted: str  # AnnotateRiis' first instance, given the Spot notice
    killed: str  # CalcStats' first instance, whose task was killed
    events: list[dict]


@pytest.fixture(scope="module")
def faulted_run(runtime: LocalRuntime) -> FaultedRun:
    """The month's run with its three faults. AnnotateRiis' first two Spot types refuse (a
    500 and a 400 code): it runs on the third, its relaunch too. Once AnnotateRiis' relaunch
    runs, every Spot pool of CalcStats refuses: it runs On-Demand on its first type, its
    relaunch too (the two tasks share types, so the pools change as capacity does). Deployed
    defaults: AnnotateRiis t4g.micro, t4g.small, m7g.medium; CalcStats t4g.small, t4g.medium,
    m7g.medium; On-Demand allowed."""
    runtime.publish_snapshot(MONTH)
    agent = runtime.agent
    reclaim, agent.reclaim_seconds = agent.reclaim_seconds, RECLAIM_SECONDS
    ec2_capacity.restore()
    ec2_capacity.refuse("t4g.micro", SPOT, "InsufficientInstanceCapacity")
    ec2_capacity.refuse("t4g.small", SPOT, "SpotMaxPriceTooLow")
    try:
        arn = runtime.start_execution(MONTH)
        execution = arn.rsplit(":", 1)[1]
        # Given as the process starts: on a quiet machine the sample's annotation can end
        # within a check interval of the runner's start, before a later notice is read.
        interrupted, _ = wait_for_task(runtime, execution, "AnnotateRiis")
        agent.interrupt(interrupted)
        _launched(runtime, execution, "AnnotateRiis", skip=interrupted)
        ec2_capacity.restore()
        for kind in ("t4g.small", "t4g.medium", "m7g.medium"):
            ec2_capacity.refuse(kind, SPOT, "UnfulfillableCapacity")
        killed, pid = wait_for_task(runtime, execution, "CalcStats", timeout=240)
        os.kill(pid, signal.SIGKILL)
        description = wait_for_end(runtime, arn, timeout=240)
    finally:
        agent.reclaim_seconds = reclaim
        ec2_capacity.restore()
    events = history(runtime.clients["stepfunctions"], arn)
    return FaultedRun(description, interrupted, killed, events)


def _launched(rt: LocalRuntime, execution: str, step: str, skip: str, timeout: float = 120) -> None:
    """Wait until `step` has an instance other than `skip` (its relaunch is launched): the
    instance, not the task's process, which a quick task may end between two looks."""
    deadline = time.monotonic() + timeout
    while not [
        i
        for i in execution_instances(rt, execution)
        if instance_tags(i)[TAG_STEP] == step and i["InstanceId"] != skip
    ]:
        assert time.monotonic() < deadline, f"{step} was never relaunched in {execution}"
        time.sleep(0.2)


def _lost_then_relaunched(events: list[dict]) -> tuple[dict, float]:
    """The lost attempt's TaskFailed, and seconds from its TaskSubmitted to it; asserts the
    relaunch that followed succeeded."""
    kinds = [e["type"] for e in events]
    assert kinds == [
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskSubmitted",
        "TaskSucceeded",
    ], kinds
    failed = events[3]
    noticed = (failed["timestamp"] - events[2]["timestamp"]).total_seconds()
    return failed["taskFailedEventDetails"], noticed


def test_a_spot_notice_fails_the_task_at_once_and_it_is_relaunched(
    faulted_run: FaultedRun,
) -> None:
    run = faulted_run
    assert run.description["status"] == "SUCCEEDED", run.description.get("cause")
    failed, noticed = _lost_then_relaunched(callback_events(run.events, "annotate_riis"))
    assert failed["error"] == INSTANCE_LOST
    assert failed["cause"].startswith("Spot interruption notice: EC2 will terminate this instance")
    # Not the heartbeat timeout (30 s): the runner checks instance metadata every second.
    assert noticed < 30, noticed


def test_a_killed_task_is_reported_by_its_boot_script_and_relaunched(
    faulted_run: FaultedRun,
) -> None:
    run = faulted_run
    failed, noticed = _lost_then_relaunched(callback_events(run.events, "calc_stats"))
    assert failed["error"] == INSTANCE_LOST
    assert failed["cause"].startswith(f"the task's container on {run.killed} exited (status -9)")
    assert "reported by its boot script" in failed["cause"]
    assert noticed < 30, noticed


def test_the_relaunches_are_new_instances_and_nothing_is_left(
    runtime: LocalRuntime, faulted_run: FaultedRun
) -> None:
    run = faulted_run
    assert_nothing_running(runtime, run.description["name"])
    launched = execution_instances(runtime, run.description["name"])
    by_step = sorted(
        (instance_tags(i)[TAG_STEP], instance_tags(i)[TAG_ATTEMPT], i["InstanceId"])
        for i in launched
    )
    assert [(step, attempt) for step, attempt, _ in by_step] == [
        ("AnnotateRiis", "0"),
        ("AnnotateRiis", "1"),
        ("CalcStats", "0"),
        ("CalcStats", "1"),
    ]
    assert by_step[0][2] == run.interrupted and by_step[2][2] == run.killed
    notices = " ".join(runtime.agent.notices)
    assert f"instance {run.interrupted}: Spot interruption notice, terminate at" in notices


def test_each_launch_runs_on_the_next_pool_when_spot_has_no_room(
    runtime: LocalRuntime, faulted_run: FaultedRun
) -> None:
    """launch_task's output names each pool it tried and EC2's code, and the instances EC2
    launched are the pools it settled on: their type, and a Spot lifecycle or none."""
    launched: dict[str, list[dict]] = {}
    for event in faulted_run.events:
        details = event.get("taskSubmittedEventDetails", {})
        if event["type"] == "TaskSubmitted" and details.get("resource") == CALLBACK:
            payload = json.loads(details["output"])["Payload"]
            launched.setdefault(payload["task"], []).append(payload)
    assert [len(launched[task]) for task in ("annotate_riis", "calc_stats")] == [2, 2]
    for annotate in launched["annotate_riis"]:
        assert (annotate["instance_type"], annotate["market"]) == ("m7g.medium", SPOT)
        assert annotate["refused"] == [
            {"instance_type": "t4g.micro", "market": SPOT, "code": "InsufficientInstanceCapacity"},
            {"instance_type": "t4g.small", "market": SPOT, "code": "SpotMaxPriceTooLow"},
        ]
    for stats in launched["calc_stats"]:
        assert (stats["instance_type"], stats["market"]) == ("t4g.small", ON_DEMAND)
        assert [(r["instance_type"], r["market"]) for r in stats["refused"]] == [
            ("t4g.small", SPOT),
            ("t4g.medium", SPOT),
            ("m7g.medium", SPOT),
        ]
        assert {r["code"] for r in stats["refused"]} == {"UnfulfillableCapacity"}
    instances = {
        i["InstanceId"]: i for i in execution_instances(runtime, faulted_run.description["name"])
    }
    for payload in launched["annotate_riis"] + launched["calc_stats"]:
        instance = instances[payload["instance_id"]]
        assert instance["InstanceType"] == payload["instance_type"]
        assert instance.get("InstanceLifecycle", ON_DEMAND) == payload["market"]


def test_a_task_of_a_stopped_execution_exits_at_its_next_write_without_writing(
    runtime: LocalRuntime,
) -> None:
    """The heartbeat is made hourly here, so only the write guard can notice the stop: the
    task's first S3 write after StopExecution asks Step Functions first and the task exits
    instead of writing."""
    assert runtime.deployment
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket

    def written() -> dict[str, str]:
        found = {}
        for prefix in ("annotated_riis/", "summary/", "cache/"):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                found |= {o["Key"]: o["ETag"] for o in page.get("Contents", [])}
        return found

    runtime.publish_snapshot(STOPPED_MONTH)
    env = runtime.agent.task_env
    interval, env["TASK_HEARTBEAT_INTERVAL"] = env["TASK_HEARTBEAT_INTERVAL"], "3600"
    try:
        arn = runtime.start_execution(STOPPED_MONTH)
        instance, pid = wait_for_task(runtime, arn.rsplit(":", 1)[1], "AnnotateRiis")
        # Frozen while its Python starts (before it can write anything), the task resumes
        # only once its execution is ABORTED: whatever it would write comes after the stop.
        os.kill(pid, signal.SIGSTOP)
        before = written()
        # The rule's cleanup would terminate the instance, and the agent kill the task, before
        # a task still starting reaches its first write on a loaded machine: held off until
        # the task has met its guard, then run as the rule runs it.
        with lambda_raises("cleanup_task", "HeldOff", "the test runs the cleanup", times=99):
            runtime.clients["stepfunctions"].stop_execution(executionArn=arn)
            assert wait_for_end(runtime, arn, timeout=60)["status"] == "ABORTED"
            os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 90
            while task_process(instance) is not None:
                assert time.monotonic() < deadline, "the stopped execution's task is still running"
                time.sleep(0.2)
        runtime.clients["lambda"].invoke(
            FunctionName=f"{runtime.deployment.stack_name}-cleanup_task",
            Payload=json.dumps({"execution": arn.rsplit(":", 1)[1], "execution_arn": arn}),
        )
    finally:
        env["TASK_HEARTBEAT_INTERVAL"] = interval
    assert written() == before
    log = runtime.agent.log_path(instance).read_text()
    assert "Step Functions no longer waits for this task" in log, log[-3000:]
    assert "the task stops without writing" in log
    state = runtime.clients["ec2"].describe_instances(InstanceIds=[instance])["Reservations"][0][
        "Instances"
    ][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
