"""`bisonflow deploy | destroy | start | schedule`: the stack from the command line.

The deploy options are generated from the template's Parameters (one `--kebab-case` option
each, its Description as help), so the template stays the one list of settings.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from bisonflow.deploy import (
    DEFAULT_STACK_NAME,
    LEFT_BEHIND,
    Target,
    cfn_template,
    deploy,
    destroy,
    stack_outputs,
)

#: Parameters `bisonflow deploy` fills in itself.
DERIVED_PARAMETERS = ("ArtifactBucket", "ArtifactPrefix", "Release")


def option_name(parameter: str) -> str:
    """BucketName -> --bucket-name."""
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", parameter).lower()


def add_target_options(
    parser: argparse.ArgumentParser, stack_name: str | None = DEFAULT_STACK_NAME
) -> None:
    parser.add_argument(
        "--stack-name", default=stack_name, help=f"the stack (default: {stack_name or 'none'})"
    )
    parser.add_argument("--region", default=None, help="default: the profile's or AWS_REGION")
    parser.add_argument("--profile", default=None, help="AWS named profile")
    parser.add_argument(
        "--endpoint-url", default=None, help="another endpoint, e.g. `bisonflow local up`'s"
    )


def add_parameter_options(parser: argparse.ArgumentParser) -> None:
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


def _target(args: argparse.Namespace) -> Target:
    return Target(region=args.region, profile=args.profile, endpoint_url=args.endpoint_url)


def run_deploy(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    parameters = {
        key.removeprefix("param_"): value
        for key, value in vars(args).items()
        if key.startswith("param_") and value is not None
    }
    deployed = deploy(_target(args), args.stack_name, parameters, log)
    changed = f"{deployed.changes} resource changes" if deployed.changes else "no changes"
    log(f"\nstack {deployed.stack_name}: {changed}. Outputs:")
    for key, value in sorted(deployed.outputs.items()):
        log(f"  {key:<30} {value}")
    log(
        "\nBefore the first month, a superuser runs once in the database (README, "
        "Prerequisites; the comments say when each is needed):"
    )
    for statement in deployed.grants:
        log(f"  {statement}")
    return 0


def run_destroy(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    destroy(_target(args), args.stack_name, log)
    log(f"stack {args.stack_name} deleted. Left behind:")
    for what in LEFT_BEHIND:
        log(f"  - {what}")
    return 0


def start_input(month: str | None, force: bool) -> dict[str, Any]:
    """The execution input, checked against the workflow's input schema before any call."""
    from bisonflow.schemas import validate

    payload: dict[str, Any] = {}
    if month is not None:
        payload["month"] = month
    if force:
        payload["force"] = True
    validate(payload, "check_gbif.input")
    return payload


def run_start(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    given = getattr(args, "input", None)  # --input: checked by bisonflow.cli.checks
    payload = given if given is not None else start_input(args.month, args.force)
    target = _target(args)
    machine = stack_outputs(target, args.stack_name)["StateMachineArn"]
    kwargs = {"name": args.name} if args.name else {}
    started = target.client("stepfunctions").start_execution(
        stateMachineArn=machine, input=json.dumps(payload), **kwargs
    )
    log(f"started {started['executionArn']}\n  input: {json.dumps(payload)}")
    endpoint = f" --endpoint-url {args.endpoint_url}" if args.endpoint_url else ""
    log(f"follow it with: bisonflow watch{endpoint} {started['executionArn']}")
    return 0


def deployed_schedule(target: Target, stack_name: str) -> tuple[str, str]:
    """(expression, time zone) of the stack's schedule, as EventBridge Scheduler has it."""
    name = stack_outputs(target, stack_name)["ScheduleName"]
    schedule = target.client("scheduler").get_schedule(Name=name)
    return schedule["ScheduleExpression"], schedule.get("ScheduleExpressionTimezone") or "UTC"


def run_schedule(args: argparse.Namespace, log: Callable[[str], None]) -> int:
    from bisonflow.deploy.schedule import schedule_summary

    if args.stack_name:
        expression, timezone = deployed_schedule(_target(args), args.stack_name)
        source = f"stack {args.stack_name}"
    else:
        expression = cfn_template.parameter_default("ScheduleExpression")
        timezone = cfn_template.parameter_default("ScheduleTimezone")
        source = "the template's default"
    log(f"({source})")
    log(schedule_summary(expression, timezone, dt.datetime.now(dt.UTC), count=args.count))
    return 0
