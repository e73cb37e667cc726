"""`bisonflow redrive EXECUTION`: continue a failed, stopped or timed-out execution where it
stopped (Step Functions RedriveExecution), on AWS or at a local emulator's --endpoint-url.

Before asking, it checks what the API would refuse (DescribeExecution's redriveStatus and its
reason) and one thing the API accepts but cannot help: a run whose error a Catch sent to a Fail
state is redriven *at that Fail state* (bisonflow.steps.redrive), which fails again at once, so the
command says to start a new run instead. The caller needs states:DescribeExecution,
states:GetExecutionHistory, states:DescribeStateMachineForExecution and states:RedriveExecution
on the execution (docs/aws.md, "Redrive").
"""

from __future__ import annotations

import argparse

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.cli.checks import UsageError
from bisonflow.cli.commands.executions import add_execution_options, execution_arn
from bisonflow.cli.options import follow_hint, target
from bisonflow.cli.output import say
from bisonflow.steps.redrive import RedriveRefused, redrive_from

#: RedriveExecution's refusals, each the caller's to act on (API reference, RedriveExecution).
REFUSALS = ("ExecutionNotRedrivable", "ExecutionDoesNotExist", "InvalidArn", "ValidationException")


def register(commands: argparse._SubParsersAction) -> None:
    redriven = commands.add_parser(
        "redrive", help="continue a failed, stopped or timed-out execution where it stopped"
    )
    add_execution_options(redriven)
    redriven.set_defaults(handler=redrive)


def redrive(args: argparse.Namespace) -> int:
    from bisonflow.history.executions import definition_of, history

    reached = target(args)
    sfn = reached.client("stepfunctions")
    arn = execution_arn(args, reached)
    description = sfn.describe_execution(executionArn=arn)
    try:
        state = redrive_from(description, definition_of(sfn, arn), history(sfn, arn))
    except RedriveRefused as refused:
        raise UsageError(str(refused)) from None
    try:
        answer = sfn.redrive_execution(executionArn=arn)
    except ClientError as exc:
        if error_code(exc) in REFUSALS:
            message = exc.response["Error"].get("Message") or str(exc)
            raise UsageError(f"cannot redrive {arn}: {message}") from None
        raise
    count = sfn.describe_execution(executionArn=arn).get("redriveCount")
    when = f"{answer['redriveDate']:%Y-%m-%d %H:%M:%S}"
    say(f"redriven {arn} from {state} at {when} (redrive {count})")
    say(follow_hint(args.endpoint_url, arn))
    return 0
