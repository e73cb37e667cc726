"""`bisonflow`'s commands, one module per group, each registering its own subparsers.

Every module has `register(subparsers)`, which adds its commands with their options (the
common target options from bisonflow.cli.options) and sets each command's `handler`: a
function of the parsed arguments returning the exit code, printing through
bisonflow.cli.output and making its boto3 clients through bisonflow.cli.options.target.
GROUPS is the order of `bisonflow --help`.
"""

from __future__ import annotations

from bisonflow.cli.commands import console, executions, local, redrive, stack

GROUPS = (local, console, executions, redrive, stack)
