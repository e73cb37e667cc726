"""Fire a deployed schedule as EventBridge Scheduler does, on the emulator.

moto keeps schedules but never fires them. This module does what Scheduler does when a
schedule's time comes (EventBridge Scheduler User Guide):

1. It reads the schedule through the Scheduler API (GetSchedule), as deployed.
2. It takes a session of the schedule's execution role (Target.RoleArn) through STS
   AssumeRole, as Scheduler does before it calls the target ("Set up the execution role"):
   every target call is signed by that session, so the IAM seam authorizes it against the
   role's own policies. (Scheduler does not document its session names; the local one is
   named after the invocation's execution id.)
3. It fills in the context attributes in the target's Input ("Adding context attributes"):
   `<aws.scheduler.schedule-arn>`, `<aws.scheduler.scheduled-time>` (e.g.
   2022-03-22T18:59:43Z), `<aws.scheduler.execution-id>` (a unique id per attempted
   invocation, e.g. d32c5kddcf5bb8c3) and `<aws.scheduler.attempt-number>` (1 for the first).
4. It calls the target ("Using templated targets", "Using universal targets"): a state
   machine (or its alias or version) ARN is the templated target Step Functions StartExecution,
   with the Input as the execution input; a Lambda function (or its alias or version) ARN is
   the templated target Lambda Invoke, with the Input as the event, invoked asynchronously
   (InvocationType Event) as Scheduler invokes Lambda (Lambda Developer Guide, "Invoke a
   Lambda function on a schedule": "EventBridge Scheduler invokes your Lambda function
   asynchronously"); `arn:aws:scheduler:::aws-sdk:<service>:<apiAction>` is a universal
   target, the Input being the API call's request parameters as JSON.

One attempt is made: the RetryPolicy and DeadLetterConfig are not emulated, so a failed call
raises ScheduleFireError naming the schedule, the role and the error instead of being retried
and dead-lettered. moto runs an asynchronous invocation before answering it (AWS queues the
event and answers 202 at once, retries a failing function, then sends the invocation record
to the function's on-failure destination): so here the function has run when fire() returns,
and a function error has its record sent as Lambda sends it, once, after the one attempt
(bisonflow.local.lambdas.destinations), and is raised as ScheduleFireError too, saying where
the record went. Where the schedule fires on AWS is set by its expression (bisonflow.deploy.schedule
computes it); firing here uses the scheduled time the caller gives (default: now).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bisonflow.local.credentials import assumed_role_credentials
from bisonflow.local.lambdas.destinations import FailedInvocation, deliver_failure
from bisonflow.steps.scheduled_start import scheduled_execution_arn

#: Universal targets: arn:<partition>:scheduler:::aws-sdk:<service>:<apiAction>.
UNIVERSAL_TARGET = re.compile(
    r"^arn:[\w-]+:scheduler:::aws-sdk:(?P<service>[\w-]+):(?P<action>\w+)$"
)
#: Templated Step Functions target: a state machine, or its alias or version.
STATE_MACHINE_TARGET = re.compile(r"^arn:[\w-]+:states:[\w-]+:\d{12}:stateMachine:")
#: Templated Lambda target: a function, or its alias or version.
LAMBDA_TARGET = re.compile(r"^arn:[\w-]+:lambda:[\w-]+:\d{12}:function:[\w-]+(:[\w$-]+)?$")
#: Universal-target service names (the SDK's service identifiers) whose boto3 client is named
#: otherwise.
SDK_CLIENT_NAMES = {"sfn": "stepfunctions"}


class ScheduleFireError(RuntimeError):
    """The schedule could not be fired: what and why, in one line. A RuntimeError, so the
    console (which does not import the local runtime) shows it as a failed "fire now"."""


@dataclass(frozen=True)
class Fired:
    """One invocation of a schedule's target, as Scheduler made it."""

    schedule_arn: str
    execution_id: str
    scheduled_time: str
    role_arn: str
    target_arn: str
    input: str | None
    response: dict[str, Any]

    @property
    def execution_arn(self) -> str | None:
        """The execution a Step Functions target started."""
        return self.response.get("executionArn")

    def run_arn(self, state_machine_arn: str) -> str:
        """The execution this firing started, or the one it names: the stack's schedule
        invokes StartMonth, which names the month's run after the scheduled time
        (bisonflow.steps.scheduled_start) and answers Scheduler nothing (an asynchronous
        invocation), so where the run is follows from the time."""
        return self.execution_arn or scheduled_execution_arn(state_machine_arn, self.scheduled_time)


