"""Workflow: the state machine with its versions and aliases, the schedule that starts it with
its next fire times, and the newest executions; locally, a button that fires the schedule now.

Each part is its own AWS call, and the user's credentials may allow some and not others (a
read-only role without scheduler:GetSchedule, say): a refused part shows AWS's refusal where
it would have been, and the rest of the page is still shown (`aws_section`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from html import escape
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.console.connection import Connection
from bisonflow.console.frame import page
from bisonflow.console.pages import execution_path
from bisonflow.console.server import (
    Request,
    Response,
    Route,
    redirect,
    refusal,
    text_response,
)
from bisonflow.deploy.schedule import ScheduleExpressionError, next_fire_times
from bisonflow.history.executions import list_executions
from bisonflow.history.terminal import format_time

#: Fire times and executions the page shows.
NEXT_FIRES = 5
RECENT_EXECUTIONS = 5
#: Versions described (one DescribeStateMachine each, for its description), newest first.
VERSIONS_DESCRIBED = 10


def aws_section(section_id: str, title: str, build: Callable[[], str]) -> str:
    """A section of the page built by `build`, or AWS's refusal of its call in its place."""
    try:
        inner = build()
    except ClientError as exc:
        inner = _refused(exc)
    return f'<section id="{escape(section_id)}"><h2>{escape(title)}</h2>{inner}</section>'


def _refused(exc: ClientError) -> str:
    operation = exc.operation_name or "the call"
    return f'<p class="error refusal">AWS refused {escape(operation)}: {escape(refusal(exc))}</p>'


