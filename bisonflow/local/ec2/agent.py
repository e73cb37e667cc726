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

Instance metadata is served as EC2 serves it (bisonflow.local.ec2.instance_metadata): moto applies
neither the launch template's MetadataOptions nor its IamInstanceProfile to the instance
(moto 5.2.5 reports its defaults and no profile), so the agent reads them from the launch
template version the instance was launched from (its aws:ec2launchtemplate:* tags), with an
instance profile RunInstances itself gave taking precedence, as EC2 applies them. The boot
script's reads (on the host) need the endpoint enabled and tag access; the task container gets
a session of the instance profile's role, named after the instance id as EC2 names it, only if
the metadata options let a process at its compose network's distance reach IMDS; otherwise it
gets no credentials at all (and never tries 169.254.169.254), and the agent says why. Compose's
awslogs driver runs in the Docker daemon on the host and ships the task's output with the same
role session, to the group and stream the compose file names (bisonflow.local.ec2.compose_file).

The boot script goes on after the container exits: if the instance is still running (the task
did not terminate it: killed, out of memory, crashed), the agent runs the script's report of an
unreported task, `python -m tasks.runner --report-unreported`, with the container's environment
(as `docker compose run` does), then the script's EXIT trap shuts the instance down. The task
reads instance metadata from a local stand-in (MetadataService); interrupt() serves the Spot
interruption notice there and reclaims the instance `reclaim_seconds` later, two minutes on AWS
(EC2 User Guide, "Spot Instance interruption notices").
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from bisonflow import PROJECT_ROOT
from bisonflow.local.child_processes import OWN_GROUP, passed_through
from bisonflow.local.credentials import as_environment, role_credentials
from bisonflow.local.ec2.compose_file import task_service
from bisonflow.local.ec2.instance_metadata import (
    MetadataOptions,
    MetadataService,
    boot_script_reads,
    container_credentials,
    container_network,
    host_credentials,
    metadata_reachable,
)
from bisonflow.steps.ec2_tasks import LIVE_STATES, TAG_TASK

#: A boot-script line that sets a variable from instance metadata: NAME=$(imds PATH).
_IMDS_ASSIGNMENT = re.compile(r"^(\w+)=\$\(imds ([^)\s]+)\)\s*$", re.MULTILINE)
#: The command each task's container runs (tasks/Dockerfile CMD).
TASK_COMMAND = (sys.executable, "-m", "tasks.runner")
#: What the boot script runs in the task's image after the container exited.
REPORT_UNREPORTED = "--report-unreported"
#: How long after its Spot interruption notice EC2 reclaims an instance.
SPOT_NOTICE_SECONDS = 120.0
#: What the task runner cannot start without.
REQUIRED = ("TASK_APP", "TASK_SPEC_URI", "INSTANCE_ID", "TASK_LOG_GROUP")
#: The tags EC2 puts on an instance launched from a launch template.
TEMPLATE_ID_TAG, TEMPLATE_VERSION_TAG = "aws:ec2launchtemplate:id", "aws:ec2launchtemplate:version"
#: What a container without instance credentials has: no keys, no shared config files of the
#: host (a container has none), and boto3 told never to call the metadata address, which this
#: machine must not reach.
NO_CREDENTIALS = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_CONFIG_FILE": os.devnull,
}


#: PutLogEvents' limits (CloudWatch Logs API Reference, PutLogEvents): a batch holds at most
#: 10,000 events and 1,048,576 bytes, counted as each message's UTF-8 bytes plus 26 bytes per
#: event; each event at most 256 KB (raised to 1 MB in 2025; Docker's awslogs driver splits at
#: 256 KiB less the 26 bytes, and so do we, which both limits accept). InputLogEvent's
#: message has a minimum length of 1 (API Reference, InputLogEvent), so an empty line is
#: no event at all.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_EVENTS = 10_000


def log_messages(text: str) -> list[str]:
    """The task output's lines as CloudWatch log events: empty lines dropped, a line longer
    than MAX_EVENT_BYTES split into pieces of at most that many UTF-8 bytes (never inside a
    character)."""
    messages: list[str] = []
    for line in text.splitlines():
        data = line.encode()
        while data:
            cut = min(len(data), MAX_EVENT_BYTES)
            while cut < len(data) and data[cut] & 0xC0 == 0x80:  # a continuation byte
                cut -= 1
            messages.append(data[:cut].decode())
            data = data[cut:]
    return messages


