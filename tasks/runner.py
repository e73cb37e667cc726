"""Run one BISON task on its EC2 instance and report back to Step Functions.

Started by the task's container (TASK_APP selects the module, as in the seed system's
compose files). It reads the task spec from S3 and the task token from SSM, sends heartbeats
while the task runs, reports SendTaskSuccess with the task's small result or SendTaskFailure
with the error type and a cause that leads with the message (failure_cause), and finally
terminates its own instance so nothing is left running (and billed) after the task.

A task stops early, without writing anything more, when Step Functions no longer waits for
it (the execution was stopped or timed out: a heartbeat answers TaskTimedOut, and every S3
write first makes sure it would not, see Lease) or when EC2 gives the Spot interruption
notice (tasks.spot_notice): it then reports `TaskInstanceLost`, which the callback steps
retry on a new instance, two minutes before the instance is gone rather than after the
heartbeat timeout. A task that dies without a word (kill -9, out of memory) is reported by
the instance's boot script, which runs `python -m tasks.runner --report-unreported` after
the container exits (report_unreported).
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from bisonflow import PROJECT_ROOT, aws, config
from bisonflow.steps.taskspec import AnnotateRiisSpec, AnyTaskSpec, CalcStatsSpec, TaskSpec
from tasks.periodic import Periodic
from tasks.spot_notice import InterruptionNotice, SpotWatch, check_interval

log = logging.getLogger("bisonflow.task")

CAUSE_LIMIT = 32_000  # Step Functions caps cause at 32,768 characters
#: Frames of the traceback a cause keeps after its first line: where it failed, not how deep.
CAUSE_FRAMES = 6


def failure_cause(exc: BaseException, limit: int = CAUSE_LIMIT) -> str:
    """SendTaskFailure's cause: `<ErrorType>: <message>` on the first line, which is what the
    console, `bisonflow history` and the report show, then the last CAUSE_FRAMES frames as
    `file:line in function`, with the file relative to the project or its site-packages, so
    a cause never carries this machine's directories. A chained exception (raise ... from)
    adds its own first line. Cut at `limit` from the end, so the message always survives."""
    lines = [_headline(exc)]
    frames = traceback.extract_tb(exc.__traceback__)[-CAUSE_FRAMES:]
    if frames:
        lines.append("Traceback (innermost last):")
        lines += [f"  {_short_path(f.filename)}:{f.lineno} in {f.name}" for f in frames]
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if cause is not None:
        lines.append(f"caused by {_headline(cause)}")
    return "\n".join(lines)[:limit]


def _headline(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _short_path(filename: str) -> str:
    """A frame's file without the directories it was installed in."""
    path = Path(filename)
    try:
        return path.resolve().relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        pass
    parts = path.parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            return "/".join(parts[parts.index(marker) + 1 :])
    return path.name


