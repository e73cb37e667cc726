"""`bisonflow deploy | destroy | start | schedule`: the stack from the command line.

The deploy options are generated from the template's Parameters (one `--kebab-case` option
each, its Description as help), so the template stays the one list of settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

from bisonflow.cli import checks
from bisonflow.cli.options import add_target_options, follow_hint, target
from bisonflow.cli.output import say
from bisonflow.deploy import (
    DEFAULT_STACK_NAME,
    DERIVED_PARAMETERS,
    LEFT_BEHIND,
    cfn_template,
    deploy,
    destroy,
    option_name,
    stack_outputs,
)

_STACK_HELP = f"the stack (default: {DEFAULT_STACK_NAME})"


def register(commands: argparse._SubParsersAction) -> None:
    """deploy, destroy, start and schedule, each with the common target options."""
    deployed = commands.add_parser(
        "deploy",
        help="build, upload and create or update the stack (definitions/bisonflow.cfn.yaml)",
    )
    add_target_options(deployed, stack_name=DEFAULT_STACK_NAME, stack_help=_STACK_HELP)
    _add_parameter_options(deployed)
    deployed.set_defaults(handler=run_deploy)

    destroyed = commands.add_parser("destroy", help="delete the stack (the bucket is retained)")
    add_target_options(destroyed, stack_name=DEFAULT_STACK_NAME, stack_help=_STACK_HELP)
    destroyed.set_defaults(handler=run_destroy)

    start = commands.add_parser(
        "start", help="start an execution of the deployed state machine, as the console does"
    )
    add_target_options(start, stack_name=DEFAULT_STACK_NAME, stack_help=_STACK_HELP)
    start.add_argument(
        "--month", type=checks.month, default=None, help="YYYY-MM (default: this month)"
    )
    start.add_argument("--force", action="store_true", help="redo a month already processed")
    start.add_argument(
        "--name",
        type=checks.execution_name,
        default=None,
        help='execution name: 1-80 characters, no white space or < > { } [ ] ? * " # %% \\ ^ '
        "| ~ ` $ & , ; : / (default: a UUID)",
    )
    start.add_argument(
        "--input",
        type=checks.workflow_input,
        default=None,
        metavar="JSON",
        help="the whole workflow input instead of --month/--force, e.g. "
        '\'{"month": "2026-12"}\' (checked against '
        "definitions/check_gbif.input.schema.json)",
    )
    start.set_defaults(handler=run_start)

    schedule = commands.add_parser(
        "schedule", help="the schedule expression, its time zone and its next fire times"
    )
    add_target_options(
        schedule,
        stack_name=None,
        stack_help="the deployed stack whose schedule to show (default: none, the template's "
        "default schedule)",
    )
    schedule.add_argument("--count", type=checks.positive, default=5, help="fire times (default 5)")
    schedule.set_defaults(handler=run_schedule)


def _add_parameter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "template parameters",
        "definitions/bisonflow.cfn.yaml's parameters; on an update, those not given keep "
        "their deployed values",
    )
    for name, spec in cfn_template.template()["Parameters"].items():
        if name in DERIVED_PARAMETERS:
            continue
        default = f" (template default: {spec['Default']})" if "Default" in spec else ""
        group.add_argument(
            option_name(name),
            dest=f"param_{name}",
            default=None,
            metavar=spec.get("Type", "String").upper().replace("COMMADELIMITEDLIST", "A,B"),
            help=" ".join(str(spec.get("Description", name)).split()) + default,
        )


def run_deploy(args: argparse.Namespace) -> int:
    parameters = {
        key.removeprefix("param_"): value
        for key, value in vars(args).items()
        if key.startswith("param_") and value is not None
    }
    deployed = deploy(target(args), args.stack_name, parameters, say)
    changed = f"{deployed.changes} resource changes" if deployed.changes else "no changes"
    say(f"\nstack {deployed.stack_name}: {changed}. Outputs:")
    for key, value in sorted(deployed.outputs.items()):
        say(f"  {key:<30} {value}")
    say(
        "\nBefore the first month, a superuser runs once in the database (docs/aws.md, "
        "Prerequisites; the comments say when each is needed):"
    )
    for statement in deployed.grants:
        say(f"  {statement}")
    return 0


def run_destroy(args: argparse.Namespace) -> int:
    destroy(target(args), args.stack_name, say)
    say(f"stack {args.stack_name} deleted. Left behind:")
    for what in LEFT_BEHIND:
        say(f"  - {what}")
    return 0


def run_start(args: argparse.Namespace) -> int:
    from bisonflow.schemas import workflow_input

    if args.input is not None and (args.month or args.force):
        raise checks.UsageError(
            "--input is the whole workflow input: put month and force in it instead of "
            "also giving --month/--force"
        )
    payload = args.input if args.input is not None else workflow_input(args.month, args.force)
    reached = target(args)
    machine = stack_outputs(reached, args.stack_name)["StateMachineArn"]
    kwargs = {"name": args.name} if args.name else {}
    started = reached.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps(payload), **kwargs
    )
    say(f"started {started['executionArn']}\n  input: {json.dumps(payload)}")
    say(follow_hint(args.endpoint_url, started["executionArn"]))
    return 0


def run_schedule(args: argparse.Namespace) -> int:
    from bisonflow.deploy.schedule import schedule_summary

    if args.stack_name:
        reached = target(args)
        name = stack_outputs(reached, args.stack_name)["ScheduleName"]
        deployed = reached.client("scheduler").get_schedule(Name=name)
        # (expression, time zone) as EventBridge Scheduler has them
        expression = deployed["ScheduleExpression"]
        timezone = deployed.get("ScheduleExpressionTimezone") or "UTC"
        source = f"stack {args.stack_name}"
    else:
        expression = cfn_template.parameter_default("ScheduleExpression")
        timezone = cfn_template.parameter_default("ScheduleTimezone")
        source = "the template's default"
    say(f"({source})")
    say(schedule_summary(expression, timezone, dt.datetime.now(dt.UTC), count=args.count))
    return 0
