"""Emulator seam: Lambda's on-failure destination for a failed asynchronous invocation.

moto 5.2.5 stores a function's asynchronous invocation configuration
(PutFunctionEventInvokeConfig) but never uses it: it runs an `Event` invocation in the request,
once, and answers the function's error. On AWS, Lambda retries a failed asynchronous
invocation (MaximumRetryAttempts, at most 2) and then, instead of discarding the event, sends
an invocation record to the configuration's OnFailure destination (Lambda Developer Guide,
"Asynchronous invocation", "Configuring destinations for asynchronous invocation"):

- the record is JSON with `version`, `timestamp`, `requestContext` (`requestId`,
  `functionArn` as invoked, `condition`, `approximateInvokeCount`), `requestPayload` (the
  event), `responseContext` (`statusCode`, `executedVersion`, `functionError`) and
  `responsePayload` (the function's error);
- for an SNS topic it is the published `Message`;
- Lambda sends it with the function's execution role ("To send events to a destination, your
  function needs additional permissions. Add a policy with the required permissions to your
  function's execution role": sns:Publish for SNS), and a delivery the role may not make is
  lost, counted in the DestinationDeliveryFailures metric ("Capturing records of Lambda
  asynchronous invocations").

This module does that for an invocation that has already failed: it reads the configuration of
the function's version or alias as deployed, takes a session of the function's execution role
through the endpoint's STS (so the IAM seam evaluates the role's own policies, as AWS would)
and publishes the record. Its differences from AWS: the invocation was attempted once, not
retried (`approximateInvokeCount` is 1), and only SNS topics are emulated destinations (the
one kind this project configures); another kind is reported as not delivered.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bisonflow.local.credentials import assumed_role_credentials

#: The record's format version (the Developer Guide's example record).
RECORD_VERSION = "1.0"


@dataclass(frozen=True)
class FailedInvocation:
    """An asynchronous invocation whose function raised."""

    function_arn: str  # as invoked: the function, or its version or alias
    request_payload: str | None  # the event
    function_error: str  # Lambda's FunctionError: "Unhandled" or "Handled"
    response_payload: str  # the function's error, as the runtime reported it
    request_id: str = ""


@dataclass(frozen=True)
class Delivery:
    """Where the invocation record went, or why it went nowhere."""

    destination: str | None
    delivered: bool
    problem: str = ""

    def describe(self) -> str:
        """One line for the operator."""
        if self.destination is None:
            return "it has no on-failure destination, so Lambda would discard the event"
        if self.delivered:
            return f"its invocation record went to its on-failure destination {self.destination}"
        return (
            f"its invocation record could not be sent to {self.destination} ({self.problem}); "
            "Lambda would count a DestinationDeliveryFailure and discard the event"
        )


def _json_or_text(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def invocation_record(
    failed: FailedInvocation, executed_version: str, now: datetime | None = None
) -> dict[str, Any]:
    """The record Lambda sends for `failed` after its one local attempt."""
    when = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": RECORD_VERSION,
        "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "requestContext": {
            "requestId": failed.request_id or str(uuid.uuid4()),
            "functionArn": failed.function_arn,
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 1,
        },
        "requestPayload": _json_or_text(failed.request_payload),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": executed_version,
            "functionError": failed.function_error,
        },
        "responsePayload": _json_or_text(failed.response_payload),
    }


def _function_and_qualifier(arn: str) -> tuple[str, str | None]:
    parts = arn.split(":")
    return (":".join(parts[:7]), parts[7]) if len(parts) == 8 else (arn, None)


def deliver_failure(
    operator: boto3.Session, endpoint_url: str | None, failed: FailedInvocation
) -> Delivery:
    """Send `failed`'s invocation record to its OnFailure destination, as Lambda would.

    `operator` stands in for the Lambda service: it reads the function's configuration and
    assumes its execution role (on the emulator, the operator's key)."""
    awslambda = operator.client("lambda", endpoint_url=endpoint_url)
    function, qualifier = _function_and_qualifier(failed.function_arn)
    where = {"FunctionName": function, **({"Qualifier": qualifier} if qualifier else {})}
    try:
        config = awslambda.get_function_event_invoke_config(**where)
    except awslambda.exceptions.ResourceNotFoundException:
        return Delivery(None, False)
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if not destination:
        return Delivery(None, False)
    if destination.split(":")[2] != "sns":
        return Delivery(destination, False, "the emulator delivers only to SNS topics")
    try:
        function_config = awslambda.get_function_configuration(**where)
        credentials = assumed_role_credentials(
            operator.client("sts", endpoint_url=endpoint_url),
            function_config["Role"],
            function_config["FunctionName"],
        )
        sns = boto3.Session(region_name=operator.region_name, **credentials).client(
            "sns", endpoint_url=endpoint_url
        )
        record = invocation_record(failed, function_config["Version"])
        sns.publish(TopicArn=destination, Message=json.dumps(record))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return Delivery(destination, False, f"{error.get('Code')}: {error.get('Message')}")
    return Delivery(destination, True)
