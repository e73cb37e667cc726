"""The local runtime: the AWS emulator with the workflow deployed, on a laptop.

moto's server (ThreadedMotoServer) runs Step Functions with its ASL interpreter, S3, Lambda,
EC2, SSM, IAM and CloudWatch Logs on 127.0.0.1. Four seams make it run the workflow for
real: Lambda code in local worker processes (lambda_worker), EC2 tasks as local processes
(ec2_agent), the Redshift Data API on DuckDB (redshift_duckdb), and a GBIF species-API
stand-in (gbif_standin); asl_fixes corrects where the interpreter deviates from AWS.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import boto3

from bisonflow import PROJECT_ROOT
from bisonflow.deploy import cfn_template
from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY
from bisonflow.local.deploy import (
    Deployment,
    deploy_to_emulator,
    upload_inputs,
    upload_snapshot,
)
from bisonflow.local.ec2.agent import Ec2Agent
from bisonflow.local.emulator import CREDENTIALS, REGION, Emulator
from bisonflow.local.gbif_standin import GbifStandin
from bisonflow.local.scheduler import Fired, fire
from bisonflow.sample import SampleManifest
from bisonflow.sample.cache import cached_sample

LOCAL_BUCKET = "bisonflow-local"
#: A Lambda function's ARN, with its version or alias if qualified (Lambda API Reference,
#: Invoke, FunctionName).
LAMBDA_ARN = re.compile(r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(?::[\w$-]+)?")


def shortest_poll_seconds(allowed_pattern: str | None = None) -> int:
    """The PollSeconds the local deploy passes: the shortest Wait the template accepts.

    ASL allows a Wait of 0 to 99999999 seconds (AWS Step Functions Developer Guide, "Wait
    workflow state", Seconds). Locally the Data API stand-in finishes most batches before the
    first poll, so the Wait between SQL polls is pure delay: with 1 s, the 17 Waits of one
    demo execution were 17.2 s of its 48.8 s. Redshift's real interval stays the template's
    PollSeconds (default 30), which a deployed stack gets. The template's AllowedPattern
    (default: the template's own) decides: 0 where it admits 0, else 1.
    """
    if allowed_pattern is None:
        parameter = cfn_template.template()["Parameters"]["PollSeconds"]
        allowed_pattern = parameter.get("AllowedPattern", ".*")
    return 0 if re.fullmatch(allowed_pattern, "0") else 1


@dataclass
class LocalSettings:
    port: int = 0
    records: int = 250_000
    workdir: Path | None = None  # default: a temporary directory removed on stop
    poll_seconds: int = field(default_factory=shortest_poll_seconds)
    task_heartbeat_seconds: int = 60
    task_timeout_seconds: int = 1800
    heartbeat_interval: float = 2.0
    #: Authorize every call as AWS would (bisonflow.local.iam); off only for debugging.
    iam_enforcement: bool = True
    #: Template parameters given on the command line (the science settings); every other
    #: parameter the template declares keeps its default, as on AWS.
    stack_parameters: dict[str, str] = field(default_factory=dict)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM act only once a thread the runtime starts is known to its executor.

    Their handler raises `Stopped` in the main thread. Raised inside
    `ThreadPoolExecutor.submit` (after `Thread.start`, before the executor records the
    thread), it left a sample thread nobody joins: it drew into the work directory the stop
    removes and printed after the command's last line. Blocking the signals in this thread
    would not do: the kernel hands them to another thread, and Python still runs the handler
    here. So a signal that arrives inside the block is noted, and handled as it ends.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers, and only it runs them
        return
    arrived: list[tuple[int, FrameType | None]] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda n, f: arrived.append((n, f))) for s in wanted}
    try:
        yield
    finally:
        for wanted_signal, kept in previous.items():
            signal.signal(wanted_signal, kept)
        for signum, frame in arrived[:1]:
            handler = previous[signal.Signals(signum)]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)


@dataclass
class LocalRuntime:
    settings: LocalSettings = field(default_factory=LocalSettings)
    progress: Callable[[str], None] = print
    deployment: Deployment | None = None
    sample: SampleManifest | None = None
    workdir: Path = Path()
    emulator: Emulator | None = None
    #: The functions whose workers the start prewarmed (qualified ARNs, as the machine names them)
    prewarmed: list[str] = field(default_factory=list)
    _agent: Ec2Agent | None = None
    _gbif: GbifStandin | None = None
    _own_workdir: bool = False

    def __enter__(self) -> LocalRuntime:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- start and stop --------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self._own_workdir = s.workdir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="bisonflow-")) if s.workdir is None else s.workdir
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        phases = _Phases()

        self.emulator = Emulator(
            self.workdir, port=s.port, iam_enforcement=s.iam_enforcement
        ).start()
        phases.end("emulator")
        self.progress(f"emulator listening on {self.endpoint_url}")
        if s.iam_enforcement:
            self.progress(
                "IAM enforced: every Lambda, task, state machine call and schedule acts as its "
                "own role, and a call its policies would not allow on AWS is refused"
            )

        self.progress(f"generating sample data ({s.records:,} GBIF records)")
        with ThreadPoolExecutor(1, thread_name_prefix="sample") as drawing:
            # Deterministic for its arguments: a warm run copies the sample this code made
            # before (bisonflow.sample.cache) instead of drawing it again. A first run draws
            # it beside the deploy, which does not need it (numpy and pyarrow release the GIL
            # for much of a draw). Leaving the block waits for it, so a failed deploy never
            # removes the work directory under it.
            with _signals_deferred():
                sample = drawing.submit(
                    cached_sample,
                    self.workdir / "sample",
                    records=s.records,
                    progress=self.progress,
                )
            self.progress("deploying the workflow (definitions/bisonflow.cfn.yaml)")
            self.deployment = deploy_to_emulator(
                self.emulator, self._stack_parameters(), self._deploy_progress
            )
            phases.end("deploy")
            self.sample = sample.result()
            phases.end("sample")
        self._gbif = GbifStandin(self.sample.species_match_json)
        gbif_url = self._gbif.start()
        # Lambda's provisioned concurrency, locally: the functions' workers start now, beside
        # the rest of the start, instead of on the execution's critical path (speed only).
        assert self.emulator.pool
        self.prewarmed = self.emulator.pool.prewarm(self._state_machine_functions())
        upload_inputs(
            self.clients["s3"],
            self.deployment.bucket,
            self.sample.riis_csv,
            {
                COUNTY_SHAPEFILE_KEY: self.sample.county_shapefile,
                AIANNH_SHAPEFILE_KEY: self.sample.aiannh_shapefile,
            },
        )
        self._agent = Ec2Agent(
            ec2=self.clients["ec2"],
            iam=self.clients["iam"],
            endpoint_url=self.endpoint_url,
            region=REGION,
            workdir=self.workdir,
            task_env=self._task_environment(gbif_url),
        )
        self._agent.start()
        phases.end("inputs")
        self.progress(f"local runtime ready in {phases}")

    def stop(self) -> None:
        if self._agent:
            self._agent.stop()
        if self._gbif:
            self._gbif.stop()
        if self.emulator:
            self.emulator.stop()
        if self._own_workdir and self.workdir.exists():
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- configuration the deployed code sees ------------------------------------
    def _stack_parameters(self) -> dict[str, str]:
        """The template's parameters for a laptop: fast polls, short callback limits."""
        s = self.settings
        return s.stack_parameters | {
            "BucketName": LOCAL_BUCKET,
            "TaskRepositoryUrl": PROJECT_ROOT.as_uri(),
            "PollSeconds": str(s.poll_seconds),
            "TaskHeartbeatSeconds": str(s.task_heartbeat_seconds),
            "TaskTimeoutSeconds": str(s.task_timeout_seconds),
        }

    def _state_machine_functions(self) -> list[str]:
        """The Lambda ARNs (qualified as invoked: version or alias) the deployed state machine
        names, in order of first appearance."""
        assert self.deployment
        definition = self.clients["stepfunctions"].describe_state_machine(
            stateMachineArn=self.deployment.state_machine_arn
        )["definition"]
        return list(dict.fromkeys(LAMBDA_ARN.findall(definition)))

    def _deploy_progress(self, message: str) -> None:
        """Only the deploy's headline lines: its per-resource detail is for `bisonflow deploy`."""
        if not message.startswith("  "):
            self.progress(message)

    def _task_environment(self, gbif_url: str) -> dict[str, str]:
        """What a task container gets from its compose file and the laptop: the endpoint and
        settings. Its credentials come from instance metadata, which the EC2 agent serves per
        instance as EC2 would (bisonflow.local.ec2.instance_metadata)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "GBIF_API_URL": gbif_url,
            "TASK_HEARTBEAT_INTERVAL": str(self.settings.heartbeat_interval),
            # The Spot notice watch reads the agent's local IMDS: every second costs nothing
            # (AWS recommends 5 s, the runner's default).
            "TASK_SPOT_CHECK_SECONDS": "1",
        }

    # --- helpers for the CLI and tests ---------------------------------------------
    @property
    def endpoint_url(self) -> str:
        assert self.emulator is not None
        return self.emulator.endpoint_url

    @property
    def clients(self) -> dict[str, Any]:
        assert self.emulator is not None
        return self.emulator.clients

    @property
    def agent(self) -> Ec2Agent:
        assert self._agent is not None
        return self._agent

    def publish_snapshot(self, month: str) -> None:
        """Put the sample snapshot where GBIF would publish `month`'s."""
        assert self.sample and self.deployment
        upload_snapshot(
            self.clients["s3"], self.deployment.gbif_bucket, self.sample.snapshot_dir, month
        )

    def start_execution(
        self, month: str | None = None, name: str | None = None, **extra: Any
    ) -> str:
        payload: dict[str, Any] = dict(extra)
        if month is not None:
            payload["month"] = month
        kwargs = {"name": name} if name else {}
        assert self.deployment
        return self.clients["stepfunctions"].start_execution(
            stateMachineArn=self.deployment.state_machine_arn, input=json.dumps(payload), **kwargs
        )["executionArn"]

    def fire_schedule(self, scheduled_time: dt.datetime) -> Fired:
        """Fire the deployed monthly schedule once, as EventBridge Scheduler would at
        `scheduled_time` (bisonflow.local.scheduler)."""
        assert self.deployment
        operator = boto3.Session(region_name=REGION, **CREDENTIALS)
        name = self.deployment.outputs["ScheduleName"]
        return fire(operator, self.endpoint_url, name, scheduled_time)


class _Phases:
    """How long each step of the start took, for the line that ends it: where a slow start
    goes is then on every run's console (docs/running.md, "First run and warm run")."""

    def __init__(self) -> None:
        self._started = self._last = time.perf_counter()
        self._took: list[tuple[str, float]] = []

    def end(self, phase: str) -> None:
        now = time.perf_counter()
        self._took.append((phase, now - self._last))
        self._last = now

    def __str__(self) -> str:
        parts = ", ".join(f"{phase} {seconds:.1f} s" for phase, seconds in self._took)
        return f"{self._last - self._started:.1f} s ({parts})"


def current_month() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m")