def scheduled_time_text(when: datetime) -> str:
    """`<aws.scheduler.scheduled-time>`'s form: UTC to the second, with a Z."""
    if when.tzinfo is None:
        raise ScheduleFireError(f"scheduled time {when.isoformat()} needs a time zone")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_context(text: str, context: dict[str, str]) -> str:
    """`text` with every `<aws.scheduler.NAME>` replaced by context[NAME]."""
    for name, value in context.items():
        text = text.replace(f"<aws.scheduler.{name}>", value)
    return text


def fire(
    operator: boto3.Session,
    endpoint_url: str | None,
    schedule_name: str,
    scheduled_time: datetime,
    group_name: str = "default",
) -> Fired:
    """Fire `schedule_name` once as Scheduler would at `scheduled_time`.

    `operator` is whoever stands in for the Scheduler service: it may read the schedule and
    assume its role (on the emulator, the operator's key)."""
    scheduler = operator.client("scheduler", endpoint_url=endpoint_url)
    try:
        schedule = scheduler.get_schedule(Name=schedule_name, GroupName=group_name)
    except ClientError as exc:
        raise ScheduleFireError(f"schedule {schedule_name}: {_message(exc)}") from None
    target = schedule["Target"]
    execution_id = uuid.uuid4().hex[:16]
    context = {
        "schedule-arn": schedule["Arn"],
        "scheduled-time": scheduled_time_text(scheduled_time),
        "execution-id": execution_id,
        "attempt-number": "1",
    }
    payload = with_context(target["Input"], context) if "Input" in target else None
    credentials = assumed_role_credentials(
        operator.client("sts", endpoint_url=endpoint_url), target["RoleArn"], execution_id
    )
    as_role = boto3.Session(region_name=operator.region_name, **credentials)
    service, method, request = target_call(target["Arn"], payload)
    client = as_role.client(service, endpoint_url=endpoint_url)
    try:
        response = getattr(client, method)(**request)
    except ClientError as exc:
        raise ScheduleFireError(
            f"schedule {schedule_name} as {target['RoleArn']}: {method} on {target['Arn']} "
            f"failed: {_message(exc)}"
        ) from None
    metadata = response.pop("ResponseMetadata", {})
    if "FunctionError" in response:  # moto ran the asynchronous invocation in the request
        error = response["Payload"].read().decode(errors="replace")
        failed = FailedInvocation(
            target["Arn"], payload, response["FunctionError"], error, metadata.get("RequestId", "")
        )
        delivery = deliver_failure(operator, endpoint_url, failed)
        raise ScheduleFireError(
            f"schedule {schedule_name}: {target['Arn']} failed: {error} (on AWS Lambda retries "
            f"an asynchronous invocation first); {delivery.describe()}"
        )
    response.pop("Payload", None)  # AWS answers an asynchronous invocation with no payload
    return Fired(
        schedule_arn=schedule["Arn"],
        execution_id=execution_id,
        scheduled_time=context["scheduled-time"],
        role_arn=target["RoleArn"],
        target_arn=target["Arn"],
        input=payload,
        response=response,
    )


def target_call(arn: str, payload: str | None) -> tuple[str, str, dict[str, Any]]:
    """(boto3 service, method, request) of the API call the target stands for."""
    if STATE_MACHINE_TARGET.match(arn):
        return (
            "stepfunctions",
            "start_execution",
            {
                "stateMachineArn": arn,
                **({"input": payload} if payload is not None else {}),
            },
        )
    if LAMBDA_TARGET.match(arn):
        return (
            "lambda",
            "invoke",
            {
                "FunctionName": arn,
                "InvocationType": "Event",
                **({"Payload": payload.encode()} if payload is not None else {}),
            },
        )
    universal = UNIVERSAL_TARGET.match(arn)
    if universal:
        try:
            request = json.loads(payload) if payload else {}
        except json.JSONDecodeError as exc:
            raise ScheduleFireError(
                f"universal target {arn}: Input is not the JSON of the request ({exc})"
            ) from None
        service = universal["service"]
        method = re.sub(r"(?<!^)(?=[A-Z])", "_", universal["action"]).lower()
        return SDK_CLIENT_NAMES.get(service, service), method, request
    raise ScheduleFireError(
        f"target {arn}: only the Step Functions and Lambda templated targets and universal targets "
        "(arn:aws:scheduler:::aws-sdk:<service>:<apiAction>) are emulated"
    )


def _message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"
