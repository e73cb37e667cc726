"""`bisonflow`'s command line: its commands, options and the argparse types that check them.

Kept apart from bisonflow.cli.main (what each command does) so each file has one concern. Bad
arguments end in one line (_Parser.error), and every command takes --debug.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from bisonflow.cli import checks as cli_checks
from bisonflow.layout import MonthError, MonthLayout

DESCRIPTION = (
    "Deploy the BISON workflow to AWS and start it, run it locally, serve the local emulator "
    "for the AWS CLI, and look at executions (on AWS or the emulator): list them, show one's "
    "history, watch one live."
)


def _month(value: str) -> str:
    try:
        return MonthLayout.for_month(value).month
    except MonthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0  # said below, as argparse would only say "invalid _positive value"
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _subset_list(check: Callable[[tuple[str, ...]], None]) -> Callable[[str], str]:
    """An argparse type: a comma-separated list of GBIF terms, checked as the Lambda checks it."""
    from bisonflow.sql.subset_rules import SubsetRuleError, terms

    def parse(value: str) -> str:
        values = terms(value)
        try:
            check(values)
        except SubsetRuleError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return ",".join(values)

    return parse


def _add_science_options(parser: argparse.ArgumentParser) -> None:
    """The science settings a local run may change; left out, the template's defaults
    (BISON's) are deployed, as `bisonflow deploy` would (same option names)."""
    from bisonflow.deploy import cfn_template
    from bisonflow.deploy.commands import option_name
    from bisonflow.sql.subset_rules import check_basis_of_record, check_taxon_ranks

    group = parser.add_argument_group(
        "science settings", "template parameters; left out, the template's defaults (BISON's)"
    )
    for name, parse, metavar, what in (
        ("PamMinPresenceCount", lambda v: str(_positive(v)), "N", "occurrences for a presence"),
        ("SubsetTaxonRanks", _subset_list(check_taxon_ranks), "A,B", "GBIF taxonRank values"),
        ("SubsetBasisOfRecord", _subset_list(check_basis_of_record), "A,B", "GBIF basisOfRecord"),
    ):
        group.add_argument(
            option_name(name),
            dest=name,
            type=parse,
            default=None,
            metavar=metavar,
            help=f"{what} (default: {cfn_template.parameter_default(name)})",
        )


def _aware_time(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} needs a time zone, e.g. {value}Z for UTC"
        ) from None
    return when


