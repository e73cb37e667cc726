"""Start execution: the form generated from the workflow's input schema
(bisonflow.console.start_form), checked in the browser (static/start_form.js) and again here,
then StartExecution on the stack's state machine, as `bisonflow start` calls it.

GET /start?month=YYYY-MM pre-fills the month (a link from another page). POST /start answers a
refused form with the form again (400), each message by its field: the schema's, the name
rule's, or AWS's own when StartExecution refuses (a name already used, say). A start goes to
the execution's page (303), so a reload does not start it twice.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.console.connection import Connection
from bisonflow.console.frame import page, static
from bisonflow.console.pages import execution_path
from bisonflow.console.server import Request, Response, Route, redirect, refusal
from bisonflow.console.start_form import (
    Field,
    FormProblems,
    Submission,
    form_fields,
    start_request,
)

TITLE = "Start execution"
#: StartExecution's refusals a person fixes on the form (the others are the error page's).
_FORM_REFUSALS = frozenset({"ExecutionAlreadyExists", "InvalidName", "ValidationException"})


def show_form(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    submission = Submission(request.query.get("month") or None, False, None)
    return _form_page(connection, request, submission, {})


def start(connection: Connection, request: Request, match: re.Match[str]) -> Response:
    submission = Submission.from_form(request.form)
    try:
        payload = start_request(submission)
    except FormProblems as exc:
        return _form_page(connection, request, submission, exc.problems, status=400)
    name = {"name": submission.name} if submission.name else {}
    try:
        started = connection.client("stepfunctions").start_execution(
            stateMachineArn=connection.state_machine_arn, input=json.dumps(payload), **name
        )
    except ClientError as exc:
        code = error_code(exc)
        if code not in _FORM_REFUSALS:
            raise
        problems = {"": f"AWS refused: {refusal(exc)}"}
        return _form_page(connection, request, submission, problems, status=400)
    return redirect(request, execution_path(started["executionArn"]))


def _form_page(
    connection: Connection,
    request: Request,
    submission: Submission,
    problems: dict[str, str],
    status: int = 200,
) -> Response:
    values: dict[str, Any] = {
        "month": submission.month or "",
        "force": submission.force,
        "name": submission.name or "",
    }
    controls = "\n".join(
        _control(field, values[field.name], problems.get(field.name, "")) for field in form_fields()
    )
    body = (
        f"<section><h1>{escape(TITLE)}</h1>"
        f'<p>Starts an execution of <code id="state-machine">'
        f"{escape(connection.state_machine_arn)}</code>.</p>"
        f'<p class="error" id="form-problem" role="alert">{escape(problems.get("", ""))}</p>'
        f'<form id="start-form" method="post" action="{escape(request.href("/start"))}" '
        f"novalidate>\n{controls}\n"
        '<div class="actions"><button type="submit" class="primary" id="start-submit">'
        "Start execution</button></div></form>"
        '<h2>Input</h2><p class="muted">What StartExecution is sent as the input:</p>'
        f'<pre id="input-json">{escape(_input_json(submission))}</pre></section>'
    )
    return page(
        connection,
        request,
        TITLE,
        body,
        scripts=f"<script>\n{static('start_form.js')}</script>",
        status=status,
    )


def _input_json(submission: Submission) -> str:
    """The input the form would send, as start_form.js shows it (empty while refused)."""
    try:
        return json.dumps(start_request(submission), indent=2)
    except FormProblems:
        return ""


def _control(field: Field, value: Any, problem: str) -> str:
    """One field: its label, control, the schema's description and its problem (empty when
    none; start_form.js fills it in the browser, the server on a refused post)."""
    ident = escape(field.name)
    described = f"{ident}-help {ident}-problem"
    attributes = [
        f'id="{ident}"',
        f'name="{ident}"',
        f'aria-describedby="{described}"',
        f'data-description="{escape(field.description)}"',
    ]
    if field.in_input:
        attributes.append("data-input")
    if field.pattern is not None:
        attributes.append(f'data-pattern="{escape(field.pattern)}"')
    if field.control == "checkbox":
        attributes += ['type="checkbox"', 'value="true"'] + (["checked"] if value else [])
    else:
        attributes += [f'type="{field.control}"', f'value="{escape(str(value or ""))}"']
        if field.control == "text" and field.pattern is not None:
            attributes += [f'pattern="{escape(field.pattern)}"', 'autocomplete="off"']
    help_text = field.description + (f"; {field.when_empty}" if field.when_empty else "")
    return (
        f'<div class="field"><label for="{ident}">{ident}</label>'
        f"<input {' '.join(attributes)}>"
        f'<div class="help" id="{ident}-help">{escape(help_text)}</div>'
        f'<div class="problem" id="{ident}-problem" aria-live="polite">{escape(problem)}</div>'
        "</div>"
    )


ROUTES: tuple[Route, ...] = (
    Route("GET", r"/start", show_form),
    Route("POST", r"/start", start),
)
