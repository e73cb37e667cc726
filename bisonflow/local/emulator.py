"""moto's server on 127.0.0.1 with the emulator seams installed, and clients for it.

Kept apart from the deployment so seam tests can run small state machines of their own.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from bisonflow.deploy.target import TARGET_PROFILE_PARAMETER, TargetProfile
from bisonflow.local import (
    EMULATOR_KEYS,
    EMULATOR_REGION,
    PortInUse,
    api_models,  # first: asl_fixes imports moto's EC2 models, which read botocore data
    moto_routing,
    s3_conditional,
)
from bisonflow.local.ec2 import capacity as ec2_capacity
from bisonflow.local.iam import seam as iam_seam
from bisonflow.local.lambdas import worker as lambda_worker
from bisonflow.local.redshift import service as redshift_duckdb
from bisonflow.local.seams import Seam
from bisonflow.local.sfn import asl_fixes
from bisonflow.local.sfn import callback_retry as sfn_callback_retry
from bisonflow.local.sfn import events as sfn_events
from bisonflow.local.sfn import heartbeat as sfn_heartbeat
from bisonflow.local.sfn import history_pages as sfn_history_pages
from bisonflow.local.sfn import limits as sfn_limits
from bisonflow.local.sfn import redrive as sfn_redrive
from bisonflow.local.sfn import role_credentials as sfn_credentials
from bisonflow.local.sfn import start as sfn_start
from bisonflow.local.sfn import stop as sfn_stop
from bisonflow.local.sfn import validation as sfn_validation
from bisonflow.local.sfn import versions as sfn_versions

REGION = EMULATOR_REGION
#: The seams every start installs into moto, each declared in its module with the one
#: mechanism of bisonflow.local.seams (which checks its targets first and refuses, naming
#: them, if moto moved one). The Lambda worker's seam comes with its pool and IAM's is counted
#: and starts its evaluator, so their modules install them; api_models' is installed at import.
SEAMS: tuple[Seam, ...] = (
    asl_fixes.SEAM,  # the interpreter's States.* errors, SendTaskFailure's cause, JSONPath
    sfn_credentials.SEAM,  # the interpreter calls services as the state machine's role
    sfn_limits.SEAM,  # the 256 KiB payload quota, as AWS applies it
    sfn_heartbeat.SEAM,  # a heartbeat timeout matches States.HeartbeatTimeout
    sfn_stop.SEAM,  # a stopped execution ends ABORTED, also inside a Parallel
    sfn_redrive.SEAM,  # RedriveExecution
    sfn_events.SEAM,  # an execution's end reaches the EventBridge rules matching it
    sfn_start.SEAM,  # StartExecution: names refused as AWS does, alias ARNs, a UUID if unnamed
    redshift_duckdb.SEAM,  # the Data API runs SQL on DuckDB
    s3_conditional.SEAM,  # the month lock's conditional writes are atomic, as on AWS
    ec2_capacity.SEAM,  # RunInstances can be refused for capacity, as on AWS
    sfn_callback_retry.SEAM,  # a retried callback task gets its own token
    moto_routing.SEAM,  # speed only: moto's module list, listed once
    sfn_validation.SEAM,  # speed only: a definition that passed is not parsed again
    sfn_history_pages.SEAM,  # GetExecutionHistory in pages of maxResults, as on AWS
    sfn_versions.SEAM,  # ListStateMachineVersions, which moto lacks
)
#: Every seam of the local runtime (tests/test_seams.py checks each).
EVERY_SEAM: tuple[Seam, ...] = (api_models.SEAM, *SEAMS, lambda_worker.SEAM, iam_seam.SEAM)
CREDENTIALS = {name.lower(): value for name, value in EMULATOR_KEYS.items()}
SERVICES = (
    "s3",
    "iam",
    "lambda",
    "ec2",
    "stepfunctions",
    "ssm",
    "logs",
    "redshift-data",
    "cloudformation",
    "scheduler",
    "sns",
    "sqs",
    "events",
    "sts",
)

#: Resource types moto's CloudFormation accepts but does not create as the template asks.
PARTIAL_CFN_TYPES = {
    # moto 5.2.5 reads only DefinitionString: no DefinitionS3Location, DefinitionSubstitutions,
    # LoggingConfiguration or TracingConfiguration.
    "AWS::StepFunctions::StateMachine",
    # moto 5.2.5 drops LayerName (it names the layer after the logical id) and
    # CompatibleArchitectures, and its Ref is the model's repr instead of the version's ARN.
    "AWS::Lambda::LayerVersion",
    # moto 5.2.5 drops Layers and Architectures (a function would run without its layer).
    "AWS::Lambda::Function",
    # Follows the function: the stack comes before the emulated functions, so a version in it
    # could not snapshot them (and moto drops its Description).
    "AWS::Lambda::Version",
    # Follows the function too: moto adds it during the stack, before the alias it names exists.
    "AWS::Lambda::Permission",
}
#: Properties moto 5.2.5's CloudFormation ignores on types it does create (bisonflow.deploy
#: applies them through the service APIs after the stack).
COMPLETED_PROPERTIES = {"AWS::IAM::Role": ["ManagedPolicyArns"]}
#: Resource types the emulator must not have at all, and why.
SKIPPED_TYPES = {
    "AWS::S3::BucketPolicy": "the emulator serves plain HTTP on loopback and moto enforces "
    "aws:SecureTransport, so the TLS-only policy would deny every request",
}


def target_profile(template_types: set[str]) -> TargetProfile:
    """What this emulator's CloudFormation cannot create of `template_types`, read from moto.

    Types moto's CloudFormation has no model for, plus the partially supported ones, are
    created through the service APIs; the Lambda layer is built for this interpreter, which
    runs the Lambdas (lambda_worker).
    """
    from moto.cloudformation.parsing import get_model_map

    missing = {t for t in template_types if t not in get_model_map()} | (
        PARTIAL_CFN_TYPES & template_types
    )
    return TargetProfile(
        emulated_types=tuple(sorted(missing - set(SKIPPED_TYPES))),
        skipped_types={t: r for t, r in SKIPPED_TYPES.items() if t in template_types},
        lambda_layer="interpreter",
        completed_properties={
            t: props for t, props in COMPLETED_PROPERTIES.items() if t in template_types
        },
    )


def _check_port_free(port: int) -> None:
    """Fail fast: moto's server thread dies silently on a taken port and start() waits forever.

    The probe binds as the server will: with SO_REUSEADDR, which werkzeug's server sets
    (http.server.HTTPServer.allow_reuse_address). Without it, the connections of a server
    that just stopped, left in TIME-WAIT for 2 MSL (RFC 9293, 3.6; 60 s on Linux), made the
    probe refuse a port the server itself could bind again at once; with it, only a socket
    listening on the port still refuses it (socket(7), SO_REUSEADDR).
    """
    if port == 0:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortInUse(
                f"port {port} on 127.0.0.1 is already in use ({exc.strerror}); "
                "choose another with --port"
            ) from None


class OperatorClients(dict):
    """The operator's client for each of SERVICES, made at first use: a client costs 20-150 ms
    of CPU (EC2's model has 600 operations), and a run uses half of them."""

    def __init__(self, endpoint_url: str) -> None:
        super().__init__()
        self._endpoint_url = endpoint_url
        self._session = boto3.Session(region_name=REGION, **CREDENTIALS)
        self._lock = threading.Lock()

    def __missing__(self, service: str) -> Any:
        if service not in SERVICES:
            raise KeyError(service)
        with self._lock:  # a boto3 Session is not safe to make clients from in two threads
            if service not in self:
                self[service] = self._session.client(service, endpoint_url=self._endpoint_url)
            return dict.__getitem__(self, service)


@dataclass
class Emulator:
    workdir: Path
    port: int = 0
    endpoint_url: str = ""
    clients: dict[str, Any] = field(default_factory=dict)
    pool: lambda_worker.WorkerPool | None = None
    #: Authorize every request made as a role against its policies as AWS does
    #: (bisonflow.local.iam); off only for debugging.
    iam_enforcement: bool = True
    _server: ThreadedMotoServer | None = None
    _iam_installed: bool = False

    def start(self) -> Emulator:
        # Per-request access lines and the interpreter's tracebacks for every caught error
        # drown the workflow's own progress; the execution history records the same facts.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
        _check_port_free(self.port)
        # Run state machines for real (moto only records them by default).
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # The ASL interpreter calls Lambda, SSM, ... at localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        for seam in SEAMS:
            seam.install()
        self.pool = lambda_worker.install(self.workdir, self.endpoint_url, REGION)
        if self.iam_enforcement and not self._iam_installed:
            iam_seam.install()
            self._iam_installed = True
        self.clients = OperatorClients(self.endpoint_url)
        return self

    @property
    def region(self) -> str:
        return REGION

    def publish_target_profile(self, template_types: set[str]) -> TargetProfile:
        """Declare, in the emulator's SSM, what its CloudFormation lacks (bisonflow.deploy)."""
        profile = target_profile(template_types)
        self.clients["ssm"].put_parameter(
            Name=TARGET_PROFILE_PARAMETER, Value=profile.to_json(), Type="String", Overwrite=True
        )
        return profile

    def stop(self) -> None:
        if self.pool:
            self.pool.shutdown()
        if self._server:
            self._server.stop()
            self._server = None
        redshift_duckdb.shutdown()
        if self._iam_installed:
            iam_seam.uninstall()
            self._iam_installed = False
