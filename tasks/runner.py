"""Run one BISON task on its EC2 instance and report back to Step Functions.

Started by the task's container (TASK_APP selects the module, as in the seed system's
compose files). It reads the task spec from S3 and the task token from SSM, sends heartbeats
while the task runs, reports SendTaskSuccess with the task's small result or
SendTaskFailure with the error and the tail of the traceback, and finally terminates its own
instance so nothing is left running (and billed) after the task.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import threading
import traceback
from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.taskspec import TaskSpec

log = logging.getLogger("bisonflow.task")

CAUSE_LIMIT = 32_000  # Step Functions caps cause at 32,768 characters


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
        cause = "".join(traceback.format_exception(exc))[-CAUSE_LIMIT:]
        log.error("task %s failed: %s: %s", spec.task, type(exc).__name__, exc)
        sfn.send_task_failure(taskToken=token, error=type(exc).__name__[:256], cause=cause)
        return 1
    log.info("task %s succeeded: %s", spec.task, json.dumps(result))
    sfn.send_task_success(taskToken=token, output=json.dumps(result))
    return 0


def main() -> int:
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
