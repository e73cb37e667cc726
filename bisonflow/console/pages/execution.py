"""One execution, live: report.html's graph, details, timeline and events (one model,
ExecutionView, and one renderer, bisonflow.history.report, behind both), updated in the page
while the execution runs; stop and redrive; its logs; its report.html to keep.

The page polls live.json, which answers the same parts rendered again from the newest
history. Each look reads only the events after those the console already holds (events_after,
as `bisonflow watch` does): a whole history is a megabyte by a month's end.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import OrderedDict
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from bisonflow.console.connection import Connection
from bisonflow.console.frame import page, static
from bisonflow.console.pages import execution_path
from bisonflow.console.server import Request, Response, Route, json_response, redirect
from bisonflow.history.cost_inputs import estimate_execution
from bisonflow.history.execution_view import ExecutionView, build_view
from bisonflow.history.executions import TERMINAL, definition_of, events_after, month_of
from bisonflow.history.report.gallery import Figure, in_report_order, summary_prefix
from bisonflow.history.report.live import (
    live_script,
    live_update,
    render_report,
    report_body,
    report_head,
    report_scripts,
)
from bisonflow.history.terminal import log_links
from bisonflow.steps.redrive import RedriveRefused, redrive_from

#: How often a running execution's page looks again, in milliseconds: each look renders and
#: sends every part again (the event table alone is ~0.5 MB by a month's end), so not faster
#: than a person reads a state's change.
POLL_MS = 2000
#: Executions whose history the console holds between looks.
HELD = 32
#: The cause StopExecution records: who stopped it, as the history will show.
STOP_CAUSE = "stopped from the bisonflow console"
_ARN = r"/executions/(?P<arn>arn:[^/]+)"


class _Histories:
    """Each followed execution's definition and events so far, added to at each look."""

    def __init__(self) -> None:
        self._held: OrderedDict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = OrderedDict()
        self._lock = threading.Lock()

    def view(self, sfn: Any, arn: str) -> tuple[ExecutionView, dict[str, Any]]:
        """The execution's view now, and its DescribeExecution (the view keeps no
        redriveStatus)."""
        description = sfn.describe_execution(executionArn=arn)
        with self._lock:
            definition, events = self._held.pop(arn, (None, []))
        definition = definition or definition_of(sfn, arn)
        events = events + events_after(sfn, arn, events[-1]["id"] if events else 0)
        with self._lock:
            self._held[arn] = (definition, events)
            while len(self._held) > HELD:
                self._held.popitem(last=False)
        return build_view(description, definition, events), description


_HISTORIES = _Histories()


def _arn(match: re.Match[str]) -> str:
    return unquote(match["arn"])


def _links(connection: Connection, request: Request, view: ExecutionView) -> Any:
    """Per state, its logs: CloudWatch's console on AWS; the local runtime's log files,
    served by this console, locally (a browser follows no file:// link from a web page)."""
    logs = connection.local_logs
    if logs is None:
        return log_links(view, connection.region)
    return log_links(
        view,
        connection.region,
        logs,
        url_of=lambda path: request.href(f"/logs/{path.resolve().relative_to(logs.resolve())}"),
    )


def month_figure_keys(connection: Connection, view: ExecutionView) -> list[str]:
    """The PNG figures and maps the execution published, in the report's order."""
    prefix = summary_prefix(view)
    if not prefix:
        return []
    s3 = connection.client("s3")
    keys = [
        obj["Key"]
        for page_ in s3.get_paginator("list_objects_v2").paginate(
            Bucket=connection.bucket, Prefix=prefix
        )
        for obj in page_.get("Contents", [])
        if obj["Key"].endswith(".png")
    ]
    return in_report_order(keys)


def _figures(connection: Connection, request: Request, view: ExecutionView) -> list[Figure]:
    return [
        (key.rsplit("/", 1)[-1], request.href("/outputs/file", key=key))
        for key in month_figure_keys(connection, view)
    ]