class LineAtomicWriter(io.TextIOBase):
    """stdout for a task that prints from several threads: each thread's text reaches the
    stream in whole lines. print() writes the text and its newline in two calls, so two
    threads printing at once produced "ab\n\n" halves in the task's log (calc_stats' S3
    threads did); here a thread's partial line waits for its newline, and whole lines are
    written under one lock."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._pending = threading.local()

    def write(self, text: str) -> int:
        *lines, rest = (getattr(self._pending, "text", "") + text).split("\n")
        self._pending.text = rest
        if lines:
            with self._lock:
                self._stream.write("".join(line + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        rest = getattr(self._pending, "text", "")
        with self._lock:
            if rest:
                self._stream.write(rest)
                self._pending.text = ""
            self._stream.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    def isatty(self) -> bool:
        return self._stream.isatty()


def read_spec(uri: str) -> AnyTaskSpec:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"TASK_SPEC_URI must be s3://bucket/key, got {uri!r}")
    try:
        body = aws.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
    except ClientError as exc:
        raise RuntimeError(f"cannot read task spec {uri}: {exc}") from exc
    return TaskSpec.from_json(body["Body"].read())


def read_token(parameter: str) -> str:
    response = aws.client("ssm").get_parameter(Name=parameter, WithDecryption=True)
    return response["Parameter"]["Value"]


#: The error a task reports when its instance is going away under it; the callback steps
#: retry it on a new instance (statemachines/bison_workflow.asl.json).
INSTANCE_LOST = "TaskInstanceLost"
#: SendTaskHeartbeat's answers when Step Functions no longer waits for the task (Step
#: Functions API reference, SendTaskHeartbeat, Errors; moto answers InvalidToken).
GONE = ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken")
#: Exit statuses of a task that stopped without a result of its own.
EXIT_ABANDONED, EXIT_INTERRUPTED = 3, 4
#: An S3 write goes ahead without a new heartbeat if one succeeded this recently.
WRITE_CHECK_SECONDS = 1.0
#: S3 operations that change the bucket: each first checks that the task is still awaited.
S3_WRITES = (
    "PutObject",
    "CopyObject",
    "DeleteObject",
    "DeleteObjects",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
)


class Lease:
    """Whether Step Functions still waits for this task, and the one way to end it early.

    The first to settle the task wins: its result (settle()), or an early end (abandon()
    when Step Functions no longer waits, interrupt() on a Spot notice). An early end stops
    the process at once (`exit_process`, os._exit: no thread finishes a write after it)."""

    def __init__(
        self,
        token: str,
        sfn: Any,
        exit_process: Callable[[int], None] = os._exit,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token, self._sfn, self._exit, self._clock = token, sfn, exit_process, clock
        self._lock = threading.Lock()
        self._settled = False
        self._confirmed = float("-inf")  # when a heartbeat last succeeded

    def beat(self) -> None:
        """One SendTaskHeartbeat; abandon the task if Step Functions gave up on it."""
        try:
            self._sfn.send_task_heartbeat(taskToken=self._token)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in GONE:
                self.abandon(f"Step Functions no longer waits for this task ({code})")
            log.warning("heartbeat failed: %s", code)
            return
        self._confirmed = self._clock()

    def before_write(self, **_: Any) -> None:
        """botocore's before-call hook of every S3 write: a write of a stopped execution's
        task never happens, even between heartbeats (one a minute on AWS)."""
        if self._settled:
            self._exit_now(EXIT_ABANDONED)
        if self._clock() - self._confirmed > WRITE_CHECK_SECONDS:
            self.beat()

    def settle(self) -> bool:
        """Claim the right to report the task's own outcome; False if it already ended."""
        with self._lock:
            if self._settled:
                return False
            self._settled = True
            return True

    def abandon(self, why: str) -> None:
        """Nobody reads this task's result any more: stop paying for it, write nothing."""
        if self.settle():
            log.error("%s: the task stops without writing", why)
            terminate_self()
        self._exit_now(EXIT_ABANDONED)

    def interrupt(self, notice: InterruptionNotice) -> None:
        """The Spot notice: report TaskInstanceLost now, so the step is relaunched at once."""
        if not self.settle():
            return  # the task already reported its own outcome
        log.error("%s: reporting %s", notice.describe(), INSTANCE_LOST)
        try:
            self._sfn.send_task_failure(
                taskToken=self._token, error=INSTANCE_LOST, cause=notice.describe()
            )
        except ClientError as exc:
            log.warning("could not report the interruption: %s", exc)
        terminate_self()
        self._exit_now(EXIT_INTERRUPTED)

    def _exit_now(self, status: int) -> None:
        logging.shutdown()
        self._exit(status)


class Heartbeat(Periodic):
    """Sends SendTaskHeartbeat on a timer (Lease.beat)."""

    def __init__(self, lease: Lease, interval: float) -> None:
        super().__init__(interval, name="heartbeat")
        self._lease = lease

    def tick(self) -> bool:
        self._lease.beat()
        return False


def guard_writes(lease: Lease) -> None:
    """Make every S3 write of this process (bisonflow.aws's shared client) ask the lease."""
    events = aws.client("s3").meta.events
    for operation in S3_WRITES:
        events.register(f"before-call.s3.{operation}", lease.before_write)


def _annotate_riis(spec: AnnotateRiisSpec) -> dict[str, Any]:
    from tasks import annotate_riis  # imported by the task that runs it only: see ENTRY_POINTS

    return annotate_riis.run(spec)


def _calc_stats(spec: CalcStatsSpec) -> dict[str, Any]:
    from tasks import calc_stats

    return calc_stats.run(spec)


#: Task name -> its entry point, for every task a spec can name (taskspec.SPEC_CLASSES). Each
#: imports its module when called: calc_stats' numpy, pyarrow and matplotlib cost an
#: annotate_riis container 1.4 s it does not need, and annotate_riis' requests the reverse.
ENTRY_POINTS: dict[str, Callable[[Any], dict[str, Any]]] = {
    AnnotateRiisSpec.task: _annotate_riis,
    CalcStatsSpec.task: _calc_stats,
}


def run_task(spec: AnyTaskSpec) -> dict[str, Any]:
    return ENTRY_POINTS[spec.task](spec)


def terminate_self() -> None:
    instance_id = os.environ.get("INSTANCE_ID", "").strip()
    if not instance_id:
        log.warning("INSTANCE_ID is not set; the instance shuts itself down instead")
        return
    aws.client("ec2").terminate_instances(InstanceIds=[instance_id])
    log.info("terminating instance %s", instance_id)


