"""boto3 clients for every step, and which of their errors are transient.

boto3 itself honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), so the same code
talks to AWS or to the local emulator without knowing which.

Each client retries throttling and transient errors itself (botocore's "standard" retry
mode, 5 attempts, a few seconds in all). A storm longer than that used to fail the month:
Step Functions retries only the `Lambda.*` errors of the Lambda service, not an error the
function raises. `transient()` says which errors are worth more time, so the Lambda edge
re-raises them as AwsTransientError, which every Lambda step retries with backoff.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)
from botocore.retries.standard import ThrottledRetryableChecker, TransientRetryableChecker

#: S3 requests carry UNSIGNED-PAYLOAD instead of the body's SHA-256 ("Unsigned payload option",
#: S3 API Reference, "Signature Calculations for the Authorization Header: Transferring Payload
#: in a Single Chunk"); botocore still sends its CRC32 checksum of each body, which S3 checks.
#: On HTTPS botocore already does so; over the local stand-in's plain HTTP it hashed every
#: body a second time (calc_stats' 6 GB national outputs: about 4.7 CPU-s of SHA-256).
_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"}, s3={"payload_signing_enabled": False}
)


def region() -> str:
    """The region every client uses: AWS_REGION as Lambda sets it, else AWS_DEFAULT_REGION."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def client(service: str) -> Any:
    """A cached client; Lambda execution environments reuse it across invocations."""
    return boto3.client(service, region_name=region(), config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests change endpoints between cases)."""
    client.cache_clear()


#: Error codes botocore's standard retry mode treats as throttling or transient (one source:
#: botocore.retries.standard); the Data API's "The number of active statements exceeds the
#: limit" (Redshift Data API reference, ExecuteStatement, Errors), which passes as others end;
#: and EC2's InsufficientInstanceCapacity, for which the EC2 API reference (Error codes) says
#: to "wait for additional capacity to become available".
TRANSIENT_CODES = frozenset(
    ThrottledRetryableChecker._THROTTLED_ERROR_CODES
    + TransientRetryableChecker._TRANSIENT_ERROR_CODES
    + ["ActiveStatementsExceededException", "InsufficientInstanceCapacity"]
)
TRANSIENT_STATUS = frozenset(TransientRetryableChecker._TRANSIENT_STATUS_CODES)
TRANSIENT_NETWORK = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


#: S3's answers for an object that is not there: GetObject's NoSuchKey (S3 API Reference,
#: GetObject, Errors), and "404", the status botocore reports as the code of a HeadObject, whose
#: error "returns a generic code, such as ... 404 Not Found" without a body (HeadObject); some
#: endpoints say "NotFound". (A caller without s3:ListBucket gets 403 instead, and fails.)
OBJECT_MISSING = ("NoSuchKey", "404", "NotFound")
#: S3's answers when a conditional write (If-Match, If-None-Match) loses: 412 Precondition
#: Failed, or 409 ConditionalRequestConflict for a concurrent one still in flight (S3 User
#: Guide, "Add preconditions to S3 operations with conditional requests"). The month lock and
#: the month's marker are both written so.
CONDITIONAL_WRITE_LOST = ("PreconditionFailed", "ConditionalRequestConflict")


class AwsTransientError(RuntimeError):
    """An AWS call still throttled or failing transiently after the client's own retries;
    the state machine retries the step (its name is what the ASL's Retry names)."""


def error_code(exc: ClientError) -> str:
    """The error code AWS answered a failed call with ("" when the answer names none), e.g.
    "NoSuchKey": botocore parses it into `response["Error"]["Code"]` for every protocol (the
    AWS SDK for Python guide, "Error handling", "Parsing error responses and catching
    exceptions from AWS services")."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def transient(exc: BaseException) -> bool:
    """Whether `exc` is throttling, a 5xx or a network failure: worth trying again later."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code in TRANSIENT_CODES or status in TRANSIENT_STATUS
    return isinstance(exc, TRANSIENT_NETWORK)


#: The field in which the callback states pass their task token ($$.Task.Token) to
#: launch_task (statemachines/bison_workflow.asl.json). Whoever holds a token can end the
#: state (docs/aws.md, "Where the task token appears").
TASK_TOKEN_FIELD = "task_token"
REDACTED = "<redacted>"


def without_task_tokens(value: Any) -> Any:
    """`value` (JSON-like) with every task token field's value replaced, at any depth: a log
    line, report.html or the console shows that the token was passed, never the token."""
    if isinstance(value, dict):
        return {
            k: REDACTED if k == TASK_TOKEN_FIELD else without_task_tokens(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_task_tokens(v) for v in value]
    return value
