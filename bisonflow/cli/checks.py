"""Checks of `bisonflow`'s arguments and paths, made before any work starts.

A run of the local workflow takes half a minute; an output path that cannot be written, a
port no socket can have or an execution name AWS refuses must be named in one line before it,
not found in a traceback after it (issue 12). Each check raises UsageError (or, as an argparse
type, ArgumentTypeError) with what was wrong and how to fix it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bisonflow.layout import EXECUTION_NAME_MAX, MonthError, MonthLayout, execution_name_problem


class UsageError(ValueError):
    """A bad argument or path, found before any work: one line, exit code 2."""


#: TCP ports are 16-bit (RFC 793, section 3.1: "Source Port: 16 bits"); 0 asks for any free one.
MAX_PORT = 65_535


def port(value: str) -> int:
    """An argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, got {value!r}") from None
    if not 0 <= number <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"port {number} is outside 0-{MAX_PORT}; choose a port such as 5000 (0: any free port)"
        )
    return number


def month(value: str) -> str:
    """An argparse type: a month, YYYY-MM, as the workflow's input takes it."""
    try:
        return MonthLayout.for_month(value).month
    except MonthError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive(value: str) -> int:
    """An argparse type: a whole number above 0 (records, a limit, a count)."""
    try:
        number = int(value)
    except ValueError:
        number = 0  # said below, as argparse would only say "invalid positive value"
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def aware_time(value: str) -> dt.datetime:
    """An argparse type: an RFC 3339 time with its zone (a time without one is ambiguous)."""
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r}") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{value!r} needs a time zone, e.g. {value}Z for UTC"
        ) from None
    return when


def subset_list(check: Callable[[tuple[str, ...]], None]) -> Callable[[str], str]:
    """An argparse type: a comma-separated list of GBIF terms, checked as the Lambda checks it."""
    from bisonflow.sql.subset_rules import SubsetRuleError, terms

    def parse(value: str) -> str:
        values = terms(value)
        try:
            check(values)
        except SubsetRuleError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return ",".join(values)

    return parse


def execution_name(value: str) -> str:
    """An argparse type: an execution name AWS accepts (execution_name_problem)."""
    problem = execution_name_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(
            f"execution name {value!r} {problem}; Step Functions allows 1-{EXECUTION_NAME_MAX} "
            'characters without white space or any of < > { } [ ] ? * " # % \\ ^ | ~ ` $ & , ; '
            ": / (letters, digits, - and _ are always safe)"
        )
    return value


def workflow_input(text: str) -> dict[str, Any]:
    """An argparse type: the workflow input as JSON, checked against
    definitions/check_gbif.input.schema.json as the CheckGbif Lambda checks it."""
    from bisonflow.schemas import WORKFLOW_INPUT, SchemaViolation, validate

    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f'workflow input is not JSON ({exc}); give an object such as \'{{"month": "2026-12"}}\''
        ) from None
    try:
        validate(payload, WORKFLOW_INPUT)
    except SchemaViolation as exc:
        raise argparse.ArgumentTypeError(
            f'{exc}; the workflow input is an object such as \'{{"month": "2026-12"}}\''
        ) from None
    return payload


def writable_directory(path: Path, option: str) -> Path:
    """Create `path` (and its parents) if missing and make sure files can be written in it."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a directory; give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{option} {path}: cannot create the directory ({exc.strerror}); "
            "give a directory you can write to"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path} is not writable; give a directory you can write to")
    return path


def writable_file(path: Path, option: str) -> Path:
    """A file that can be (re)written: not a directory, in an existing writable directory."""
    if path.is_dir():
        raise UsageError(
            f"{option} {path} is a directory; give a file name, e.g. {path / 'report.html'}"
        )
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(
            f"{option} {path}: directory {parent} does not exist; create it or choose another"
        )
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"{option} {path} is not writable; choose a path you can write to")
    return path


def existing_directory(path: Path, option: str) -> Path:
    if not path.is_dir():
        raise UsageError(f"{option} {path} is not a directory; give an existing directory")
    return path


_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


def check_endpoint_url(value: str, option: str = "--endpoint-url") -> str:
    """An http(s) URL, as botocore requires of endpoint_url (else a ValueError deep inside)."""
    if not _URL.match(value):
        raise UsageError(f"{option} {value!r} is not an http(s) URL; e.g. http://127.0.0.1:5000")
    return value