def report(spec: AnyTaskSpec, token: str) -> int:
    """Run the task under heartbeats and the Spot watch, and report its outcome."""
    sfn = aws.client("stepfunctions")
    lease = Lease(token, sfn)
    guard_writes(lease)
    log.info("task %s for %s (execution %s) starting", spec.task, spec.month, spec.execution)
    try:
        with (
            Heartbeat(lease, config.heartbeat_interval_seconds()),
            SpotWatch(lease.interrupt, check_interval()),
        ):
            result = run_task(spec)
    except Exception as exc:
        cause = failure_cause(exc)
        log.error("task %s failed: %s: %s", spec.task, type(exc).__name__, exc)
        if lease.settle():
            sfn.send_task_failure(taskToken=token, error=type(exc).__name__[:256], cause=cause)
        return 1
    if not lease.settle():
        return EXIT_INTERRUPTED
    log.info("task %s succeeded: %s", spec.task, json.dumps(result))
    sfn.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


def report_unreported(spec: TaskSpec, token_version: str, exit_status: str) -> str:
    """The boot script's last word after the task's container exited: if the task never
    reported, report TaskInstanceLost with its token, so the step is relaunched now rather
    than after its heartbeat timeout. The task reported if its token is gone (the runner
    deletes it after reporting); a token of another version belongs to a later attempt
    (launch_task stored it for a relaunch), which this instance must not fail. Returns what
    it did, for the log."""
    instance = os.environ.get("INSTANCE_ID", "").strip() or "this instance"
    try:
        parameter = aws.client("ssm").get_parameter(Name=spec.token_parameter, WithDecryption=True)[
            "Parameter"
        ]
    except ClientError as exc:
        if aws.error_code(exc) == "ParameterNotFound":
            return "the task reported its outcome: nothing to do"
        raise
    if not token_version or str(parameter["Version"]) != token_version:
        return (
            f"the stored token is version {parameter['Version']}, not this instance's "
            f"{token_version or '(unknown)'}: a later attempt's, left alone"
        )
    cause = (
        f"the task's container on {instance} exited (status {exit_status or 'unknown'}) "
        "without reporting: killed, out of memory or crashed; reported by its boot script"
    )
    try:
        aws.client("stepfunctions").send_task_failure(
            taskToken=parameter["Value"], error=INSTANCE_LOST, cause=cause
        )
    except ClientError as exc:
        code = aws.error_code(exc)
        if code in GONE:
            return f"Step Functions no longer waits for the task ({code}): nothing to report"
        raise
    return f"reported {INSTANCE_LOST}: {cause}"


REPORT_UNREPORTED = "--report-unreported"


def main(args: list[str] | None = None) -> int:
    """The container's entry point, with a thread-safe stdout (LineAtomicWriter). With
    --report-unreported, the boot script's report of a task that died unreported."""
    args = args or []
    if args not in ([], [REPORT_UNREPORTED]):
        print(f"usage: python -m tasks.runner [{REPORT_UNREPORTED}]", file=sys.stderr)
        return 2
    stdout = sys.stdout
    sys.stdout = LineAtomicWriter(stdout)
    try:
        return _report_unreported() if args else _run()
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _run() -> int:
    _configure_logging()
    try:
        task_app = os.environ.get("TASK_APP", "").strip()
        spec = read_spec(os.environ.get("TASK_SPEC_URI", ""))
        if task_app != spec.task:
            error = ValueError(f"TASK_APP={task_app!r} but the task spec is for {spec.task!r}")
            _report_before_start(spec, error)
            raise error
        token = read_token(spec.token_parameter)
        status = report(spec, token)
        # The token is single-use: once reported, nothing needs it any more.
        aws.client("ssm").delete_parameter(Name=spec.token_parameter)
        return status
    finally:
        terminate_self()


def _report_before_start(spec: TaskSpec, error: Exception) -> None:
    """A task that cannot start reports why with its token, if it can read it: otherwise
    the step would wait for its heartbeat timeout to learn nothing."""
    try:
        token = read_token(spec.token_parameter)
        aws.client("stepfunctions").send_task_failure(
            taskToken=token, error=type(error).__name__, cause=failure_cause(error)
        )
        aws.client("ssm").delete_parameter(Name=spec.token_parameter)
    except ClientError as exc:
        log.warning("could not report %s: %s", type(error).__name__, exc)


def _report_unreported() -> int:
    _configure_logging()
    spec = read_spec(os.environ.get("TASK_SPEC_URI", ""))
    outcome = report_unreported(
        spec, os.environ.get("TOKEN_VERSION", "").strip(), os.environ.get("TASK_EXIT_STATUS", "")
    )
    log.info("boot script: %s", outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
