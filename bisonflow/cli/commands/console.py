"""`bisonflow console`: the console (bisonflow.console) against any account or endpoint, AWS
included, until Ctrl-C.

It signs every call here, with the credentials the common options name (--profile, else
boto3's chain); the browser gets pages, never a key, and the console can do what those
credentials allow, no more. On the laptop, `bisonflow local up` serves the same console.
"""

from __future__ import annotations

import argparse

from bisonflow.cli import checks
from bisonflow.cli.errors import wait_for_stop
from bisonflow.cli.options import add_target_options, target
from bisonflow.cli.output import say
from bisonflow.deploy import DEFAULT_STACK_NAME


def register(commands: argparse._SubParsersAction) -> None:
    console = commands.add_parser(
        "console",
        help="serve the console in your browser (start, watch, stop and inspect executions) "
        "against an account or endpoint, until Ctrl-C",
    )
    add_target_options(
        console,
        stack_name=DEFAULT_STACK_NAME,
        stack_help=f"the workflow's stack (default: {DEFAULT_STACK_NAME})",
    )
    console.add_argument(
        "--port",
        type=checks.port,
        default=0,
        help="port on 127.0.0.1 (default: any free port; the URL is printed)",
    )
    console.set_defaults(handler=run_console)


def run_console(args: argparse.Namespace) -> int:
    from bisonflow.console.app import console_server
    from bisonflow.console.connection import connect

    connection = connect(target(args), args.stack_name)
    with console_server(connection, args.port) as server:
        try:
            say(
                f"BISON console for {connection.where}\n"
                f"  {server.url}\n"
                "Open it in a browser on this machine (the URL carries the session's token; "
                "keep it to yourself).\nCtrl-C (or SIGTERM) stops it."
            )
            wait_for_stop()
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (bisonflow.cli.errors.Stopped)
            say("stopping")
    return 0
