"""Fault injection into the local runtime, for the fault-matrix tests (issue 11).

Each fault is injected where it happens on AWS, so the deployed code meets it as it would
there and nothing in that code knows it is being tested:

* a task's process is signalled as the host would see it: SIGKILL (a crashed container, an
  OOM kill, a reclaimed machine) or SIGSTOP (a hung process: alive, silent, no heartbeats);
* a Lambda invocation answers as Lambda does when the function raised at once (`errorType`,
  `errorMessage`, FunctionError set; the function does not run, so it did nothing a retry or
  a later cleanup would find done), or with its real result padded past a size, at the
  Lambda service (moto's `LambdaFunction._invoke_lambda`, which lambda_worker already
  replaces), so the state machine's Retry and Catch see what they would see on AWS;
* a Data API statement fails as Redshift fails one ("ERROR: ..."), or hangs until it is
  cancelled (CancelStatement interrupts it, as Redshift's does), in the DuckDB stand-in's
  engine (`Engine.run_sql`);
* the GBIF stand-in answers 5xx, 429 with Retry-After, or drops connections for a while
  (GbifStandin.outage);
* the task containers' environment changes, as a compose file's would (e.g. a short GBIF
  retry budget).

Everything here is a context manager that undoes itself: the runtime is shared by a whole
test session, and a fault left installed would fail the next test for the wrong reason.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import duckdb
from moto.awslambda.models import LambdaFunction

from bisonflow.local.gbif_standin import GbifStandin
from bisonflow.local.redshift.engine import Engine
from bisonflow.local.redshift.moto_s3 import EmulatorError
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import TAG_EXECUTION, TAG_STEP

#: How often the injectors look for what they wait on (each look is a request through the
#: emulator, which shares the machine with the runs it waits on).
POLL_SECONDS = 0.25
#: The line an injected Lambda answer adds to the invocation's log (what an operator reads).
INJECTED_LOG_LINE = "[fault injected by bisonflow.local.faults]\n"


# --- task processes ---------------------------------------------------------------------------


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


def execution_instances(rt: LocalRuntime, execution: str) -> list[dict[str, Any]]:
    """Every instance the execution (its name) launched, in any state."""
    pages = (
        rt.clients["ec2"]
        .get_paginator("describe_instances")
        .paginate(Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]}])
    )
    return [i for page in pages for r in page["Reservations"] for i in r["Instances"]]


def instance_tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def wait_for_task(
    rt: LocalRuntime, execution: str, step: str, timeout: float = 90, skip: tuple[str, ...] = ()
) -> tuple[str, int]:
    """(instance id, pid) of `step`'s task once its process runs, ignoring instances in `skip`
    (an earlier attempt's). The timeout is generous: the suite shares two cores."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for instance in execution_instances(rt, execution):
            found = instance["InstanceId"]
            if instance_tags(instance).get(TAG_STEP) == step and found not in skip:
                pid = task_process(found)
                if pid is not None:
                    return found, pid
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"{step}'s task never started in {execution} within {timeout} s")


def signal_task(
    rt: LocalRuntime,
    execution: str,
    step: str,
    signum: int = signal.SIGKILL,
    timeout: float = 90,
    skip: tuple[str, ...] = (),
) -> str:
    """Wait for `step`'s task process (on an instance not in `skip`) and send it `signum`;
    the instance id.

    SIGKILL: the task ends without reporting (no SendTaskFailure, no more heartbeats).
    SIGSTOP: it stays alive and silent until something ends its instance, which the agent
    then kills (SIGKILL reaches a stopped process), as the machine would go with it."""
    instance, pid = wait_for_task(rt, execution, step, timeout, skip)
    os.kill(pid, signum)
    return instance


def terminate_task_instance(
    rt: LocalRuntime, execution: str, step: str, timeout: float = 90, skip: tuple[str, ...] = ()
) -> str:
    """Wait for `step`'s task to run (on an instance not in `skip`), then terminate its
    instance through the EC2 API (as an operator, a Spot reclaim without notice, or a failed
    host would); the instance id."""
    instance, _ = wait_for_task(rt, execution, step, timeout, skip)
    rt.clients["ec2"].terminate_instances(InstanceIds=[instance])
    return instance


