"""`bisonflow`'s command line: the top-level parser, to which each command module under
bisonflow.cli.commands adds its own commands.

Bad arguments end in one line (_Parser.error), and every command takes --debug.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

DESCRIPTION = (
    "Deploy the BISON workflow to AWS and start it, run it locally, serve the local emulator "
    "for the AWS CLI, and look at executions (on AWS or the emulator): list them, show one's "
    "history, watch one live, or do all of it in a browser (`console`)."
)
DEBUG_HELP = "show the traceback behind an error (or set BISONFLOW_DEBUG=1)"


class _Parser(argparse.ArgumentParser):
    """argparse that ends a bad argument in one line (and the way to more help), not the
    whole usage block above it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def _add_debug_everywhere(parser: argparse.ArgumentParser) -> None:
    """--debug on every command (before or after its name) shows tracebacks."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.add_argument(
                    "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
                )
                _add_debug_everywhere(sub)


def build_parser() -> argparse.ArgumentParser:
    """Every command, each with `handler` set (bisonflow.cli.commands)."""
    from bisonflow.cli.commands import GROUPS

    parser = _Parser(prog="bisonflow", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands)
    _add_debug_everywhere(parser)
    return parser