class _Parser(argparse.ArgumentParser):
    """argparse that ends a bad argument in one line (and the way to more help), not the
    whole usage block above it."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """--debug on every command (before or after its name) shows tracebacks."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="show the traceback behind an error (or set BISONFLOW_DEBUG=1)",
                )
                _add_debug_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bisonflow", description=DESCRIPTION)
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback behind an error (or set BISONFLOW_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    enforcement = argparse.ArgumentParser(add_help=False)
    enforcement.add_argument(
        "--no-iam-enforcement",
        dest="iam_enforcement",
        action="store_false",
        help="allow every call whatever the callers' roles grant (debugging only; warns)",
    )

    local = commands.add_parser("local", help="the local emulator")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser(
        "up",
        parents=[enforcement],
        help="serve the emulator with the workflow deployed, until Ctrl-C",
    )
    up.add_argument(
        "--port", type=cli_checks.port, default=5000, help="port on 127.0.0.1 (default 5000)"
    )
    up.add_argument("--records", type=_positive, default=250_000, help="sample GBIF records")
    up.add_argument("--month", type=_month, default=None, help="month to publish (default: now)")
    _add_science_options(up)
    fire = local_commands.add_parser(
        "fire-schedule",
        help="fire the deployed schedule on a running emulator now, as EventBridge Scheduler "
        "fires it (its role, its target, its input with the scheduled time)",
    )
    fire.add_argument(
        "--endpoint-url",
        default=None,
        help="the emulator (default: AWS_ENDPOINT_URL, else http://127.0.0.1:5000)",
    )
    fire.add_argument("--stack-name", default="bisonflow", help="the stack (default: bisonflow)")
    fire.add_argument(
        "--scheduled-time",
        type=_aware_time,
        default=None,
        help="the time Scheduler passes as <aws.scheduler.scheduled-time>, RFC 3339 with a "
        "zone (default: now); the run processes its UTC month",
    )

    run = commands.add_parser(
        "run", parents=[enforcement], help="run the whole workflow locally and keep its record"
    )
    run.add_argument("--month", type=_month, default=None, help="YYYY-MM (default: this month)")
    run.add_argument("--records", type=_positive, default=250_000, help="sample GBIF records")
    run.add_argument("--out", type=Path, default=Path("runs"), help="where to write the run")
    run.add_argument(
        "--port", type=cli_checks.port, default=0, help="emulator port (default: any free)"
    )
    run.add_argument("--require-processed", action="store_true", help=REQUIRE_PROCESSED_HELP)
    _add_science_options(run)

    aws = argparse.ArgumentParser(add_help=False)
    aws.add_argument(
        "--endpoint-url",
        default=None,
        help="Step Functions endpoint (default: AWS_ENDPOINT_URL, else AWS)",
    )
    aws.add_argument(
        "--region", default=None, help="default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1"
    )
    listing = commands.add_parser(
        "executions", parents=[aws], help="recent executions of the BISON state machine"
    )
    listing.add_argument("--status", choices=EXECUTION_STATUSES, default=None)
    listing.add_argument(
        "--state-machine", default=None, help="state machine ARN (default: bison-workflow's)"
    )
    listing.add_argument("--limit", type=_positive, default=20, help="at most N (default 20)")

    shown = commands.add_parser(
        "history", parents=[aws], help="what each state of one execution did"
    )
    shown.add_argument("execution", help="execution ARN, or name of a bison-workflow execution")
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

    watched = commands.add_parser(
        "watch", parents=[aws], help="a live view of one execution until it ends"
    )
    watched.add_argument("execution", help="execution ARN, or name of a bison-workflow execution")
    watched.add_argument("--require-processed", action="store_true", help=REQUIRE_PROCESSED_HELP)
    redriven = commands.add_parser(
        "redrive",
        parents=[aws],
        help="continue a failed, stopped or timed-out execution where it stopped",
    )
    redriven.add_argument("execution", help="execution ARN, or name of a bison-workflow execution")
    _add_deploy_commands(commands)
    _add_debug_everywhere(parser)
    return parser


#: What --require-processed means on `run` and `watch`.
REQUIRE_PROCESSED_HELP = (
    "exit 3 when the execution succeeded without processing the month (no GBIF snapshot "
    "yet, or already processed); without it such a run exits 0 and says why"
)
#: The exit code of a run that skipped its month, under --require-processed.
EXIT_SKIPPED = 3


def _add_deploy_commands(commands: argparse._SubParsersAction) -> None:
    from bisonflow.deploy.commands import add_parameter_options, add_target_options

    deploy = commands.add_parser(
        "deploy",
        help="build, upload and create or update the stack (definitions/bisonflow.cfn.yaml)",
    )
    add_target_options(deploy)
    add_parameter_options(deploy)
    destroy = commands.add_parser("destroy", help="delete the stack (the bucket is retained)")
    add_target_options(destroy)
    start = commands.add_parser(
        "start", help="start an execution of the deployed state machine, as the console does"
    )
    add_target_options(start)
    start.add_argument("--month", type=_month, default=None, help="YYYY-MM (default: this month)")
    start.add_argument("--force", action="store_true", help="redo a month already processed")
    start.add_argument(
        "--name",
        type=cli_checks.execution_name,
        default=None,
        help='execution name: 1-80 characters, no white space or < > { } [ ] ? * " # %% \\ ^ '
        "| ~ ` $ & , ; : / (default: a UUID)",
    )
    start.add_argument(
        "--input",
        type=cli_checks.workflow_input,
        default=None,
        metavar="JSON",
        help="the whole workflow input instead of --month/--force, e.g. "
        '\'{"month": "2026-12"}\' (checked against '
        "definitions/check_gbif.input.schema.json)",
    )
    schedule = commands.add_parser(
        "schedule", help="the schedule expression, its time zone and its next fire times"
    )
    add_target_options(schedule, stack_name=None)
    schedule.add_argument("--count", type=_positive, default=5, help="fire times (default 5)")


#: ListExecutions' statusFilter values.
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")