def _actions(request: Request, view: ExecutionView, description: dict[str, Any]) -> str:
    here = execution_path(view.arn)
    buttons = []
    if view.status == "RUNNING":
        buttons.append(
            f'<form method="post" class="inline" action="{escape(request.href(here + "/stop"))}" '
            f'data-confirm="Stop {escape(view.name)}? Step Functions ends it ABORTED; its '
            "task instances are then terminated by the stack's cleanup rule.\">"
            '<button type="submit" class="danger" id="stop">Stop execution</button></form>'
        )
    if view.status in TERMINAL and view.status != "SUCCEEDED":
        try:
            state = redrive_from(description, view.definition, view.events)
        except RedriveRefused as refused:
            buttons.append(f'<span class="muted" id="not-redrivable">{escape(str(refused))}</span>')
        else:
            buttons.append(
                f'<form method="post" class="inline" '
                f'action="{escape(request.href(here + "/redrive"))}" data-confirm="Redrive '
                f'{escape(view.name)} from {escape(state)}, with the input it had there?">'
                f'<button type="submit" class="primary" id="redrive">Redrive from '
                f"{escape(state)}</button></form>"
            )
    buttons.append(
        f'<a id="download-report" href="{escape(request.href(here + "/report.html"))}" '
        "download>Download report.html</a>"
    )
    month = month_of(description)
    if re.fullmatch(r"\d{4}-\d{2}", month):
        buttons.append(
            f'<a href="{escape(request.href("/outputs", month=month))}">{month}\'s outputs</a>'
        )
    return f'<div class="actions" id="actions">{"".join(buttons)}</div>'


def _view_and_description(connection: Connection, arn: str) -> tuple[ExecutionView, dict[str, Any]]:
    return _HISTORIES.view(connection.client("stepfunctions"), arn)


def execution_page(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    view, description = _view_and_description(connection, _arn(match))
    links = _links(connection, request, view)
    live = request.href(execution_path(view.arn) + "/live.json")
    body = f'<div data-live="actions">{_actions(request, view, description)}</div>' + report_body(
        view, links, _figures(connection, request, view)
    )
    scripts = "\n".join(
        [
            report_scripts(),
            live_script(),
            f"<script>\n{static('live_page.js')}"
            f"BisonConsole.follow({_js(live)}, {POLL_MS}, {_js(view.status)});</script>",
        ]
    )
    return page(connection, request, view.name, body, head=report_head(), scripts=scripts)


def live_json(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """The live_update the page polls, with the console's own part: its actions."""
    view, description = _view_and_description(connection, _arn(match))
    figures = _figures(connection, request, view)
    update = live_update(view, _links(connection, request, view), figures)
    update["parts"]["actions"] = _actions(request, view, description)
    return json_response(update)


def stop(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    arn = _arn(match)
    connection.client("stepfunctions").stop_execution(
        executionArn=arn, error="bisonflow.console", cause=STOP_CAUSE
    )
    return redirect(request, execution_path(arn))


def redrive(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """RedriveExecution, once the execution is one a redrive can help (as `bisonflow
    redrive` checks it)."""
    view, description = _view_and_description(connection, _arn(match))
    try:
        redrive_from(description, view.definition, view.events)
    except RedriveRefused as refused:
        return page(
            connection,
            request,
            "Redrive refused",
            f'<section><p class="error" id="problem">{escape(str(refused))}</p></section>',
            status=409,
        )
    connection.client("stepfunctions").redrive_execution(executionArn=view.arn)
    return redirect(request, execution_path(view.arn))


def report_download(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """report.html as `bisonflow history --report` writes it, self-contained: its figures
    inlined as data: URLs, its cost from the logs and statement durations at this target."""
    view, description = _view_and_description(connection, _arn(match))
    s3 = connection.client("s3")
    figures = [
        (
            key.rsplit("/", 1)[-1],
            "data:image/png;base64,"
            + base64.b64encode(
                s3.get_object(Bucket=connection.bucket, Key=key)["Body"].read()
            ).decode(),
        )
        for key in month_figure_keys(connection, view)
    ]
    cost = estimate_execution(
        description,
        view.events,
        logs=connection.client("logs"),
        data=connection.client("redshift-data"),
    )
    html = render_report(view, log_links(view, connection.region), figures, cost)
    return Response(
        html,
        headers={"Content-Disposition": f'attachment; filename="{view.name}.report.html"'},
    )


def log_file(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """A local runtime's log file (lambda/<function>.log, tasks/<instance>.log); none
    against AWS, whose logs are in CloudWatch Logs."""
    root = connection.local_logs
    if root is None:
        return Response("this console's logs are in CloudWatch Logs\n", 404, "text/plain")
    path = (root / unquote(match["path"])).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        return Response(f"no log {match['path']}\n", 404, "text/plain")
    return Response(Path(path).read_bytes(), content_type="text/plain; charset=utf-8")


def _js(value: str) -> str:
    """A string as a JavaScript literal safe inside <script>."""
    return json.dumps(value).replace("<", "\\u003c")


ROUTES = (
    Route("GET", _ARN, execution_page),
    Route("GET", _ARN + r"/live\.json", live_json),
    Route("POST", _ARN + r"/stop", stop),
    Route("POST", _ARN + r"/redrive", redrive),
    Route("GET", _ARN + r"/report\.html", report_download),
    Route("GET", r"/logs/(?P<path>[\w./-]+)", log_file),
)
