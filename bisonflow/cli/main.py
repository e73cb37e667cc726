"""`bisonflow`: deploy the BISON workflow to AWS and start it, run it locally, serve the local
emulator for the AWS CLI, and look at executions (on AWS or the emulator): list them, show
one's history, watch one live. The options are in bisonflow.cli.parser."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

from bisonflow.cli.endpoint import endpoint_of, loopback_defaults
from bisonflow.cli.errors import (
    debugging,
    ended,
    raise_if_stopped,
    stop_on_signals,
    wait_for_stop,
)
from bisonflow.cli.parser import EXIT_SKIPPED, build_parser
from bisonflow.layout import MonthLayout
from bisonflow.local import EMULATOR_KEYS, EMULATOR_REGION, PortInUse

if TYPE_CHECKING:
    from bisonflow.local.runtime import LocalSettings

__all__ = ["IAM_OFF_WARNING", "build_parser", "main"]

#: Seconds between `run`'s looks at its execution: a state's line, and the end, show up to
#: this late. A look costs the emulator's CPU, which the execution needs on two cores: four a
#: second read the whole history each (a megabyte by the demo's end, 13.6 s of emulator CPU
#: per demo) until executions.events_after read only the newest page of 25 events.
FOLLOW_SECONDS = 0.5
#: The warning `--no-iam-enforcement` prints: what the run no longer proves.
IAM_OFF_WARNING = (
    "bisonflow: WARNING: IAM enforcement is off (--no-iam-enforcement): every call is allowed "
    "whatever the callers' roles grant, so a missing or mis-scoped grant that AWS would refuse "
    "passes here. For debugging only."
)


def main(argv: list[str] | None = None) -> int:
    from bisonflow.cli.redrive import redrive
    from bisonflow.deploy.commands import run_deploy, run_destroy, run_schedule, run_start

    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {
        "local": lambda a: fire_schedule(a) if a.local_command == "fire-schedule" else local_up(a),
        "run": run,
        "executions": executions,
        "history": show_history,
        "watch": watch,
        "redrive": lambda a: redrive(a, _log),
        "deploy": lambda a: run_deploy(a, _log),
        "destroy": lambda a: run_destroy(a, _log),
        "start": lambda a: run_start(a, _log),
        "schedule": lambda a: run_schedule(a, _log),
    }

    def command() -> int:
        check_arguments(args)
        with loopback_defaults(args), stop_on_signals():
            return commands[args.command](args)

    return ended(
        command,
        lambda exc: _user_error(args, exc),
        debugging(args.debug),
        lambda line: print(line, file=sys.stderr, flush=True),
    )


def check_arguments(args: argparse.Namespace) -> None:
    """Every path and combination argparse cannot check, before any work (issue 12)."""
    from bisonflow.cli.checks import (
        UsageError,
        check_endpoint_url,
        existing_directory,
        writable_directory,
        writable_file,
    )

    if getattr(args, "endpoint_url", None):
        check_endpoint_url(args.endpoint_url)
    if args.command == "run":
        writable_directory(args.out, "--out")
    if args.command == "history":
        if args.html is not None:
            writable_file(args.html, "--html")
        if args.logs is not None:
            if args.html is None:
                raise UsageError("--logs links log files from the report: give --html FILE too")
            existing_directory(args.logs, "--logs")
    if args.command == "start" and args.input is not None and (args.month or args.force):
        raise UsageError(
            "--input is the whole workflow input: put month and force in it instead of "
            "also giving --month/--force"
        )


def _user_error(args: argparse.Namespace, exc: BaseException) -> str | None:
    """The one line for an error the user caused; None for a defect, which keeps its traceback."""
    from botocore.exceptions import BotoCoreError, ClientError

    from bisonflow.cli.checks import UsageError
    from bisonflow.deploy import DeployError
    from bisonflow.deploy.emulated.resources import EmulationError
    from bisonflow.deploy.schedule import ScheduleExpressionError
    from bisonflow.history.executions import ExecutionNotFound
    from bisonflow.local.scheduler import ScheduleFireError
    from bisonflow.schemas import SchemaViolation

    named = (
        UsageError,
        PortInUse,
        ExecutionNotFound,
        DeployError,
        EmulationError,
        SchemaViolation,
        ScheduleExpressionError,
        ScheduleFireError,
    )
    if isinstance(exc, named):
        return str(exc)
    from botocore.parsers import ResponseParserError

    if _runs_the_emulator(args):
        return None  # inside the emulator's own run an endpoint error is a defect: in full
    if isinstance(exc, ResponseParserError) or (
        isinstance(exc, ClientError) and _is_error_page(exc.response["Error"].get("Message"))
    ):
        return (
            f"{endpoint_of(args) or 'the endpoint'} failed inside (it answered an HTML error "
            "page, not AWS's error format); --debug shows the traceback, and the emulator's "
            "console its own"
        )
    if isinstance(exc, ClientError):  # a refusal: wrong name, region, credentials
        return exc.response["Error"].get("Message") or str(exc)
    if isinstance(exc, BotoCoreError):
        hint = _hint(args, exc)
        return f"{str(exc).rstrip('.')}{hint}" if hint else str(exc)
    return None


def _is_error_page(message: str | None) -> bool:
    """A web server's own error page (werkzeug's 500 under moto) where AWS sends its errors."""
    text = (message or "").lstrip().lower()
    return text.startswith(("<!doctype html", "<html"))


def _hint(args: argparse.Namespace, exc: BaseException) -> str:
    """How to fix what boto3 reports without saying how."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, NoRegionError

    from bisonflow.cli.endpoint import is_loopback

    endpoint = endpoint_of(args)
    if isinstance(exc, EndpointConnectionError) and is_loopback(endpoint):
        return "; is `bisonflow local up` running on that port?"
    if isinstance(exc, NoCredentialsError):
        return (
            "; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for the "
            "account, or pass --endpoint-url http://127.0.0.1:PORT for `bisonflow local up`"
        )
    if isinstance(exc, NoRegionError):
        return "; pass --region or set AWS_REGION"
    return ""


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


