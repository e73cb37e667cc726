"""`bisonflow`: deploy the BISON workflow to AWS and start it, run it locally, serve the local
emulator for the AWS CLI, and look at executions (on AWS or the emulator): list them, show
one's history, watch one live."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bisonflow.layout import MonthError, MonthLayout
from bisonflow.local import PortInUse

if TYPE_CHECKING:
    from bisonflow.local.runtime import LocalSettings


def _month(value: str) -> str:
    try:
        return MonthLayout.for_month(value).month
    except MonthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _subset_list(check: Callable[[tuple[str, ...]], None]) -> Callable[[str], str]:
    """An argparse type: a comma-separated list of GBIF terms, checked as the Lambda checks it."""
    from bisonflow.subset_rules import SubsetRuleError, terms

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
    from bisonflow import cfn_template
    from bisonflow.deploy.commands import option_name
    from bisonflow.subset_rules import check_basis_of_record, check_taxon_ranks

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


#: The warning `--no-iam-enforcement` prints: what the run no longer proves.
IAM_OFF_WARNING = (
    "bisonflow: WARNING: IAM enforcement is off (--no-iam-enforcement): every call is allowed "
    "whatever the callers' roles grant, so a missing or mis-scoped grant that AWS would refuse "
    "passes here. For debugging only."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bisonflow", description=__doc__)
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
    up.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
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
    run.add_argument("--port", type=int, default=0, help="emulator port (default: any free)")
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
    _add_deploy_commands(commands)
    return parser


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
    start.add_argument("--name", default=None, help="execution name (default: a UUID)")
    schedule = commands.add_parser(
        "schedule", help="the schedule expression, its time zone and its next fire times"
    )
    add_target_options(schedule, stack_name=None)
    schedule.add_argument("--count", type=_positive, default=5, help="fire times (default 5)")


#: ListExecutions' statusFilter values.
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE")


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from bisonflow.deploy import DeployError
    from bisonflow.deploy.commands import run_deploy, run_destroy, run_schedule, run_start
    from bisonflow.deploy.emulated import EmulationError
    from bisonflow.executions import ExecutionNotFound
    from bisonflow.local.scheduler import ScheduleFireError
    from bisonflow.schedule import ScheduleExpressionError
    from bisonflow.schemas import SchemaViolation

    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "local": lambda a: fire_schedule(a) if a.local_command == "fire-schedule" else local_up(a),
        "run": run,
        "executions": executions,
        "history": show_history,
        "watch": watch,
        "deploy": lambda a: run_deploy(a, _log),
        "destroy": lambda a: run_destroy(a, _log),
        "start": lambda a: run_start(a, _log),
        "schedule": lambda a: run_schedule(a, _log),
    }
    try:
        return commands[args.command](args)
    except (
        PortInUse,
        ExecutionNotFound,
        DeployError,
        EmulationError,
        SchemaViolation,
        ScheduleExpressionError,
        ScheduleFireError,
    ) as exc:
        parser.exit(2, f"bisonflow: {exc}\n")
    except ClientError as exc:
        if _runs_the_emulator(args):
            raise
        parser.exit(2, f"bisonflow: {exc.response['Error'].get('Message') or exc}\n")
    except BotoCoreError as exc:
        if _runs_the_emulator(args):
            raise
        parser.exit(2, f"bisonflow: {exc}\n")


def _log(message: str) -> None:
    print(message, flush=True)


def _runs_the_emulator(args: argparse.Namespace) -> bool:
    """An error inside the emulator's own run is a defect to show in full; a call to an
    endpoint that fails is the user's one line."""
    return args.command == "run" or getattr(args, "local_command", None) == "up"


def _settings(args: argparse.Namespace) -> LocalSettings:
    """The local runtime's settings from `run` / `local up`, warning when IAM is not enforced."""
    from bisonflow.local.runtime import LocalSettings

    if not args.iam_enforcement:
        print(IAM_OFF_WARNING, file=sys.stderr, flush=True)
    given = {
        name: value
        for name in ("PamMinPresenceCount", "SubsetTaxonRanks", "SubsetBasisOfRecord")
        if (value := getattr(args, name)) is not None
    }
    return LocalSettings(
        port=args.port,
        records=args.records,
        iam_enforcement=args.iam_enforcement,
        stack_parameters=given,
    )


def local_up(args: argparse.Namespace) -> int:
    from bisonflow.local.runtime import LocalRuntime, current_month

    month = args.month or current_month()
    with LocalRuntime(_settings(args), progress=_log) as rt:
        rt.publish_snapshot(month)
        assert rt.deployment
        _log(
            f"\nBISON workflow deployed; GBIF snapshot for {month} published.\n"
            f"  endpoint:      {rt.endpoint_url}\n"
            f"  stack:         {rt.deployment.stack_name} (definitions/bisonflow.cfn.yaml)\n"
            f"  state machine: {rt.deployment.state_machine_arn}\n"
            f"  bucket:        s3://{rt.deployment.bucket}\n\n"
            "Try (any credentials work):\n"
            f"  aws --endpoint-url {rt.endpoint_url} --region us-east-1 "
            "stepfunctions list-state-machines\n"
            f"  aws --endpoint-url {rt.endpoint_url} --region us-east-1 "
            f"stepfunctions start-execution --state-machine-arn {rt.deployment.state_machine_arn}"
            " --input '{}'\n"
            f"  bisonflow start --endpoint-url {rt.endpoint_url} --month {month}\n"
            f"  bisonflow local fire-schedule --endpoint-url {rt.endpoint_url}   (as the "
            "monthly schedule would)\n"
            f"  bisonflow deploy --endpoint-url {rt.endpoint_url}   (redeploy the current tree)\n"
            "\nCtrl-C stops it."
        )
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            _log("stopping")
    return 0


