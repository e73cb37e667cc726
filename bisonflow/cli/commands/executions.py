"""`bisonflow executions | history | watch`: look at executions of the BISON workflow, on AWS or
at an emulator's --endpoint-url: list them, show what each state of one did, follow one live.

An execution is given by ARN, or by name: an execution of --stack-name's state machine, or
without it of the account's machine named bison-workflow (bisonflow.cli.options).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bisonflow.cli import checks
from bisonflow.cli.options import add_target_options, state_machine_arn, target
from bisonflow.cli.outcome import REQUIRE_PROCESSED_HELP, outcome
from bisonflow.cli.output import say
from bisonflow.deploy.target import Target

if TYPE_CHECKING:
    from bisonflow.history.cost import CostEstimate

#: ListExecutions' statusFilter values.
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
#: Seconds between `watch`'s looks at its execution.
WATCH_SECONDS = 0.5
#: --stack-name on the commands that look at executions.
STACK_HELP = (
    "the stack whose state machine to look at (default: none, the state machine named "
    "bison-workflow)"
)
#: The positional argument naming one execution.
EXECUTION_HELP = "execution ARN, or name of an execution of the BISON state machine"


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """The target options and the execution argument of a command about one execution."""
    add_target_options(parser, stack_name=None, stack_help=STACK_HELP)
    parser.add_argument("execution", help=EXECUTION_HELP)


def execution_arn(args: argparse.Namespace, reached: Target) -> str:
    """args.execution as an ARN: as given, or the named execution of the state machine."""
    from bisonflow.history.executions import resolve_execution

    if args.execution.startswith("arn:"):
        return args.execution
    machine = state_machine_arn(args, reached)
    return resolve_execution(reached.client("stepfunctions"), args.execution, machine)


def register(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("executions", help="recent executions of the BISON state machine")
    add_target_options(listing, stack_name=None, stack_help=STACK_HELP)
    listing.add_argument("--status", choices=EXECUTION_STATUSES, default=None)
    listing.add_argument(
        "--state-machine", default=None, help="state machine ARN (default: bison-workflow's)"
    )
    listing.add_argument("--limit", type=checks.positive, default=20, help="at most N (default 20)")
    listing.set_defaults(handler=executions)

    shown = commands.add_parser("history", help="what each state of one execution did")
    add_execution_options(shown)
    shown.add_argument(
        "--json",
        action="store_true",
        help='print {"events": [...]} as GetExecutionHistory gave them',
    )
    shown.add_argument("--html", type=Path, default=None, metavar="FILE", help="write a report")
    shown.add_argument(
        "--logs",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --html: a local runtime's <workdir>/logs, to link log files instead of "
        "the CloudWatch console",
    )
    shown.set_defaults(handler=show_history)

    watched = commands.add_parser("watch", help="a live view of one execution until it ends")
    add_execution_options(watched)
    watched.add_argument("--require-processed", action="store_true", help=REQUIRE_PROCESSED_HELP)
    watched.set_defaults(handler=watch)


def executions(args: argparse.Namespace) -> int:
    from bisonflow.history.executions import find_state_machine, list_executions
    from bisonflow.history.terminal import executions_table, make_console

    reached = target(args)
    sfn = reached.client("stepfunctions")
    machine = args.state_machine or state_machine_arn(args, reached) or find_state_machine(sfn)
    found = list_executions(sfn, machine, args.status, args.limit)
    console = make_console()
    if not found:
        status = f" with status {args.status}" if args.status else ""
        console.print(f"no executions{status} of {machine}")
        return 0
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]
    console.print(executions_table(described, machine))
    return 0


def _check_history_paths(args: argparse.Namespace) -> None:
    """--html must be writable and --logs an existing directory, before any call."""
    if args.html is not None:
        checks.writable_file(args.html, "--html")
    if args.logs is not None:
        if args.html is None:
            raise checks.UsageError("--logs links log files from the report: give --html FILE too")
        checks.existing_directory(args.logs, "--logs")


def show_history(args: argparse.Namespace) -> int:
    from bisonflow.history.cost import format_estimate
    from bisonflow.history.executions import history, load_view
    from bisonflow.history.terminal import execution_view, log_links, make_console

    _check_history_paths(args)
    reached = target(args)
    sfn = reached.client("stepfunctions")
    arn = execution_arn(args, reached)
    if args.json:
        print(json.dumps({"events": history(sfn, arn)}, indent=2, default=str), flush=True)
        if not args.html:
            return 0  # the events alone: no view, no estimate
    view = load_view(sfn, arn)
    cost = _cost(reached, arn)
    if not args.json:
        make_console().print(execution_view(view))
        print("\n".join(format_estimate(cost)), flush=True)
    if args.html:
        from bisonflow.history.report import write_report

        links = log_links(view, sfn.meta.region_name, args.logs)
        write_report(view, args.html, log_links=links, cost=cost)
        if not args.json:
            say(f"wrote {args.html}")
    return 0


def _cost(reached: Target, arn: str) -> CostEstimate:
    """The execution's cost estimate: the Lambda REPORT lines and the statements' durations
    are read at the same target (on the emulator, its logs and Data API), falling back to
    the history's timing where they are gone."""
    from bisonflow.history.cost_inputs import estimate_execution
    from bisonflow.history.executions import history

    sfn = reached.client("stepfunctions")
    return estimate_execution(
        sfn.describe_execution(executionArn=arn),
        history(sfn, arn),
        logs=reached.client("logs"),
        data=reached.client("redshift-data"),
    )


def watch(args: argparse.Namespace) -> int:
    from bisonflow.history.executions import follow, load_view, poll
    from bisonflow.history.terminal import execution_view, live_poll, make_console

    reached = target(args)
    sfn = reached.client("stepfunctions")
    arn = execution_arn(args, reached)
    console = make_console()
    if console.is_terminal:
        live_poll(console, lambda update: poll(sfn, arn, update, interval=WATCH_SECONDS))
        description = sfn.describe_execution(executionArn=arn)
    else:  # a pipe or a log file: a line per step as it happens, then the table
        description = follow(sfn, arn, say, interval=WATCH_SECONDS)
        console.print(execution_view(load_view(sfn, arn)))
    return outcome(description, args.require_processed)