@contextmanager
def objects_changed(rt: LocalRuntime, changes: dict[str, bytes | None]) -> Iterator[None]:
    """The BISON bucket's objects `changes` names get those bytes (None: deleted) meanwhile,
    as an upstream upload gone wrong would leave them (a truncated list, a missing layer);
    afterwards each is as it was."""
    assert rt.deployment
    s3, bucket = rt.clients["s3"], rt.deployment.bucket
    before = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in changes}
    for key, body in changes.items():
        if body is None:
            s3.delete_object(Bucket=bucket, Key=key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    try:
        yield
    finally:
        for key, body in before.items():
            s3.put_object(Bucket=bucket, Key=key, Body=body)


# --- Lambda -----------------------------------------------------------------------------------


@dataclass
class Injected:
    """How many times an injected fault fired (a test asserts the fault was met at all)."""

    fired: int = 0


#: (payload, errored) as Lambda answers an invocation; what a fault answers.
LambdaResult = tuple[str, bool]
#: Given what runs the function itself (its LambdaResult), what Lambda returns instead.
LambdaAnswer = Callable[[Callable[[], LambdaResult]], LambdaResult]


@contextmanager
def _intercept_lambda(function: str, times: int, answer: LambdaAnswer) -> Iterator[Injected]:
    """The next `times` invocations of the stack's `function` (e.g. "poll_statement") return
    what `answer` makes of them (it runs the function or not); the others run as usual."""
    original = LambdaFunction._invoke_lambda
    injected = Injected()
    lock = threading.Lock()

    def invoke(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
        if not self.function_name.endswith(f"-{function}"):
            return original(self, event)
        with lock:
            if injected.fired >= times:
                return original(self, event)
            injected.fired += 1
        logs = ""

        def run() -> LambdaResult:
            nonlocal logs
            payload, errored, logs = original(self, event)
            return payload, errored

        payload, errored = answer(run)
        return payload, errored, logs + INJECTED_LOG_LINE

    LambdaFunction._invoke_lambda = invoke
    try:
        yield injected
    finally:
        LambdaFunction._invoke_lambda = original


def lambda_raises(
    function: str, error_type: str, message: str, times: int = 1
) -> AbstractContextManager[Injected]:
    """The next `times` invocations of `function` fail as Lambda reports a function that
    raised `error_type(message)` before doing anything (Lambda Developer Guide, "Lambda
    function errors in Python": errorMessage, errorType, stackTrace; the response's
    FunctionError is set). The function does not run: had it run, its work (a lock
    released, an instance ended) would hide what the failure should leave behind."""
    body = {"errorMessage": message, "errorType": error_type, "stackTrace": []}
    return _intercept_lambda(function, times, lambda _run: (json.dumps(body), True))


def lambda_result_padded(
    function: str, field: str, size: int, times: int = 1
) -> AbstractContextManager[Injected]:
    """The next `times` results of `function` carry one more `field` of `size` characters:
    a result past Step Functions' payload quota, as a list that grew would make it."""

    def padded(run: Callable[[], LambdaResult]) -> LambdaResult:
        payload, errored = run()
        if errored:
            return payload, errored  # an error is not a result
        return json.dumps({**json.loads(payload), field: "x" * size}), False

    return _intercept_lambda(function, times, padded)


# --- Data API statements ----------------------------------------------------------------------


@contextmanager
def sql_fault(pattern: str, hang: bool = False, times: int = 1) -> Iterator[Injected]:
    """The next `times` SQL statements matching `pattern` (a regex, searched) fail as
    Redshift fails one, or with `hang` run until cancelled: CancelStatement interrupts them
    (ABORTED), and leaving the block ends a hang still running (FAILED)."""
    original = Engine.run_sql
    matcher = re.compile(pattern, re.IGNORECASE | re.DOTALL)
    injected = Injected()
    lock = threading.Lock()
    released = threading.Event()

    def run(self: Engine, sql: str, in_transaction: bool) -> Any:
        with lock:
            chosen = injected.fired < times and matcher.search(sql) is not None
            if chosen:
                injected.fired += 1
        if not chosen:
            return original(self, sql, in_transaction)
        if not hang:
            raise EmulatorError(f"fault injected: this statement fails (matched {pattern!r})")
        while not released.wait(POLL_SECONDS):
            running = self.running
            if running is not None and running.cancel_requested:
                break
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    with mock.patch.object(Engine, "run_sql", run):
        try:
            yield injected
        finally:
            released.set()


# --- GBIF -------------------------------------------------------------------------------------


def gbif_standin(rt: LocalRuntime) -> GbifStandin:
    """The runtime's GBIF stand-in (the runtime keeps it to itself; only faults need it)."""
    standin = rt._gbif
    assert standin is not None, "the runtime is not started"
    return standin


@contextmanager
def gbif_outage(
    rt: LocalRuntime, seconds: float, status: int | None, retry_after_seconds: float = 0.0
) -> Iterator[GbifStandin]:
    """GBIF answers every request `status` (None: drops the connection unanswered) for
    `seconds` from now; yields the stand-in, whose counters tell what the tasks met."""
    standin = gbif_standin(rt)
    standin.outage(seconds, status, retry_after_seconds)
    try:
        yield standin
    finally:
        standin.outage(0, None)
