"""The report as a page: report.html, and the console's page of one execution while it runs.

Both are the sections of html.py (and events.py, gallery.py, cost_section.py) in the same order
and markup, from report_body. The parts that change while an execution runs are each inside a
data-live element; live_update is the model a live page polls: every state's status and type
line for the graph (which stays, laid out once, and is restyled by data-status), and each
part's HTML from the very function report_body used (live_parts), so the two cannot drift.
live.js applies it in the page.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from bisonflow.history.cost import CostEstimate
from bisonflow.history.cost_inputs import history_estimate
from bisonflow.history.execution_view import ExecutionView
from bisonflow.history.executions import record_outputs
from bisonflow.history.report import assets
from bisonflow.history.report.cost_section import cost_section
from bisonflow.history.report.events import events_section
from bisonflow.history.report.gallery import Figure, figures_section, month_figures
from bisonflow.history.report.graph import asl_graph
from bisonflow.history.report.html import (
    LogLinks,
    details_section,
    graph_section,
    header_section,
    node_title,
    status_css,
    timeline_section,
    type_line,
)

__all__ = [
    "LIVE_PARTS",
    "live_parts",
    "live_script",
    "live_update",
    "render_report",
    "report_body",
    "report_head",
    "report_scripts",
    "write_report",
]

#: The data-live parts, in page order; "details" sits beside the graph in the page's grid.
LIVE_PARTS = ("header", "details", "figures", "timeline", "cost", "events")


def render_report(
    view: ExecutionView,
    log_links: LogLinks | None = None,
    figures: list[Figure] | None = None,
    cost: CostEstimate | None = None,
) -> str:
    """The whole report.html for one execution, as text: report_body in a page of its own.

    log_links: per state, (label, URL) of its logs; figures: the month's figures and maps as
    (file name, URL relative to the page), shown as a gallery (bisonflow.history.report.gallery);
    cost: the execution's estimated cost (bisonflow.history.cost_inputs.estimate_execution, with its
    logs and statement durations), else estimated from the history alone."""
    title = f"BISON workflow · {view.name}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title>",
            report_head(),
            "</head><body>",
            report_body(view, log_links, figures, cost),
            report_scripts(),
            "</body></html>",
        ]
    )


def write_report(
    view: ExecutionView,
    path: Path,
    log_links: LogLinks | None = None,
    outputs: Path | None = None,
    cost: CostEstimate | None = None,
) -> Path:
    """Write report.html; with `outputs` (the run record's outputs/ folder, where the month's
    published files were copied), the page shows the month's figures and maps from there.
    Written into a run record (bisonflow.history.executions.save_record's folder), its outputs/ is
    the default."""
    path = Path(path)
    outputs = outputs or record_outputs(path.parent)
    found = month_figures(view, outputs, path.parent) if outputs else []
    html = render_report(view, log_links, found, cost)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def report_head() -> str:
    """The stylesheet report_body needs, for a page's <head> (report.html's or the console's)."""
    return f"<style>\n{assets.own('report.css')}{status_css()}</style>"


def report_scripts() -> str:
    """The scripts that lay out the graph and make the sections clickable, after report_body
    (a live page adds live_script after them)."""
    return (
        f"<script>\n{assets.dagre_js()}\n</script>\n"
        f"<script>\n{assets.own('graph.js')}\n{assets.own('report.js')}</script>"
    )


def live_script(url: str | None = None, interval_ms: int = 1000) -> str:
    """live.js, after report_scripts; with `url` (same origin, relative), the page follows the
    live_update answered there every interval_ms until the execution stops running."""
    follow = (
        f"\nBisonLive.follow({_script_json(url)}, {int(interval_ms)});" if url is not None else ""
    )
    return f"<script>\n{assets.own('live.js')}{follow}</script>"


def _script_json(value: str) -> str:
    """A JSON string that cannot end the <script> it is written in."""
    return json.dumps(value).replace("<", "\\u003c")


def report_body(
    view: ExecutionView,
    log_links: LogLinks | None = None,
    figures: list[Figure] | None = None,
    cost: CostEstimate | None = None,
) -> str:
    """Every section of the report, without <html>, <head> or scripts, for report.html and the
    console's page alike. Each part that changes while the execution runs is the content of a
    `<div data-live="part">` (report.css lays these wrappers out as if absent)."""
    parts = live_parts(view, log_links, figures, cost)

    def live(name: str) -> str:
        return f'<div data-live="{name}">{parts[name]}</div>'

    graph = graph_section(view, asl_graph(view.definition))
    return "\n".join(
        [live("header"), '<div class="main">', graph, live("details"), "</div>"]
        + [live(name) for name in LIVE_PARTS[2:]]
    )


def live_parts(
    view: ExecutionView,
    log_links: LogLinks | None = None,
    figures: list[Figure] | None = None,
    cost: CostEstimate | None = None,
) -> dict[str, str]:
    """Each data-live part's HTML by its name: the one rendering report_body and live_update
    share."""
    figures = figures or []
    return {
        "header": header_section(view, len(figures)),
        "details": details_section(view, log_links or {}),
        "figures": figures_section(view, figures),
        "timeline": timeline_section(view),
        "cost": cost_section(cost if cost is not None else history_estimate(view.events)),
        "events": events_section(view),
    }


def live_update(
    view: ExecutionView,
    log_links: LogLinks | None = None,
    figures: list[Figure] | None = None,
    cost: CostEstimate | None = None,
) -> dict[str, Any]:
    """What a live page needs to show the execution as it is now (JSON-serialisable): its
    status, whether it still runs (live.js stops polling when not), per state its status,
    type line ("Task ×2 · SUCCEEDED") and hover text, and the data-live parts' HTML. Give the
    same log_links, figures and cost as the page was rendered with."""
    graph = asl_graph(view.definition)
    states = {}
    for node in graph.nodes.values():
        if node.is_state:
            kind, status = type_line(node, view.states.get(node.name))
            states[node.name] = {
                "status": status,
                "label": kind + status,
                "title": node_title(node, status),
            }
    return {
        "status": view.status,
        "running": view.status == "RUNNING",
        "states": states,
        "parts": live_parts(view, log_links, figures, cost),
    }
