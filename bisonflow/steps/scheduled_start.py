"""The monthly schedule's start: one execution per month, under a name the month decides.

EventBridge Scheduler retries a target call that fails (the schedule's RetryPolicy), and
Lambda may deliver one asynchronous event more than once ("Invoking a Lambda function
asynchronously": a function can receive the same event several times even without an
error). If every attempt started an execution under a random name, a retried firing could
start the month twice. Scheduler cannot name the execution itself: a Step Functions
execution name may not contain `:` (API Reference, StartExecution, `name`), so the
`<aws.scheduler.scheduled-time>` it substitutes verbatim cannot be one, and
`<aws.scheduler.execution-id>` is unique "for each attempted invocation" (Scheduler User
Guide, "Adding context attributes"), so a retry would get a new name.

So the schedule invokes the StartMonth Lambda (functions/start_month.py), which derives the
month from the scheduled time exactly as CheckGbif does (bisonflow.layout.month_of_timestamp)
and starts the `live` alias under `scheduled-<YYYY-MM>` with the schedule's input. Step
Functions does the rest (API Reference, StartExecution): "if you call StartExecution with the
same name and input as a running execution, the call succeeds and return the same response as
the original request. If the execution is closed or if the input is different, it returns a
400 ExecutionAlreadyExists error." Either way no second execution runs; ExecutionAlreadyExists
is this month's scheduled run having been started already, not a failure, so a retry is
harmless. A name can be reused 90 days after its execution closed, long after its month.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.layout import execution_name_problem, month_of_timestamp

SCHEDULED_PREFIX = "scheduled-"


def scheduled_execution_name(month: str) -> str:
    """The one execution name of `month`'s scheduled run (YYYY-MM has no forbidden character)."""
    name = f"{SCHEDULED_PREFIX}{month}"
    problem = execution_name_problem(name)
    if problem:
        raise ValueError(f"execution name {name!r} {problem}")
    return name


def execution_arn(state_machine_arn: str, name: str) -> str:
    """The ARN of execution `name` of a state machine given by its ARN, alias or version ARN.

    An execution belongs to the state machine, whatever ARN started it
    (arn:<partition>:states:<region>:<account>:execution:<machine>:<name>; Step Functions
    Developer Guide, "How Step Functions associates executions with a version or alias": the
    alias is recorded beside the execution, as DescribeExecution's stateMachineAliasArn).
    """
    parts = state_machine_arn.split(":")
    if len(parts) not in (7, 8) or parts[2] != "states" or parts[5] != "stateMachine":
        raise ValueError(f"{state_machine_arn!r} is not a state machine, alias or version ARN")
    return ":".join([*parts[:5], "execution", parts[6], name])


def scheduled_execution_arn(state_machine_arn: str, scheduled_time: str) -> str:
    """Where the scheduled run of `scheduled_time`'s month is, once StartMonth started it."""
    name = scheduled_execution_name(month_of_timestamp(scheduled_time))
    return execution_arn(state_machine_arn, name)


@dataclass(frozen=True)
class ScheduledStart:
    """What one StartMonth invocation did."""

    month: str
    execution: str  # the month's scheduled execution (ARN)
    started: bool  # False: ExecutionAlreadyExists, this call started nothing
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def start_scheduled_month(sfn: Any, alias_arn: str, scheduled_time: str) -> ScheduledStart:
    """StartExecution of `alias_arn` for the month of `scheduled_time`, once per month."""
    month = month_of_timestamp(scheduled_time)
    name = scheduled_execution_name(month)
    arn = execution_arn(alias_arn, name)
    try:
        started = sfn.start_execution(
            stateMachineArn=alias_arn,
            name=name,
            input=json.dumps({"scheduled_time": scheduled_time}),
        )
    except ClientError as exc:
        if error_code(exc) != "ExecutionAlreadyExists":
            raise
        return ScheduledStart(
            month,
            arn,
            False,
            f"{month}'s scheduled execution {name} exists already (ended, or started for "
            "another scheduled time of the month): this retry or second firing started nothing",
        )
    return ScheduledStart(
        month,
        started["executionArn"],
        True,
        f"{month}'s scheduled execution is {name} (a retry while it runs gets it back, "
        "and starts nothing)",
    )