def log_batches(messages: list[str]) -> list[list[str]]:
    """The messages in PutLogEvents calls each within the batch limits, in order."""
    batches: list[list[str]] = [[]]
    size = 0
    for message in messages:
        cost = len(message.encode()) + EVENT_OVERHEAD
        if batches[-1] and (size + cost > MAX_BATCH_BYTES or len(batches[-1]) >= MAX_BATCH_EVENTS):
            batches.append([])
            size = 0
        batches[-1].append(message)
        size += cost
    return [batch for batch in batches if batch]


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


@dataclass(frozen=True)
class LaunchSettings:
    """What EC2 applied to an instance: its metadata options and its instance profile."""

    options: MetadataOptions
    instance_profile: str | None  # ARN (or name) of the instance profile
    shutdown_behavior: str = "stop"  # InstanceInitiatedShutdownBehavior (EC2's default: stop)


@dataclass
class Ec2Agent:
    ec2: Any  # the operator's EC2 client: the agent plays EC2 itself
    iam: Any  # the operator's IAM client: EC2 reads the instance profile's role
    endpoint_url: str
    region: str
    workdir: Path
    task_env: dict[str, str]  # endpoint and settings the task container gets (no credentials)
    repository: Path = PROJECT_ROOT  # the boot script's clone: tasks/compose.<task>.yml
    task_command: tuple[str, ...] = TASK_COMMAND
    #: Seconds between DescribeInstances polls. Each poll is a request through the emulator
    #: (about 9 ms of CPU): every 0.2 s cost 5% of a core per runtime, idle or not, and the
    #: test suite keeps three runtimes up on two cores. A real instance boots in tens of s.
    interval: float = 0.5
    paused: bool = False  # tests: instances launched meanwhile never boot
    #: More DescribeInstances filters: which of the task instances this agent boots (tests).
    filters: list[dict[str, Any]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what the agent reported, in order
    #: Seconds from a Spot interruption notice to the instance's reclaim (tests: shorter).
    reclaim_seconds: float = SPOT_NOTICE_SECONDS
    metadata: MetadataService | None = None  # IMDS of the task processes (start() makes it)
    _procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: instance -> the boot script's report after its container exited
    _tails: dict[str, subprocess.Popen] = field(default_factory=dict)
    #: instance -> the container's environment and what EC2 applied (for the boot script's end)
    _booted: dict[str, tuple[dict[str, str], LaunchSettings]] = field(default_factory=dict)
    _timers: list[threading.Timer] = field(default_factory=list)
    #: instance -> (log group, log stream, the instance role's session) of its awslogs driver
    _shipping: dict[str, tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.metadata = MetadataService().start()
        self._thread = threading.Thread(target=self._loop, name="ec2-agent", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for timer in self._timers:
            timer.cancel()
        for proc in [*self._procs.values(), *self._tails.values()]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if self.metadata:
            self.metadata.stop()

    def interrupt(self, instance_id: str, action: str = "terminate") -> str:
        """Give `instance_id` the Spot interruption notice (`action` `terminate` or `stop`)
        and reclaim it `reclaim_seconds` later, as EC2 does; the notice's time."""
        if self.metadata is None:
            raise RuntimeError("the EC2 agent is not started")
        at = datetime.now(UTC) + timedelta(seconds=self.reclaim_seconds)
        when = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.metadata.interrupt(instance_id, action, when)
        self.report(f"instance {instance_id}: Spot interruption notice, {action} at {when}")
        timer = threading.Timer(self.reclaim_seconds, self._reclaim, (instance_id, action))
        timer.daemon = True
        self._timers.append(timer)
        timer.start()
        return when

    def _reclaim(self, instance_id: str, action: str) -> None:
        """EC2 takes the instance back, whatever runs on it."""
        state = self._state(instance_id)
        if state not in LIVE_STATES or (action == "stop" and state == "stopped"):
            return
        self.report(f"instance {instance_id}: reclaimed by EC2 Spot ({action})")
        if action == "stop":
            self.ec2.stop_instances(InstanceIds=[instance_id])
        else:
            self.ec2.terminate_instances(InstanceIds=[instance_id])

    def _state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]

    def _loop(self) -> None:
        """Poll until stopped. An error is reported once, not every `interval`: the same
        failure 5 times a second buried the console under identical lines (issue 12)."""
        last = None
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
                last = None
            except Exception as exc:  # keep watching; report what went wrong, once
                message = f"{type(exc).__name__}: {exc}"
                if message != last:
                    self.report(f"{message} (reported once; the agent keeps polling)")
                last = message

    def report(self, message: str) -> None:
        self.notices.append(message)
        print(f"[ec2-agent] {message}", file=sys.stderr, flush=True)

    def poll_once(self) -> None:
        live: set[str] = set()
        pages = self.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "tag-key", "Values": [TAG_TASK]}, *self.filters]
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
            status = proc.poll()
            if status is None:
                continue
            del self._procs[instance_id]  # first: a failed step must not come back
            if instance_id in live and self._state(instance_id) in LIVE_STATES:
                self._report_unreported(instance_id, status)  # the boot script goes on
            else:
                self._finish(instance_id)
        for instance_id, tail in list(self._tails.items()):
            if instance_id not in live and tail.poll() is None:
                tail.kill()
            if tail.poll() is None:
                continue
            del self._tails[instance_id]
            settings = self._booted[instance_id][1]
            self._finish(instance_id)
            if instance_id in live:  # the boot script ends: its EXIT trap shuts down
                self._power_off(instance_id, settings)

    def _report_unreported(self, instance_id: str, status: int) -> None:
        """The boot script after `docker compose up` returned: its report of a task that
        died unreported, in the task's image with the container's environment."""
        env, _ = self._booted[instance_id]
        with self.log_path(instance_id).open("a") as log:
            self._tails[instance_id] = subprocess.Popen(
                (*self.task_command, REPORT_UNREPORTED),
                cwd=self.repository,
                env={**env, "TASK_EXIT_STATUS": str(status)},
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=OWN_GROUP,  # the terminal's Ctrl-C is bisonflow's to handle
            )

    def _finish(self, instance_id: str) -> None:
        """The instance's work is over: ship its log, forget its metadata."""
        self._booted.pop(instance_id, None)
        if self.metadata:
            self.metadata.forget(instance_id)
        try:
            self._ship_log(instance_id)
        except Exception as exc:  # the task's outcome is reported; only its log is lost
            self.report(
                f"instance {instance_id}: its log was not shipped to CloudWatch Logs "
                f"({type(exc).__name__}: {exc}); it stays in {self.log_path(instance_id)}"
            )

    def _boot(self, instance: dict[str, Any]) -> None:
        instance_id = instance["InstanceId"]
        attr = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        raw = attr.get("UserData", {}).get("Value", "")
        userdata = base64.b64decode(raw).decode() if raw else ""
        settings = self.launch_settings(instance)
        reads = boot_script_reads(settings.options, list(metadata_paths(userdata).values()))
        if not reads.granted:
            return self._shut_down(instance_id, settings, f"{reads.reason}: its boot script fails")
        env = boot_environment(userdata, instance)
        missing = [name for name in REQUIRED if not env.get(name)]
        if missing:
            return self._shut_down(
                instance_id,
                settings,
                f"its boot script leaves {', '.join(missing)} unset (no such tag on the instance?)",
            )
        role = self._instance_role(settings.instance_profile)
        daemon = host_credentials(settings.options, role)
        if not daemon.granted or role is None:
            return self._shut_down(
                instance_id,
                settings,
                f"{daemon.reason}: compose's awslogs driver gets no credentials, so the "
                "container does not start",
            )
        compose_file = self.repository / "tasks" / f"compose.{env['TASK_APP']}.yml"
        if not compose_file.is_file():
            return self._shut_down(
                instance_id, settings, f"its boot script finds no {compose_file}"
            )
        try:
            service = task_service(compose_file, env)
            network = container_network(service.network_mode)
        except ValueError as exc:
            return self._shut_down(instance_id, settings, f"{compose_file}: {exc}")
        session = role_credentials(role, instance_id)
        container = container_credentials(settings.options, network, role)
        credentials = dict(NO_CREDENTIALS)
        if container.granted:
            credentials |= as_environment(session)
            if container.reason:
                self.report(f"instance {instance_id}: {container.reason}")
        else:
            self.report(f"instance {instance_id}: {container.reason}: the task gets no credentials")
        if service.awslogs:
            self._shipping[instance_id] = (*service.awslogs, session)
        if self.metadata is None:  # an agent polled by hand (tests) serves metadata too
            self.metadata = MetadataService().start()
        self.metadata.register(
            instance_id,
            metadata_reachable(settings.options, network.hops, network.describe()),
            settings.options.http_tokens == "required",
        )
        imds = {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.metadata.endpoint(instance_id)}
        container_env = {**self._base_env(), **self.task_env, **env, **credentials, **imds}
        self._booted[instance_id] = (container_env, settings)
        log_path = self.log_path(instance_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as log:
            self._procs[instance_id] = subprocess.Popen(
                self.task_command,
                cwd=self.repository,
                env=container_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=OWN_GROUP,  # the terminal's Ctrl-C is bisonflow's to handle
            )

    def launch_settings(self, instance: dict[str, Any]) -> LaunchSettings:
        """The metadata options and instance profile EC2 applied: those of the launch template
        version the instance came from, an instance profile RunInstances gave winning."""
        associations = self.ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance["InstanceId"]]}]
        )["IamInstanceProfileAssociations"]
        given = associations[0]["IamInstanceProfile"]["Arn"] if associations else None
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if TEMPLATE_ID_TAG not in tags:
            return LaunchSettings(MetadataOptions.from_api(instance.get("MetadataOptions")), given)
        # RunInstances' own metadata options would override the template's; moto reports its
        # defaults whether or not they were given, and launch_task gives none.
        data = self.ec2.describe_launch_template_versions(
            LaunchTemplateId=tags[TEMPLATE_ID_TAG], Versions=[tags[TEMPLATE_VERSION_TAG]]
        )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
        profile = data.get("IamInstanceProfile", {})
        return LaunchSettings(
            MetadataOptions.from_api(data.get("MetadataOptions")),
            given or profile.get("Arn") or profile.get("Name"),
            data.get("InstanceInitiatedShutdownBehavior") or "stop",
        )

    def _instance_role(self, instance_profile: str | None) -> str | None:
        """The ARN of the instance profile's role, as IMDS would serve its credentials."""
        if not instance_profile:
            return None
        name = instance_profile.rsplit("/", 1)[-1]
        roles = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]["Roles"]
        return roles[0]["Arn"] if roles else None

    def _shut_down(self, instance_id: str, settings: LaunchSettings, why: str) -> None:
        """The boot script exits and its EXIT trap shuts the instance down, which then stops
        or terminates as its InstanceInitiatedShutdownBehavior says."""
        self.report(f"instance {instance_id}: {why}: the instance shuts down")
        self._power_off(instance_id, settings)

    def _power_off(self, instance_id: str, settings: LaunchSettings) -> None:
        """`shutdown -h now`: the instance stops, or terminates if its launch said so."""
        if settings.shutdown_behavior == "terminate":
            self.ec2.terminate_instances(InstanceIds=[instance_id])
        else:
            self.ec2.stop_instances(InstanceIds=[instance_id])

    def log_path(self, instance_id: str) -> Path:
        return self.workdir / "logs" / "tasks" / f"{instance_id}.log"

    def _ship_log(self, instance_id: str) -> None:
        """Send the task's output where its compose file's awslogs driver sends it (group and
        stream as the file names them), as the instance role; nothing for another driver."""
        if instance_id not in self._shipping:
            return
        group, stream, session = self._shipping.pop(instance_id)
        text = self.log_path(instance_id).read_text(errors="replace")
        logs = boto3.client(
            "logs", endpoint_url=self.endpoint_url, region_name=self.region, **session
        )
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        for batch in log_batches(log_messages(text) or ["(no output)"]):
            logs.put_log_events(
                logGroupName=group,
                logStreamName=stream,
                logEvents=[{"timestamp": now, "message": message} for message in batch],
            )

    @staticmethod
    def _base_env() -> dict[str, str]:
        return passed_through() | {"PYTHONUNBUFFERED": "1"}
