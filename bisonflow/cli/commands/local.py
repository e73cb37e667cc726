"""`bisonflow run` and `bisonflow local up | fire-schedule`: the workflow on this machine.

`run` starts the local runtime (bisonflow.local.runtime: moto's server, the template deployed
into it, the Lambdas and tasks on this machine), runs one month and keeps the run's record;
`local up` serves the same runtime for the AWS CLI and bisonflow's other commands until
Ctrl-C; `local fire-schedule` fires the deployed schedule on it as EventBridge Scheduler would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from bisonflow.cli import checks
from bisonflow.cli.errors import raise_if_stopped, wait_for_stop
from bisonflow.cli.options import add_target_options, follow_hint, target
from bisonflow.cli.outcome import REQUIRE_PROCESSED_HELP, outcome
from bisonflow.cli.output import say, warn
from bisonflow.deploy import DEFAULT_STACK_NAME
from bisonflow.layout import MonthLayout
from bisonflow.local import EMULATOR_KEYS, EMULATOR_REGION

if TYPE_CHECKING:
    from bisonflow.local.runtime import LocalSettings

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


def register(commands: argparse._SubParsersAction) -> None:
    """`local up`, `local fire-schedule` and `run`; the two that start the runtime share its
    switches (IAM enforcement, records, science settings) and are marked runs_emulator: an
    endpoint error inside them is a defect to show in full (bisonflow.cli.main)."""
    runtime = argparse.ArgumentParser(add_help=False)
    runtime.add_argument(
        "--no-iam-enforcement",
        dest="iam_enforcement",
        action="store_false",
        help="allow every call whatever the callers' roles grant (debugging only; warns)",
    )
    runtime.add_argument(
        "--records", type=checks.positive, default=250_000, help="sample GBIF records"
    )

    local = commands.add_parser("local", help="the local emulator")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser(
        "up", parents=[runtime], help="serve the emulator with the workflow deployed, until Ctrl-C"
    )
    up.add_argument(
        "--port", type=checks.port, default=5000, help="port on 127.0.0.1 (default 5000)"
    )
    up.add_argument(
        "--month", type=checks.month, default=None, help="month to publish (default: now)"
    )
    up.add_argument(
        "--console-port",
        type=checks.port,
        default=0,
        help="the console's port on 127.0.0.1 (default: any free port; its URL is printed)",
    )
    _add_science_options(up)
    up.set_defaults(handler=local_up, runs_emulator=True)

    fire = local_commands.add_parser(
        "fire-schedule",
        help="fire the deployed schedule on a running emulator now, as EventBridge Scheduler "
        "fires it (its role, its target, its input with the scheduled time)",
    )
    add_target_options(
        fire,
        stack_name=DEFAULT_STACK_NAME,
        stack_help=f"the stack (default: {DEFAULT_STACK_NAME})",
        account=False,
        endpoint_help="the emulator (default: AWS_ENDPOINT_URL, else http://127.0.0.1:5000)",
    )
    fire.add_argument(
        "--scheduled-time",
        type=checks.aware_time,
        default=None,
        help="the time Scheduler passes as <aws.scheduler.scheduled-time>, RFC 3339 with a "
        "zone (default: now); the run processes its UTC month",
    )
    fire.set_defaults(handler=fire_schedule)

    run = commands.add_parser(
        "run", parents=[runtime], help="run the whole workflow locally and keep its record"
    )
    run.add_argument(
        "--month", type=checks.month, default=None, help="YYYY-MM (default: this month)"
    )
    run.add_argument("--out", type=Path, default=Path("runs"), help="where to write the run")
    run.add_argument(
        "--port", type=checks.port, default=0, help="emulator port (default: any free)"
    )
    run.add_argument("--require-processed", action="store_true", help=REQUIRE_PROCESSED_HELP)
    _add_science_options(run)
    run.set_defaults(handler=run_month, runs_emulator=True)


def _science_options() -> dict[str, tuple[Callable[[str], str], str, str]]:
    """The template parameters a local run may set: each one's argparse type (checked as the
    Lambda checks it), metavar and what it is."""
    from bisonflow.sql.subset_rules import check_basis_of_record, check_taxon_ranks

    return {
        "PamMinPresenceCount": (
            lambda v: str(checks.positive(v)),
            "N",
            "occurrences for a presence",
        ),
        "SubsetTaxonRanks": (
            checks.subset_list(check_taxon_ranks),
            "A,B",
            "GBIF taxonRank values",
        ),
        "SubsetBasisOfRecord": (
            checks.subset_list(check_basis_of_record),
            "A,B",
            "GBIF basisOfRecord",
        ),
    }


def _add_science_options(parser: argparse.ArgumentParser) -> None:
    """The science settings a local run may change; left out, the template's defaults
    (BISON's) are deployed, as `bisonflow deploy` would (same option names)."""
    from bisonflow.deploy import cfn_template, option_name

    group = parser.add_argument_group(
        "science settings", "template parameters; left out, the template's defaults (BISON's)"
    )
    for name, (parse, metavar, what) in _science_options().items():
        group.add_argument(
            option_name(name),
            dest=name,
            type=parse,
            default=None,
            metavar=metavar,
            help=f"{what} (default: {cfn_template.parameter_default(name)})",
        )


def settings(args: argparse.Namespace) -> LocalSettings:
    """The local runtime's settings from `run` / `local up`, warning when IAM is not enforced."""
    from bisonflow.local.runtime import LocalSettings

    if not args.iam_enforcement:
        warn(IAM_OFF_WARNING)
    given = {
        name: value
        for name in _science_options()
        if (value := getattr(args, name, None)) is not None
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
    from bisonflow.local.console import local_console
    from bisonflow.local.runtime import LocalRuntime, current_month

    month = args.month or current_month()
    with LocalRuntime(settings(args), progress=say) as rt, ExitStack() as serving:
        rt.publish_snapshot(month)
        assert rt.deployment
        console = serving.enter_context(local_console(rt, args.console_port))
        lines = try_commands(rt.endpoint_url, rt.deployment.state_machine_arn, month)
        # Serving starts with the banner: a signal while it is printed stops a runtime that is
        # up, as one during the wait does ("stopping", exit 0), not one that is starting.
        try:
            say(
                f"\nBISON workflow deployed; GBIF snapshot for {month} published.\n"
                f"  console:       {console.url}   (open it in a browser)\n"
                f"  endpoint:      {rt.endpoint_url}\n"
                f"  region:        {EMULATOR_REGION}\n"
                f"  stack:         {rt.deployment.stack_name} (definitions/bisonflow.cfn.yaml)\n"
                f"  state machine: {rt.deployment.state_machine_arn}\n"
                f"  bucket:        s3://{rt.deployment.bucket}\n\n"
                "Try (any credentials work; these commands need nothing set in the shell):\n"
                + "\n".join(f"  {line}{f'   ({note})' if note else ''}" for line, note in lines)
                + "\n\nCtrl-C (or SIGTERM) stops it."
            )
            wait_for_stop()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bisonflow.cli.errors.Stopped)
            say("stopping")
    return 0


def run_month(args: argparse.Namespace) -> int:
    """`bisonflow run`: one month on a fresh runtime; the record, outputs, logs and report
    under --out/<execution name>/."""
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
    from bisonflow.local.runtime import LocalRuntime, current_month
    from bisonflow.steps.publish import published_keys

    checks.writable_directory(args.out, "--out")  # before half a minute of work, not after
    month = args.month or current_month()
    layout = MonthLayout.for_month(month)
    started = time.monotonic()
    with LocalRuntime(settings(args), progress=say) as rt:
        rt.publish_snapshot(month)
        raise_if_stopped()  # a signal during the start whose Stopped was lost: stop now
        sfn, s3 = rt.clients["stepfunctions"], rt.clients["s3"]
        arn = rt.start_execution(month)
        say(f"started {arn}")
        console = make_console()
        if console.is_terminal:
            live_poll(console, lambda update: poll(sfn, arn, update, FOLLOW_SECONDS))
            description = sfn.describe_execution(executionArn=arn)
        else:  # CI, pipes: plain progress lines
            description = follow(sfn, arn, say, FOLLOW_SECONDS)
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
        links = log_links(view, EMULATOR_REGION, logs)
        write_report(view, run_dir / "report.html", log_links=links)
    status = description["status"]
    say(
        f"\n{status} in {time.monotonic() - started:.1f}s: {run_dir}/ "
        f"(execution.json, history.json, report.html, {len(files)} output files under "
        "outputs/, logs/)"
    )
    return outcome(description, args.require_processed)


def fire_schedule(args: argparse.Namespace) -> int:
    """`bisonflow local fire-schedule`: as the emulator's operator, fire the stack's schedule
    as EventBridge Scheduler would at --scheduled-time, and say which execution it started."""
    from bisonflow.deploy import stack_outputs
    from bisonflow.local.scheduler import fire, scheduled_time_text
    from bisonflow.steps.scheduled_start import scheduled_execution_arn

    when = args.scheduled_time or dt.datetime.now(dt.UTC).replace(microsecond=0)
    emulator = target(args, emulator_operator=True)
    outputs = stack_outputs(emulator, args.stack_name)
    scheduled = scheduled_execution_arn(outputs["StateMachineAliasArn"], scheduled_time_text(when))
    sfn = emulator.client("stepfunctions")
    try:
        existed = bool(sfn.describe_execution(executionArn=scheduled))
    except sfn.exceptions.ExecutionDoesNotExist:
        existed = False
    fired = fire(emulator.session, emulator.endpoint_url, outputs["ScheduleName"], when)
    say(
        f"fired {fired.schedule_arn} as {fired.role_arn}\n"
        f"  target: {fired.target_arn}\n  input:  {fired.input}"
    )
    arn = fired.run_arn(outputs["StateMachineAliasArn"])
    if fired.execution_arn is None and existed:
        say(f"{arn} exists already: this firing started nothing")
    else:
        say(f"started {arn}")
    say(follow_hint(emulator.endpoint_url, arn))
    return 0