def overview_page(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    return overview(connection, request)


def overview(
    connection: Connection, request: Request, problem: str | None = None, status: int = 200
) -> Response:
    """The page, with `problem` (a failed "fire now") on top when there is one."""
    sfn = connection.client("stepfunctions")
    arn = connection.state_machine_arn
    notice = (
        f'<section><p class="error" id="problem">{escape(problem)}</p></section>' if problem else ""
    )
    body = "".join(
        [
            notice,
            aws_section("state-machine", "State machine", lambda: _state_machine(sfn, arn)),
            aws_section("versions", "Versions", lambda: _versions(sfn, arn)),
            aws_section("aliases", "Aliases", lambda: _aliases(sfn, arn)),
            aws_section("schedule", "Schedule", lambda: _schedule(connection, request)),
            aws_section("executions", "Newest executions", lambda: _executions(sfn, arn, request)),
        ]
    )
    return page(connection, request, "Workflow", body, status=status)


def fire_schedule(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    """Fire the schedule now, as EventBridge Scheduler would; only a local runtime can."""
    if connection.fire_now is None:
        return text_response(
            "bisonflow console: this console cannot fire the schedule (only a local runtime "
            "can; on AWS it fires on its own)",
            404,
        )
    try:
        started = connection.fire_now()
    except RuntimeError as exc:
        return overview(connection, request, f"The schedule was not fired: {exc}", 502)
    return redirect(request, execution_path(started))


# -- the state machine ---------------------------------------------------------------------


def _state_machine(sfn: Any, arn: str) -> str:
    machine = sfn.describe_state_machine(stateMachineArn=arn)
    logging = machine.get("loggingConfiguration", {}).get("level", "OFF")
    return _facts(
        [
            ("Name", escape(machine["name"])),
            ("ARN", _arn(machine["stateMachineArn"])),
            ("Type", escape(machine.get("type", ""))),
            ("Status", escape(machine.get("status", ""))),
            ("Created", escape(format_time(machine.get("creationDate"), date=True))),
            ("Role", _arn(machine.get("roleArn", ""))),
            ("Logging level", escape(logging)),
        ]
    )


def _versions(sfn: Any, arn: str) -> str:
    note = ""
    try:
        listed = _listed_versions(sfn, arn)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) < 500:
            raise  # a refusal: aws_section shows it
        listed = _routed_versions(sfn, arn)
        note = (
            '<p class="muted">This endpoint could not list the versions (ListStateMachineVersions '
            f"answered {escape(error_code(exc))}): shown are the versions its aliases route to.</p>"
        )
    if not listed:
        return '<p class="muted">No published version: executions run the latest revision.</p>'
    listed.sort(key=lambda v: v["creationDate"], reverse=True)
    rows = "".join(
        f'<tr><td class="number">{escape(_version_number(v["stateMachineVersionArn"]))}</td>'
        f"<td>{_arn(v['stateMachineVersionArn'])}</td>"
        f"<td>{escape(format_time(v.get('creationDate'), date=True))}</td>"
        f"<td>{escape(_description(sfn, v['stateMachineVersionArn'], i))}</td></tr>"
        for i, v in enumerate(listed)
    )
    return note + (
        '<table class="list"><thead><tr><th>Version</th><th>ARN</th><th>Created</th>'
        f"<th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _listed_versions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """ListStateMachineVersions, every page."""
    listed: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        result = sfn.list_state_machine_versions(stateMachineArn=arn, **token)
        listed.extend(result["stateMachineVersions"])
        if not result.get("nextToken"):
            return listed
        token = {"nextToken": result["nextToken"]}


def _routed_versions(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """The versions the machine's aliases route to, as ListStateMachineVersions lists them:
    what an endpoint without that call (moto 5.2.5's, under the local emulator) can show."""
    routed = {
        route["stateMachineVersionArn"]
        for alias in _described_aliases(sfn, arn)
        for route in alias.get("routingConfiguration", [])
    }
    described = [sfn.describe_state_machine(stateMachineArn=v) for v in sorted(routed)]
    return [
        {"stateMachineVersionArn": d["stateMachineArn"], "creationDate": d["creationDate"]}
        for d in described
    ]


def _description(sfn: Any, version_arn: str, position: int) -> str:
    """A version's description, for the newest VERSIONS_DESCRIBED (a call each)."""
    if position >= VERSIONS_DESCRIBED:
        return ""
    described = sfn.describe_state_machine(stateMachineArn=version_arn)
    return str(described.get("description") or "")


def _described_aliases(sfn: Any, arn: str) -> list[dict[str, Any]]:
    """DescribeStateMachineAlias of every alias ListStateMachineAliases lists."""
    aliases: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        result = sfn.list_state_machine_aliases(stateMachineArn=arn, **token)
        aliases.extend(
            sfn.describe_state_machine_alias(stateMachineAliasArn=a["stateMachineAliasArn"])
            for a in result["stateMachineAliases"]
        )
        if not result.get("nextToken"):
            return aliases
        token = {"nextToken": result["nextToken"]}


def _aliases(sfn: Any, arn: str) -> str:
    aliases = _described_aliases(sfn, arn)
    if not aliases:
        return '<p class="muted">No alias.</p>'
    rows = "".join(
        f"<tr><td>{escape(a['name'])}</td><td>{_arn(a['stateMachineAliasArn'])}</td>"
        f"<td>{_routing(a.get('routingConfiguration', []))}</td>"
        f"<td>{escape(a.get('description') or '')}</td></tr>"
        for a in sorted(aliases, key=lambda a: a["name"])
    )
    return (
        '<table class="list"><thead><tr><th>Alias</th><th>ARN</th><th>Routes to</th>'
        f"<th>Description</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _routing(routes: list[dict[str, Any]]) -> str:
    return "<br>".join(
        f"version {escape(_version_number(r['stateMachineVersionArn']))}: {int(r['weight'])}%"
        for r in routes
    )


def _version_number(version_arn: str) -> str:
    return version_arn.rsplit(":", 1)[-1]


# -- the schedule ----------------------------------------------------------------------------


def _schedule(connection: Connection, request: Request) -> str:
    name = connection.outputs["ScheduleName"]
    schedule = connection.client("scheduler").get_schedule(Name=name)
    expression = schedule["ScheduleExpression"]
    timezone = schedule.get("ScheduleExpressionTimezone") or "UTC"
    window = schedule.get("FlexibleTimeWindow", {})
    flexible = (
        f"{window['MaximumWindowInMinutes']} minutes"
        if window.get("Mode") == "FLEXIBLE"
        else escape(window.get("Mode", "OFF"))
    )
    facts = _facts(
        [
            ("Name", escape(schedule.get("Name", name))),
            ("Expression", f"<code>{escape(expression)}</code>"),
            ("Time zone", escape(timezone)),
            ("State", escape(schedule.get("State", ""))),
            ("Target", _arn(schedule.get("Target", {}).get("Arn", ""))),
            ("Flexible window", flexible),
        ]
    )
    return facts + _next_fires(expression, timezone) + _fire_now(connection, request)


def _next_fires(expression: str, timezone: str) -> str:
    now = dt.datetime.now(dt.UTC)
    try:
        times = next_fire_times(expression, now, NEXT_FIRES, timezone)
    except ScheduleExpressionError as exc:
        return f'<p class="error" id="next-fires">Next fire times unknown: {escape(str(exc))}</p>'
    if not times:
        return '<p class="muted" id="next-fires">The schedule does not fire again.</p>'
    rows = "".join(
        f"<tr><td>{escape(f'{t:%a %Y-%m-%d %H:%M} {t.tzname()}')}</td>"
        f"<td>{escape(f'{t.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC')}</td></tr>"
        for t in times
    )
    return (
        f'<h3>Next {len(times)} fire times</h3><table class="list" id="next-fires"><thead>'
        f"<tr><th>In {escape(timezone)}</th><th>In UTC</th></tr></thead><tbody>{rows}</tbody>"
        "</table>"
    )


def _fire_now(connection: Connection, request: Request) -> str:
    if connection.fire_now is None:
        return (
            '<p class="muted">The schedule fires on its own; EventBridge Scheduler has no call '
            "that fires a schedule on demand (nor has <code>aws scheduler</code>).</p>"
        )
    return (
        f'<form method="post" action="{escape(request.href("/schedule/fire"))}" class="actions" '
        'data-confirm="Fire the schedule now? It starts the workflow as EventBridge Scheduler '
        'would.">'
        '<button type="submit" class="primary" id="fire-now">Fire the schedule now</button>'
        '<span class="muted">as EventBridge Scheduler does: with its target, role and input'
        "</span></form>"
    )


# -- executions ----------------------------------------------------------------------------


def _executions(sfn: Any, arn: str, request: Request) -> str:
    newest = list_executions(sfn, arn, limit=RECENT_EXECUTIONS)
    if not newest:
        return '<p class="muted">No execution yet.</p>'
    rows = "".join(
        f'<tr><td><a href="{escape(request.href(execution_path(e["executionArn"])))}">'
        f"{escape(e['name'])}</a></td><td>{escape(e['status'])}</td>"
        f"<td>{escape(format_time(e.get('startDate'), date=True))}</td></tr>"
        for e in newest
    )
    return (
        '<table class="list"><thead><tr><th>Execution</th><th>Status</th><th>Started</th>'
        f"</tr></thead><tbody>{rows}</tbody></table>"
        f'<p><a href="{escape(request.href("/executions"))}">All executions</a></p>'
    )


# -- shared ------------------------------------------------------------------------------------


def _facts(rows: list[tuple[str, str]]) -> str:
    """A two-column table of (label, already-escaped HTML)."""
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f'<table class="list facts"><tbody>{body}</tbody></table>'


def _arn(arn: str) -> str:
    return f'<span class="arn">{escape(arn)}</span>'


ROUTES = (
    Route("GET", "/", overview_page),
    Route("POST", "/schedule/fire", fire_schedule),
)
