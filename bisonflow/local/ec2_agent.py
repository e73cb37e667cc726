"""Emulator seam: boot the EC2 instances the workflow launches as local task processes.

moto records RunInstances but boots nothing. This agent watches the emulator through the
EC2 API for instances tagged as BISON tasks and plays cloud-init and the instance metadata
service: it reads each instance's userdata (the launch template's boot script), evaluates
the script's `NAME=$(imds PATH)` assignments against the instance as IMDS would answer them
(instance-id, placement/region, tags/instance/<key> from the instance's tags), and runs the
task runner with those variables as a local process in place of `docker compose up` - the
same command the task's container runs. The task terminates its own instance through the
EC2 API; an instance that something else terminates (the cleanup step) has its process
killed, as a real instance would die with it.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bisonflow import PROJECT_ROOT
from bisonflow.ec2_tasks import LIVE_STATES, TAG_TASK

#: A boot-script line that sets a variable from instance metadata: NAME=$(imds PATH).
_IMDS_ASSIGNMENT = re.compile(r"^(\w+)=\$\(imds ([^)\s]+)\)\s*$", re.MULTILINE)
#: The command each task's container runs (tasks/Dockerfile CMD).
TASK_COMMAND = (sys.executable, "-m", "tasks.runner")
#: What the task runner cannot start without.
REQUIRED = ("TASK_APP", "TASK_SPEC_URI", "INSTANCE_ID", "TASK_LOG_GROUP")


def metadata_paths(userdata: str) -> dict[str, str]:
    """Variable -> instance metadata path, as the boot script reads them."""
    return dict(_IMDS_ASSIGNMENT.findall(userdata))


def imds_answer(instance: dict[str, Any], path: str) -> str:
    """What IMDSv2 answers for `path` on this instance (DescribeInstances' description)."""
    if path == "instance-id":
        return instance["InstanceId"]
    if path == "placement/region":
        return instance["Placement"]["AvailabilityZone"][:-1]
    if path.startswith("tags/instance/"):
        key = path.removeprefix("tags/instance/")
        return next((t["Value"] for t in instance.get("Tags", []) if t["Key"] == key), "")
    raise ValueError(f"the agent does not emulate instance metadata path {path!r}")


def boot_environment(userdata: str, instance: dict[str, Any]) -> dict[str, str]:
    """The variables the boot script sets from instance metadata, for this instance."""
    return {name: imds_answer(instance, path) for name, path in metadata_paths(userdata).items()}


@dataclass
class Ec2Agent:
    ec2: Any  # boto3 EC2 client on the emulator
    logs: Any  # boto3 CloudWatch Logs client on the emulator
    workdir: Path
    task_env: dict[str, str]  # endpoint, credentials and settings the task container gets
    interval: float = 0.2
    paused: bool = False  # tests: instances launched meanwhile never boot
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _log_groups: dict[str, str] = field(default_factory=dict)  # instance -> TASK_LOG_GROUP
    _seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ec2-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as exc:  # keep watching; report what went wrong
                print(f"[ec2-agent] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    def poll_once(self) -> None:
        live: set[str] = set()
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag-key", "Values": [TAG_TASK]}]
        )
        for page in pages:
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    instance_id = instance["InstanceId"]
                    if instance["State"]["Name"] in LIVE_STATES:
                        live.add(instance_id)
                        if instance_id not in self._seen and not self.paused:
                            self._seen.add(instance_id)
                            self._boot(instance)
        for instance_id, proc in list(self._procs.items()):
            if instance_id not in live and proc.poll() is None:
                proc.kill()  # terminated from outside: the machine is gone
            if proc.poll() is not None:
                self._ship_log(instance_id)
                del self._procs[instance_id]

    def _boot(self, instance: dict[str, Any]) -> None:
        instance_id = instance["InstanceId"]
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        raw = attr.get("UserData", {}).get("Value", "")
        userdata = base64.b64decode(raw).decode() if raw else ""
        env = boot_environment(userdata, instance)
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            print(
                f"[ec2-agent] {instance_id}: its boot script leaves {', '.join(missing)} unset "
                "(no such tag on the instance?); not booting it",
                file=sys.stderr,
            )
            return
        self._log_groups[instance_id] = env["TASK_LOG_GROUP"]
        log_path = self.log_path(instance_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            self._procs[instance_id] = subprocess.Popen(
                TASK_COMMAND,
                cwd=PROJECT_ROOT,
                env={**self._base_env(), **self.task_env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_path(self, instance_id: str) -> Path:
        return self.workdir / "logs" / "tasks" / f"{instance_id}.log"

    def _ship_log(self, instance_id: str) -> None:
        """Copy the task's output to its log group (as compose's awslogs driver), stream =
        instance id."""
        group = self._log_groups.pop(instance_id)
        lines = self.log_path(instance_id).read_text(errors="replace").splitlines() or [
            "(no output)"
        ]
        self.logs.create_log_stream(logGroupName=group, logStreamName=instance_id)
        now = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=instance_id,
            logEvents=[{"timestamp": now, "message": line} for line in lines[-5000:]],
        )

    @staticmethod
    def _base_env() -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONUNBUFFERED": "1"}
