"""The options every command that reaches AWS (or an emulator) shares, declared once, and the
one way a command turns them into boto3 clients.

`--endpoint-url`, `--region`, `--profile` and `--stack-name` mean the same on every command
that takes them (add_target_options), and every such command makes its clients through
target(args): a bisonflow.deploy.target.Target, so the history commands and the deploy share
one session, one retry configuration and one region rule:

- endpoint: --endpoint-url, else AWS_ENDPOINT_URL (boto3 reads it too), else AWS itself;
- region: --region, else AWS_REGION, else boto3's own (AWS_DEFAULT_REGION, the profile's
  `region`). boto3 reads only AWS_DEFAULT_REGION; the AWS SDKs and the AWS CLI v2 read
  AWS_REGION first (AWS SDKs and Tools Reference Guide, "AWS Region"), and a Lambda's
  environment has only AWS_REGION, so it is read here. With none, boto3's NoRegionError
  becomes one line naming --region and AWS_REGION (bisonflow.cli.main);
- credentials: --profile, else boto3's chain (keys, AWS_PROFILE, a web identity, ...).

For a loopback endpoint, bisonflow.cli.endpoint.loopback_defaults has filled in the region and
the emulator's dummy keys before the command runs, so pasted commands work in a bare shell.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from bisonflow.cli.checks import check_endpoint_url
from bisonflow.cli.endpoint import endpoint_of
from bisonflow.deploy.target import Target

#: What each command does: its parsed arguments in, its exit code out.
Handler = Callable[[argparse.Namespace], int]

#: The emulator `bisonflow local up` serves by default: where `local` commands go without
#: --endpoint-url or AWS_ENDPOINT_URL.
LOCAL_ENDPOINT = "http://127.0.0.1:5000"


def add_target_options(
    parser: argparse.ArgumentParser,
    *,
    stack_name: str | None,
    stack_help: str,
    account: bool = True,
    endpoint_help: str = "the endpoint, e.g. `bisonflow local up`'s http://127.0.0.1:5000 "
    "(default: AWS_ENDPOINT_URL, else AWS itself)",
) -> None:
    """The common options, in one group of `parser`'s help. `stack_name` is the command's
    default stack (None: the command works without one, `stack_help` says how); `account`
    False leaves out --region and --profile, for commands that speak to the emulator as its
    operator (its one region, its keys)."""
    group = parser.add_argument_group("AWS target")
    group.add_argument("--endpoint-url", default=None, metavar="URL", help=endpoint_help)
    if account:
        group.add_argument(
            "--region",
            default=None,
            help="default: AWS_REGION, else AWS_DEFAULT_REGION or the profile's; at a "
            "loopback endpoint, else the emulator's us-east-1",
        )
        group.add_argument(
            "--profile",
            default=None,
            metavar="NAME",
            help="an AWS named profile (default: AWS_PROFILE, else boto3's credential chain)",
        )
    group.add_argument("--stack-name", default=stack_name, metavar="NAME", help=stack_help)


def check_target_options(args: argparse.Namespace) -> None:
    """What argparse cannot check of the common options, before any work: an --endpoint-url
    botocore would refuse deep inside with a ValueError."""
    if getattr(args, "endpoint_url", None):
        check_endpoint_url(args.endpoint_url)


def target(args: argparse.Namespace, *, emulator_operator: bool = False) -> Target:
    """The account, region and endpoint the command's options name, whose .client(service)
    every command uses.

    emulator_operator: the command speaks to a local emulator as its operator (`local
    fire-schedule`): at --endpoint-url, AWS_ENDPOINT_URL or LOCAL_ENDPOINT, in the emulator's
    region with its operator's keys, whatever credentials the shell holds (session keys from
    AWS would be refused there as unknown).
    """
    endpoint = endpoint_of(args)
    if emulator_operator:
        from bisonflow.local.emulator import CREDENTIALS, REGION

        return Target(
            region=REGION, endpoint_url=endpoint or LOCAL_ENDPOINT, credentials=dict(CREDENTIALS)
        )
    return Target(
        region=getattr(args, "region", None) or os.environ.get("AWS_REGION") or None,
        profile=getattr(args, "profile", None),
        endpoint_url=endpoint,
    )


def state_machine_arn(args: argparse.Namespace, reached: Target) -> str | None:
    """The state machine of --stack-name (its StateMachineArn output), or None when no stack
    is named: the history commands then look for the machine by its name, bison-workflow, as
    the account has one BISON workflow (bisonflow.history.executions.find_state_machine)."""
    if not getattr(args, "stack_name", None):
        return None
    from bisonflow.deploy import stack_outputs

    return stack_outputs(reached, args.stack_name)["StateMachineArn"]


def follow_hint(endpoint_url: str | None, execution_arn: str) -> str:
    """The `bisonflow watch` line a command prints after starting or redriving an execution,
    with the endpoint it was given so the line works pasted."""
    endpoint = f" --endpoint-url {endpoint_url}" if endpoint_url else ""
    return f"follow it with: bisonflow watch{endpoint} {execution_arn}"
