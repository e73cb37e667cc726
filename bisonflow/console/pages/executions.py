"""The executions page: the workflow's executions newest first, filterable by status and by
the month each was started for, with its duration.

ListExecutions filters by status itself; the month is in each execution's input, which only
DescribeExecution returns, so the page describes the executions it lists (at most PAGE_SIZE, as
`bisonflow executions` does for its rows) and filters those by month.
"""

from __future__ import annotations

import datetime as dt
import re
from html import escape
from typing import Any

from bisonflow.console.connection import Connection
from bisonflow.console.frame import page
from bisonflow.console.pages import execution_path
from bisonflow.console.server import Request, Response, Route
from bisonflow.history.executions import TERMINAL, list_executions, month_of
from bisonflow.history.terminal import format_duration, format_time

#: Executions one page describes (one DescribeExecution each).
PAGE_SIZE = 100
#: ListExecutions' statusFilter values (Step Functions API Reference, ListExecutions).
STATUSES = ("RUNNING", *TERMINAL, "PENDING_REDRIVE")


def described_executions(
    connection: Connection, status: str | None, month: str | None, limit: int = PAGE_SIZE
) -> list[dict[str, Any]]:
    """DescribeExecution of the newest `limit` executions with `status`, those of `month`."""
    sfn = connection.client("stepfunctions")
    found = list_executions(sfn, connection.state_machine_arn, status, limit)
    described = [sfn.describe_execution(executionArn=e["executionArn"]) for e in found]
    return [d for d in described if not month or month_of(d) == month]


def _row(request: Request, described: dict[str, Any], now: dt.datetime) -> str:
    start, stop = described.get("startDate"), described.get("stopDate")
    seconds = ((stop or now) - start).total_seconds() if start else None
    href = request.href(execution_path(described["executionArn"]))
    status = described["status"]
    return (
        f'<tr data-status="{escape(status)}"><td><a href="{escape(href)}">'
        f"{escape(described['name'])}</a></td><td>{escape(status)}</td>"
        f"<td>{escape(month_of(described))}</td><td>{escape(format_time(start, date=True))}</td>"
        f'<td class="number">{escape(format_duration(seconds))}</td></tr>'
    )


def _filters(request: Request, status: str, month: str) -> str:
    options = "".join(
        f'<option value="{s}"{" selected" if s == status else ""}>{s or "any status"}</option>'
        for s in ("", *STATUSES)
    )
    return (
        f'<form method="get" action="{escape(request.href("/executions"))}" class="actions">'
        f'<label>Status <select name="status" id="filter-status">{options}</select></label>'
        f'<label>Month <input type="month" name="month" id="filter-month" '
        f'value="{escape(month)}"></label><button type="submit">Filter</button></form>'
    )


def executions_page(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    status = request.query.get("status", "")
    month = request.query.get("month", "")
    if status and status not in STATUSES:
        return page(
            connection,
            request,
            "Executions",
            f'<section><p class="error">status {escape(status)} is not one of '
            f"{', '.join(STATUSES)}</p></section>",
            status=400,
        )
    rows = described_executions(connection, status or None, month or None)
    now = dt.datetime.now(dt.UTC)
    what = "".join(f" {part}" for part in (status, f"for {month}" if month else "") if part)
    table = (
        '<table class="list" id="executions"><thead><tr><th>Name</th><th>Status</th>'
        "<th>Month</th><th>Started</th><th>Duration</th></tr></thead><tbody>"
        + "".join(_row(request, d, now) for d in rows)
        + "</tbody></table>"
        if rows
        else f'<p class="muted" id="executions">No executions{escape(what)}.</p>'
    )
    body = (
        f'<section><h1>Executions</h1><p class="muted">of <span class="arn">'
        f"{escape(connection.state_machine_arn)}</span>, newest first (at most {PAGE_SIZE})."
        f"</p>{_filters(request, status, month)}{table}</section>"
    )
    return page(connection, request, "Executions", body)


ROUTES = (Route("GET", r"/executions", executions_page),)
