"""Run one BISON task on its EC2 instance and report back to Step Functions.

Started by the task's container (TASK_APP selects the module, as in the seed system's
compose files). It reads the task spec from S3 and the task token from SSM, sends heartbeats
while the task runs, reports SendTaskSuccess with the task's small result or SendTaskFailure
with the error type and a cause that leads with the message (failure_cause), and finally
terminates its own instance so nothing is left running (and billed) after the task.
"""

from __future__ import annotations

import importlib
import io
import json
import logging
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from bisonflow import PROJECT_ROOT, aws, config
from bisonflow.taskspec import TaskSpec

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


def read_spec(uri: str) -> TaskSpec:
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


class Heartbeat:
    """Sends SendTaskHeartbeat on a timer; notices when Step Functions gave up on the task."""

    def __init__(self, token: str, interval: float) -> None:
        self._token, self._interval = token, interval
        self._stop = threading.Event()
        self.lost: str | None = None
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        sfn = aws.client("stepfunctions")
        while not self._stop.wait(self._interval):
            try:
                sfn.send_task_heartbeat(taskToken=self._token)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code in ("TaskTimedOut", "TaskDoesNotExist", "InvalidToken"):
                    self.lost = code
                    log.error("Step Functions no longer waits for this task (%s)", code)
                    terminate_self()  # nobody will read the result: stop paying for it
                    os._exit(3)
                log.warning("heartbeat failed: %s", code)


def run_task(spec: TaskSpec) -> dict[str, Any]:
    module = importlib.import_module(f"tasks.{spec.task}")
    return module.run(spec)


def terminate_self() -> None:
    instance_id = os.environ.get("INSTANCE_ID", "").strip()
    if not instance_id:
        log.warning("INSTANCE_ID is not set; the instance shuts itself down instead")
        return
    aws.client("ec2").terminate_instances(InstanceIds=[instance_id])
    log.info("terminating instance %s", instance_id)


def report(spec: TaskSpec, token: str) -> int:
    """Run the task under heartbeats and report its outcome with the token."""
    sfn = aws.client("stepfunctions")
    log.info("task %s for %s (execution %s) starting", spec.task, spec.month, spec.execution)
    try:
        with Heartbeat(token, config.heartbeat_interval_seconds()):
            result = run_task(spec)
    except Exception as exc:
        cause = failure_cause(exc)
        log.error("task %s failed: %s: %s", spec.task, type(exc).__name__, exc)
        sfn.send_task_failure(taskToken=token, error=type(exc).__name__[:256], cause=cause)
        return 1
    log.info("task %s succeeded: %s", spec.task, json.dumps(result))
    sfn.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


def main() -> int:
    """The container's entry point, with a thread-safe stdout (LineAtomicWriter)."""
    stdout = sys.stdout
    sys.stdout = LineAtomicWriter(stdout)
    try:
        return _run()
    finally:
        sys.stdout.flush()
        sys.stdout = stdout


def _run() -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        task_app = os.environ.get("TASK_APP", "").strip()
        spec = read_spec(os.environ.get("TASK_SPEC_URI", ""))
        if task_app != spec.task:
            raise ValueError(f"TASK_APP={task_app!r} but the task spec is for {spec.task!r}")
        token = read_token(spec.token_parameter)
        status = report(spec, token)
        # The token is single-use: once reported, nothing needs it any more.
        aws.client("ssm").delete_parameter(Name=spec.token_parameter)
        return status
    finally:
        terminate_self()


if __name__ == "__main__":
    sys.exit(main())
