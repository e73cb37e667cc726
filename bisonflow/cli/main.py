"""`bisonflow`: deploy the BISON workflow to AWS and start it, run it locally, serve the local
emulator for the AWS CLI, and look at executions (on AWS or the emulator): list them, show
one's history, watch one live.

main() parses the command line (bisonflow.cli.parser, the commands under
bisonflow.cli.commands), checks the common options, and runs the command's handler with a
loopback endpoint's defaults and the signal handlers in place; an error the user caused ends
in one line and exit code 2 (_user_error says which errors are the user's).
"""

from __future__ import annotations

import argparse
import sys

from bisonflow.cli.endpoint import endpoint_of, loopback_defaults
from bisonflow.cli.errors import debugging, ended, stop_on_signals
from bisonflow.cli.options import check_target_options
from bisonflow.cli.output import warn
from bisonflow.cli.parser import build_parser
from bisonflow.local import PortInUse

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def command() -> int:
        check_target_options(args)
        with loopback_defaults(args), stop_on_signals():
            return args.handler(args)

    return ended(command, lambda exc: _user_error(args, exc), debugging(args.debug), warn)


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

    if getattr(args, "runs_emulator", False):
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


if __name__ == "__main__":
    sys.exit(main())