def try_commands(endpoint: str, state_machine_arn: str, month: str) -> list[tuple[str, str]]:
    """The commands `local up` prints, each working as pasted into a shell with nothing set,
    with what each does (or "").

    The AWS CLI has no notion of an emulator: it needs keys and a region, so its lines carry
    the emulator's (any keys work). bisonflow's own commands default both for a loopback
    endpoint (bisonflow.cli.endpoint).
    """
    keys = " ".join(f"{name}={value}" for name, value in EMULATOR_KEYS.items())
    aws = f"{keys} aws --endpoint-url {endpoint} --region {EMULATOR_REGION}"
    return [
        (f"{aws} stepfunctions list-state-machines", ""),
        (
            f"{aws} stepfunctions start-execution --state-machine-arn {state_machine_arn} "
            "--input '{}'",
            "",
        ),
        (f"bisonflow start --endpoint-url {endpoint} --month {month}", ""),
        (f"bisonflow executions --endpoint-url {endpoint}", ""),
        (f"bisonflow schedule --endpoint-url {endpoint}", "the monthly schedule's next times"),
        (f"bisonflow local fire-schedule --endpoint-url {endpoint}", "as the schedule would"),
        (f"bisonflow deploy --endpoint-url {endpoint}", "as on AWS: no changes for this tree"),
    ]


