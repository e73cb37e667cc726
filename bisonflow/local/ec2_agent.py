"""Emulator seam: boot the EC2 instances the workflow launches as local task processes.

moto records RunInstances but boots nothing. This agent watches the emulator through the
EC2 API for instances tagged as BISON tasks, reads each one's userdata the way cloud-init
would (the `export NAME=value` lines rendered from tasks/userdata.sh.tmpl), and runs the task
runner as a local process in place of `docker compose up` - the same command the task's
container runs. The task terminates its own instance through the EC2 API; an instance that
something else terminates (the cleanup step) has its process killed, as a real instance
would die with it.
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

_EXPORT = re.compile(r"^export (TASK_APP|TASK_SPEC_URI)=(\S+)\s*$", re.MULTILINE)
#: The command each task's container runs (tasks/Dockerfile CMD).
TASK_COMMAND = (sys.executable, "-m", "tasks.runner")


def userdata_environment(userdata: str) -> dict[str, str]:
    """TASK_APP and TASK_SPEC_URI as the boot script exports them."""
    return dict(_EXPORT.findall(userdata))


@dataclass
class Ec2Agent:
    ec2: Any  # boto3 EC2 client on the emulator
    logs: Any  # boto3 CloudWatch Logs client on the emulator
    workdir: Path
    task_env: dict[str, str]  # endpoint, credentials and settings the task container gets
    interval: float = 0.2
    paused: bool = False  # tests: instances launched meanwhile never boot
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if not self._group_exists():
            self.logs.create_log_group(logGroupName="bison_task")
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

    def _group_exists(self) -> bool:
        groups = self.logs.describe_log_groups(logGroupNamePrefix="bison_task")["logGroups"]
        return any(g["logGroupName"] == "bison_task" for g in groups)

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
                            self._boot(instance_id)
        for instance_id, proc in list(self._procs.items()):
            if instance_id not in live and proc.poll() is None:
                proc.kill()  # terminated from outside: the machine is gone
            if proc.poll() is not None:
                self._ship_log(instance_id)
                del self._procs[instance_id]

    def _boot(self, instance_id: str) -> None:
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        raw = attr.get("UserData", {}).get("Value", "")
        userdata = base64.b64decode(raw).decode() if raw else ""
        env = userdata_environment(userdata)
        if set(env) != {"TASK_APP", "TASK_SPEC_URI"}:
            print(f"[ec2-agent] {instance_id}: userdata names no BISON task", file=sys.stderr)
            return
        log_path = self.log_path(instance_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            self._procs[instance_id] = subprocess.Popen(
                TASK_COMMAND,
                cwd=PROJECT_ROOT,
                env={**self._base_env(), **self.task_env, **env, "INSTANCE_ID": instance_id},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_path(self, instance_id: str) -> Path:
        return self.workdir / "logs" / "tasks" / f"{instance_id}.log"

    def _ship_log(self, instance_id: str) -> None:
        """Copy the task's output to CloudWatch Logs group bison_task, stream = instance id."""
        lines = self.log_path(instance_id).read_text(errors="replace").splitlines() or [
            "(no output)"
        ]
        self.logs.create_log_stream(logGroupName="bison_task", logStreamName=instance_id)
        now = int(time.time() * 1000)
        self.logs.put_log_events(
            logGroupName="bison_task",
            logStreamName=instance_id,
            logEvents=[{"timestamp": now, "message": line} for line in lines[-5000:]],
        )

    @staticmethod
    def _base_env() -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        return {k: os.environ[k] for k in keep if k in os.environ} | {"PYTHONUNBUFFERED": "1"}
