"""Emulator seam: the ASL interpreter calls other services as the state machine's role.

On AWS, Step Functions makes every service integration call (lambda:invoke, its
.waitForTaskToken form, states:startExecution, ...) with temporary credentials of the role
the state machine names (its RoleArn), or of the role a state's `Credentials` field names;
IAM then authorizes each call against that role's policies. moto 5.2.5's interpreter
(`moto/stepfunctions/parser/asl/utils/boto_client.py: boto_client_for`) signs every such
call with the fixed key "ak"/"sk", so the IAM seam (bisonflow.local.iam) would see the
account admin and a state machine role without `lambda:InvokeFunction` on its Lambda would
work locally and fail on AWS.

Fix 1: `boto_client_for` signs with a session of the role in the `StateCredentials` the
interpreter already passes to it at every call site (the execution's RoleArn, from
`env.aws_execution_details.role_arn`, unless the state names its own `Credentials`). Sessions
come from the emulator's STS (bisonflow.local.credentials.role_credentials) and are kept per
role until half their lifetime has passed, as a service keeps and refreshes the credentials
it assumed; a session whose key the STS backend no longer knows (moto reset) is replaced.
The session name is 32 random letters, the form AWS uses for Step Functions' sessions (an
AccessDenied example in awslabs/aws-deployment-framework issue 460 names the caller
`assumed-role/<state machine role>/GGzJDbzYyvarbIioekwoULLKpGuSfJRc`).
Not modelled: for a state's `Credentials`, AWS first assumes that role *as* the execution
role (which then needs sts:AssumeRole on it); locally the call is simply signed as that role.

Fix 2: a failed Lambda call reaches the history named as Step Functions names it. Step
Functions reports a Lambda API error as `Lambda.<exception>`, where the exception is the
SDK's class for that error code; an error code the Lambda API does not model for Invoke
(AccessDeniedException is not among Invoke's errors) surfaces as the SDK's generic
`AWSLambdaException`. The same example (aws-deployment-framework issue 460) shows a state
machine role without lambda:InvokeFunction failing the task with
`"error": "Lambda.AWSLambdaException"` and the cause "User: arn:aws:sts::…:assumed-role/…
is not authorized to perform: lambda:InvokeFunction on resource: … (Service: AWSLambda;
Status Code: 403; Error Code: AccessDeniedException; Request ID: …; Proxy: null)". moto
builds the same cause but names the error `Lambda.AccessDeniedException`. The developer
guide's "Handle Lambda service exceptions" lists `Lambda.AWSLambdaException` among the errors
a Lambda task reports. The failure is an ordinary task failure: Retry and Catch apply.
"""

from __future__ import annotations

import functools
import random
import string
import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import (
    StateCredentials,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (  # noqa: E501
    StateTaskServiceLambda,
)
from moto.stepfunctions.parser.asl.utils import boto_client
from moto.sts.models import sts_backends

from bisonflow.aws import error_code
from bisonflow.local import credentials
from bisonflow.local.seams import Patch, Seam
from bisonflow.local.sfn.asl_fixes import INTERPRETER

#: Renew a kept session once this much of its lifetime has passed.
RENEW_AFTER_SECONDS = credentials.SESSION_SECONDS / 2
#: Letters of an AWS-made Step Functions role session name, and how many.
SESSION_NAME_ALPHABET = string.ascii_letters
SESSION_NAME_LENGTH = 32
#: The SDK's generic Lambda exception, which names errors Invoke does not model.
GENERIC_LAMBDA_EXCEPTION = "AWSLambdaException"


@dataclass(frozen=True)
class _Session:
    credentials: dict[str, str]
    made_at: float


#: moto's signer ("ak"/"sk"), which install() replaces wherever the interpreter holds it.
moto_boto_client_for = boto_client.boto_client_for
_sessions: dict[str, _Session] = {}
_sessions_lock = threading.Lock()
_boto_session = boto3.session.Session()
_clients_lock = threading.Lock()
_clients: dict[tuple[str, str, str | None, str], BaseClient] = {}


def _still_known(session: _Session) -> bool:
    """Whether the emulator's STS still holds the session (a moto reset forgets it)."""
    key = session.credentials["aws_access_key_id"]
    backend = sts_backends[credentials.ACCOUNT_ID]["aws"]
    return backend.get_assumed_role_from_access_key(key) is not None


def role_session(role_arn: str) -> dict[str, str]:
    """Credentials of a live session of `role_arn`, made once and renewed at half-life."""
    with _sessions_lock:
        session = _sessions.get(role_arn)
        if (
            session is None
            or time.monotonic() - session.made_at > RENEW_AFTER_SECONDS
            or not _still_known(session)
        ):
            name = "".join(random.choices(SESSION_NAME_ALPHABET, k=SESSION_NAME_LENGTH))
            session = _Session(credentials.role_credentials(role_arn, name), time.monotonic())
            _sessions[role_arn] = session
        return session.credentials


def boto_client_for(
    region: str, service: str, state_credentials: StateCredentials | None = None
) -> BaseClient:
    """A client for the interpreter's call to `service`, signed as the state's role.

    Same endpoint, retry and timeout behaviour as moto's own (one attempt: Retry fields
    are the state machine's business), different signer.
    """
    if state_credentials is None or not state_credentials.role_arn:
        # Every call site in moto 5.2.5 passes the role; a new one that does not must not
        # quietly run as the account admin.
        raise RuntimeError(f"the ASL interpreter called {service} without a role to call it as")
    endpoint = (
        {}
        if botocore_stubber.enabled
        else {"endpoint_url": f"http://localhost:{moto_server_port()}"}
    )
    credentials_of_role = role_session(state_credentials.role_arn)
    # One session, one client at a time: making clients from a shared boto3 session in several
    # threads at once is not safe, and a Parallel's branches call services concurrently. A
    # made client is kept for the same role session (a client is safe to share between
    # threads): making one is tens of milliseconds, at every Task state.
    key = (service, region, endpoint.get("endpoint_url"), credentials_of_role["aws_access_key_id"])
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _boto_session.client(
                service,
                region_name=region,
                config=Config(
                    parameter_validation=False,
                    retries={"max_attempts": 0, "total_max_attempts": 1},
                    connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                    read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                ),
                **endpoint,
                **credentials_of_role,
            )
        return _clients[key]


@functools.cache
def invoke_error_codes() -> frozenset[str]:
    """The error codes Lambda's API models for Invoke (the SDK has a class for each)."""
    model = botocore.session.get_session().get_service_model("lambda")
    return frozenset(shape.name for shape in model.operation_model("Invoke").error_shapes)


_moto_lambda_error_cause = StateTaskServiceLambda._error_cause_from_client_error


def lambda_error_cause(client_error: Any) -> tuple[str, str]:
    """(error, cause) of a failed Lambda API call, with the error named as Step Functions does."""
    error, cause = _moto_lambda_error_cause(client_error)
    if error_code(client_error) not in invoke_error_codes():
        error = f"Lambda.{GENERIC_LAMBDA_EXCEPTION}"
    return error, cause


#: What this module replaces; the emulator installs it (bisonflow.local.seams). Every
#: interpreter module that imported moto's signer by name gets this one.
SEAM = Seam(
    __name__,
    Patch(
        boto_client.__name__,
        "boto_client_for",
        ("region", "service", "state_credentials"),
        replacement=boto_client_for,
        copies_under=INTERPRETER,
    ),
    Patch(
        StateTaskServiceLambda.__module__,
        "StateTaskServiceLambda._error_cause_from_client_error",
        ("client_error",),
        replacement=staticmethod(lambda_error_cause),
    ),
)
