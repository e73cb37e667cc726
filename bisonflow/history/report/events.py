"""report.html's event table: every history event with its time, state and details, and the
filters report.js applies (type, state, text). Apart from html.py so that module stays the
page's frame and graph."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from html import escape
from typing import Any

from bisonflow.aws import without_task_tokens
from bisonflow.history.execution_view import ExecutionView, details_of

__all__ = ["DETAILS_SHOWN", "event_details", "events_section", "shown_details"]

#: Characters of an event's details shown before "…".
DETAILS_SHOWN = 140


def _clock(value: dt.datetime) -> str:
    """HH:MM:SS.mmm in UTC (the date is in the page's header)."""
    return value.astimezone(dt.UTC).strftime("%H:%M:%S.%f")[:-3]


def events_section(view: ExecutionView) -> str:
    owner = {i: run.name for run in view.states.values() for i in run.event_ids}
    types = sorted({e["type"] for e in view.events})
    states = [r.name for r in view.in_order() if r.event_ids]
    rows = []
    for event in view.events:
        seconds = (event["timestamp"] - view.start).total_seconds() if view.start else 0.0
        state = owner.get(event["id"], "")
        rows.append(
            f'<tr data-type="{escape(event["type"])}" data-owner="{escape(state)}">'
            f'<td class="num">{event["id"]}</td>'
            f'<td class="num">{escape(_clock(event["timestamp"]))}</td>'
            f'<td class="num">+{seconds:.3f}</td><td>{escape(event["type"])}</td>'
            f'<td>{escape(state)}</td><td class="details">{event_details(event)}</td></tr>'
        )
    type_options = "".join(f'<option value="{escape(t)}">{escape(t)}</option>' for t in types)
    state_options = "".join(f'<option value="{escape(s)}">{escape(s)}</option>' for s in states)
    return (
        '<section><h2>Events</h2><div class="filters">'
        '<label>Type <select id="filter-type"><option value="">all types</option>'
        f"{type_options}</select></label>"
        '<label>State <select id="filter-state"><option value="">all states</option>'
        f"{state_options}</select></label>"
        '<label>Text <input id="filter-text" type="search" placeholder="filter"></label>'
        '<span id="filter-count" class="muted"></span></div>'
        '<table id="events"><thead><tr><th>id</th><th>time (UTC)</th><th>+s</th><th>type</th>'
        f"<th>state</th><th>details</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</section>"
    )


def shown_details(event: dict[str, Any]) -> dict[str, Any]:
    """The event's details as a page may show them: a callback state's TaskScheduled
    parameters carry its task token (docs/aws.md, "Where the task token appears"), which a
    report.html passed around or a console's page must not, so it is replaced."""
    details = dict(details_of(event))
    parameters = details.get("parameters")
    if isinstance(parameters, str):
        with contextlib.suppress(ValueError):
            details["parameters"] = json.dumps(without_task_tokens(json.loads(parameters)))
    shown: dict[str, Any] = without_task_tokens(details)
    return shown


def event_details(event: dict[str, Any]) -> str:
    """The event's details as one line, folded after DETAILS_SHOWN characters."""
    details = shown_details(event)
    if not details:
        return ""
    text = json.dumps(details, ensure_ascii=False, default=str)
    if len(text) <= DETAILS_SHOWN:
        return escape(text)
    full = json.dumps(details, ensure_ascii=False, indent=2, default=str)
    return (
        f"<details><summary>{escape(text[:DETAILS_SHOWN])} … <b>more</b></summary>"
        f"<pre>{escape(full)}</pre></details>"
    )