def local_up(args: argparse.Namespace) -> int:
    from bisonflow.local.runtime import LocalRuntime, current_month

    month = args.month or current_month()
    with LocalRuntime(_settings(args), progress=_log) as rt:
        rt.publish_snapshot(month)
        assert rt.deployment
        lines = try_commands(rt.endpoint_url, rt.deployment.state_machine_arn, month)
        _log(
            f"\nBISON workflow deployed; GBIF snapshot for {month} published.\n"
            f"  endpoint:      {rt.endpoint_url}\n"
            f"  region:        {EMULATOR_REGION}\n"
            f"  stack:         {rt.deployment.stack_name} (definitions/bisonflow.cfn.yaml)\n"
            f"  state machine: {rt.deployment.state_machine_arn}\n"
            f"  bucket:        s3://{rt.deployment.bucket}\n\n"
            "Try (any credentials work; these commands need nothing set in the shell):\n"
            + "\n".join(f"  {line}{f'   ({note})' if note else ''}" for line, note in lines)
            + "\n\nCtrl-C (or SIGTERM) stops it."
        )
        try:
            wait_for_stop()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bisonflow.cli.errors.Stopped)
            _log("stopping")
    return 0


def run(args: argparse.Namespace) -> int:
    from bisonflow.history.execution_view import build_view
    from bisonflow.history.executions import (
        definition_of,
        download_prefixes,
        follow,
        history,
        poll,
        save_record,
    )
    from bisonflow.history.report import write_report
    from bisonflow.history.terminal import live_poll, log_links, make_console
    from bisonflow.local.emulator import REGION
    from bisonflow.local.runtime import LocalRuntime, current_month
    from bisonflow.steps.publish import published_keys

    month = args.month or current_month()
    layout = MonthLayout.for_month(month)
    started = time.monotonic()
    with LocalRuntime(_settings(args), progress=_log) as rt:
        rt.publish_snapshot(month)
        raise_if_stopped()  # a signal during the start whose Stopped was lost: stop now
        sfn, s3 = rt.clients["stepfunctions"], rt.clients["s3"]
        arn = rt.start_execution(month)
        _log(f"started {arn}")
        console = make_console()
        if console.is_terminal:
            live_poll(console, lambda update: poll(sfn, arn, update, FOLLOW_SECONDS))
            description = sfn.describe_execution(executionArn=arn)
        else:  # CI, pipes: plain progress lines
            description = follow(sfn, arn, _log, FOLLOW_SECONDS)
        events = history(sfn, arn)  # read once: the record and the report both need it
        run_dir = save_record(sfn, arn, args.out, description, events)
        assert rt.deployment
        files = download_prefixes(  # the month as its marker publishes it (bisonflow.steps.publish)
            s3,
            rt.deployment.bucket,
            published_keys(s3, rt.deployment.bucket, layout),
            run_dir / "outputs",
        )
        # The runtime's workdir may be removed on stop: keep the logs beside the record.
        logs = run_dir / "logs"
        if (rt.workdir / "logs").is_dir():
            shutil.copytree(rt.workdir / "logs", logs, dirs_exist_ok=True)
        view = build_view(description, definition_of(sfn, arn), events)
        write_report(view, run_dir / "report.html", log_links=log_links(view, REGION, logs))
    status = description["status"]
    _log(
        f"\n{status} in {time.monotonic() - started:.1f}s: {run_dir}/ "
        f"(execution.json, history.json, report.html, {len(files)} output files under "
        "outputs/, logs/)"
    )
    return outcome(description, args.require_processed)


def skipped_reason(description: dict[str, Any]) -> str | None:
    """Why a SUCCEEDED execution did not process its month (CheckGbif's `reason`, which the
    NoSnapshotYet / AlreadyProcessed states pass on as the output, or the month lock's, which
    MonthAlreadyRunning passes on naming the running execution); None if it processed it."""
    if description.get("status") != "SUCCEEDED":
        return None
    try:
        output = json.loads(description.get("output") or "{}")
    except ValueError:
        return None
    if not isinstance(output, dict):
        return None
    if (
        output.get("snapshot_exists") is False
        or output.get("already_processed") is True
        or output.get("already_running") is True
    ):
        return str(output.get("reason") or "the month was not processed")
    return None


def outcome(description: dict[str, Any], require_processed: bool) -> int:
    """The exit code of `run` / `watch`: 0 on SUCCEEDED, 1 otherwise; a skipped month is said
    on the console and exits EXIT_SKIPPED only when --require-processed asks for it."""
    reason = skipped_reason(description)
    if reason:
        _log(f"month not processed: {reason}")
        return EXIT_SKIPPED if require_processed else 0
    return 0 if description["status"] == "SUCCEEDED" else 1