def run(args: argparse.Namespace) -> int:
    from bisonflow.executions import download_prefixes, follow, load_view, poll, save_record
    from bisonflow.local.emulator import REGION
    from bisonflow.local.runtime import LocalRuntime, current_month
    from bisonflow.report import write_report
    from bisonflow.terminal import live_poll, log_links, make_console

    month = args.month or current_month()
    layout = MonthLayout.for_month(month)
    started = time.monotonic()
    with LocalRuntime(_settings(args), progress=_log) as rt:
        rt.publish_snapshot(month)
        sfn, s3 = rt.clients["stepfunctions"], rt.clients["s3"]
        arn = rt.start_execution(month)
        _log(f"started {arn}")
        console = make_console()
        if console.is_terminal:
            live_poll(console, lambda update: poll(sfn, arn, update))
            description = sfn.describe_execution(executionArn=arn)
        else:  # CI, pipes: plain progress lines
            description = follow(sfn, arn, _log)
        run_dir = save_record(sfn, arn, args.out, description)
        assert rt.deployment
        files = download_prefixes(
            s3,
            rt.deployment.bucket,
            [layout.riis_annotated_key, layout.riis_report_key, layout.summary_prefix],
            run_dir / "outputs",
        )
        # The runtime's workdir may be removed on stop: keep the logs beside the record.
        logs = run_dir / "logs"
        if (rt.workdir / "logs").is_dir():
            shutil.copytree(rt.workdir / "logs", logs, dirs_exist_ok=True)
        view = load_view(sfn, arn)
        write_report(view, run_dir / "report.html", log_links=log_links(view, REGION, logs))
    status = description["status"]
    _log(
        f"\n{status} in {time.monotonic() - started:.1f}s: {run_dir}/ "
        f"(execution.json, history.json, report.html, {len(files)} output files under "
        "outputs/, logs/)"
    )
    return 0 if status == "SUCCEEDED" else 1


def fire_schedule(args: argparse.Namespace) -> int:
    import boto3

    from bisonflow.deploy import Target, stack_outputs
    from bisonflow.local.emulator import CREDENTIALS, REGION
    from bisonflow.local.scheduler import fire

    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:5000"
    when = args.scheduled_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
    target = Target(region=REGION, endpoint_url=endpoint, credentials=dict(CREDENTIALS))
    name = stack_outputs(target, args.stack_name)["ScheduleName"]
    operator = boto3.Session(region_name=REGION, **CREDENTIALS)
    fired = fire(operator, endpoint, name, when)
    _log(
        f"fired {fired.schedule_arn} as {fired.role_arn}\n"
        f"  target: {fired.target_arn}\n  input:  {fired.input}"
    )
    if fired.execution_arn:
        _log(
            f"started {fired.execution_arn}\n"
            f"follow it with: bisonflow watch --endpoint-url {endpoint} {fired.execution_arn}"
        )
    return 0


def executions(args: argparse.Namespace) -> int:
    from bisonflow.executions import find_state_machine, list_executions, sfn_client
    from bisonflow.terminal import executions_table, make_console

    sfn = sfn_client(args.endpoint_url, args.region)
    machine = args.state_machine or find_state_machine(sfn)
    found = list_executions(sfn, machine, args.status, args.limit)
    console = make_console()
    if not found:
        status = f" with status {args.status}" if args.status else ""
        console.print(f"no executions{status} of {machine}")
        return 0
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]
    console.print(executions_table(described, machine))
    return 0


def show_history(args: argparse.Namespace) -> int:
    from bisonflow.executions import history, load_view, resolve_execution, sfn_client
    from bisonflow.terminal import execution_view, log_links, make_console

    sfn = sfn_client(args.endpoint_url, args.region)
    arn = resolve_execution(sfn, args.execution)
    if args.json:
        print(json.dumps({"events": history(sfn, arn)}, indent=2, default=str), flush=True)
    view = load_view(sfn, arn) if (args.html or not args.json) else None
    if not args.json:
        make_console().print(execution_view(view))
    if args.html:
        from bisonflow.report import write_report

        links = log_links(view, sfn.meta.region_name, args.logs)
        write_report(view, args.html, log_links=links)
        if not args.json:
            _log(f"wrote {args.html}")
    return 0


def watch(args: argparse.Namespace) -> int:
    from bisonflow.executions import poll, resolve_execution, sfn_client
    from bisonflow.terminal import live_poll, make_console

    sfn = sfn_client(args.endpoint_url, args.region)
    arn = resolve_execution(sfn, args.execution)
    view = live_poll(make_console(), lambda update: poll(sfn, arn, update, interval=0.5))
    return 0 if view.status == "SUCCEEDED" else 1


if __name__ == "__main__":
    sys.exit(main())