def fire_schedule(args: argparse.Namespace) -> int:
    import boto3

    from bisonflow.deploy import Target, stack_outputs
    from bisonflow.local.emulator import CREDENTIALS, REGION
    from bisonflow.local.scheduler import fire, scheduled_time_text
    from bisonflow.steps.scheduled_start import scheduled_execution_arn

    endpoint = args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or "http://127.0.0.1:5000"
    when = args.scheduled_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
    target = Target(region=REGION, endpoint_url=endpoint, credentials=dict(CREDENTIALS))
    outputs = stack_outputs(target, args.stack_name)
    # The schedule's StartMonth names the month's run (bisonflow.steps.scheduled_start) and answers
    # Scheduler nothing (an asynchronous invocation): where the run is follows from the time.
    scheduled = scheduled_execution_arn(outputs["StateMachineAliasArn"], scheduled_time_text(when))
    sfn = target.client("stepfunctions")
    try:
        existed = bool(sfn.describe_execution(executionArn=scheduled))
    except sfn.exceptions.ExecutionDoesNotExist:
        existed = False
    operator = boto3.Session(region_name=REGION, **CREDENTIALS)
    fired = fire(operator, endpoint, outputs["ScheduleName"], when)
    _log(
        f"fired {fired.schedule_arn} as {fired.role_arn}\n"
        f"  target: {fired.target_arn}\n  input:  {fired.input}"
    )
    arn = fired.execution_arn or scheduled
    if fired.execution_arn is None and existed:
        _log(f"{arn} exists already: this firing started nothing")
    else:
        _log(f"started {arn}")
    _log(f"follow it with: bisonflow watch --endpoint-url {endpoint} {arn}")
    return 0


def executions(args: argparse.Namespace) -> int:
    from bisonflow.history.executions import find_state_machine, list_executions, sfn_client
    from bisonflow.history.terminal import executions_table, make_console

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
    from bisonflow.history.cost import format_estimate
    from bisonflow.history.cost_inputs import execution_cost
    from bisonflow.history.executions import history, load_view, resolve_execution, sfn_client
    from bisonflow.history.terminal import execution_view, log_links, make_console

    sfn = sfn_client(args.endpoint_url, args.region)
    arn = resolve_execution(sfn, args.execution)
    if args.json:
        print(json.dumps({"events": history(sfn, arn)}, indent=2, default=str), flush=True)
    view = load_view(sfn, arn) if (args.html or not args.json) else None
    # The estimate reads the Lambda REPORT lines and statement durations at the same
    # endpoint, falling back to the history's timing where they are gone.
    cost = execution_cost(sfn, arn, args.endpoint_url) if view is not None else None
    if not args.json:
        make_console().print(execution_view(view))
        print("\n".join(format_estimate(cost)), flush=True)
    if args.html:
        from bisonflow.history.report import write_report

        links = log_links(view, sfn.meta.region_name, args.logs)
        write_report(view, args.html, log_links=links, cost=cost)
        if not args.json:
            _log(f"wrote {args.html}")
    return 0


def watch(args: argparse.Namespace) -> int:
    from bisonflow.history.executions import follow, load_view, poll, resolve_execution, sfn_client
    from bisonflow.history.terminal import execution_view, live_poll, make_console

    sfn = sfn_client(args.endpoint_url, args.region)
    arn = resolve_execution(sfn, args.execution)
    console = make_console()
    if console.is_terminal:
        live_poll(console, lambda update: poll(sfn, arn, update, interval=0.5))
        description = sfn.describe_execution(executionArn=arn)
    else:  # a pipe or a log file: a line per step as it happens, then the table
        description = follow(sfn, arn, _log, interval=0.5)
        console.print(execution_view(load_view(sfn, arn)))
    return outcome(description, args.require_processed)


if __name__ == "__main__":
    sys.exit(main())
