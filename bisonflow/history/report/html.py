"""The report's sections as HTML, drawn from the ExecutionView model: header, the state graph
(laid out in the page by dagre, see assets.py and graph.js) with a detail panel per state, and
a timeline of state visits (the figures, cost and events sections have modules of their own).

live.py puts them in a page: report.html, and the console's live page, which swaps the same
sections as the execution runs and restyles the graph's states by their data-status.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
from html import escape
from typing import Any

from bisonflow.history.execution_view import (
    CANCELLED,
    CAUGHT,
    FAILED,
    NOT_RUN,
    RUNNING,
    STATUSES,
    SUCCEEDED,
    ExecutionView,
    StateRun,
    state_defs,
)
from bisonflow.history.executions import summary_line
from bisonflow.history.report.graph import (
    BRANCH,
    CATCH,
    CHOICE,
    END_OF_BRANCH,
    Node,
    StateGraph,
    rule_label,
)

LogLinks = dict[str, list[tuple[str, str]]]

#: status -> (stroke, fill)
COLOURS: dict[str, tuple[str, str]] = {
    SUCCEEDED: ("#2e7d32", "#e4f4e5"),
    FAILED: ("#c62828", "#fde3e3"),
    CAUGHT: ("#e65100", "#ffedd6"),
    RUNNING: ("#1565c0", "#e0eeff"),
    CANCELLED: ("#7b5ea7", "#efe8f7"),
    NOT_RUN: ("#9aa5b1", "#f7f8fa"),
}
_EXECUTION_COLOURS = {"SUCCEEDED": SUCCEEDED, "FAILED": FAILED, "RUNNING": RUNNING}


# -- formatting ------------------------------------------------------------------------------


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.3f} s"
    minutes, seconds = divmod(value, 60)
    hours, minutes = divmod(int(minutes), 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {seconds:.0f} s"


def _pretty(text: str | None) -> str:
    """A <pre> with the text, as indented JSON when it parses."""
    if text is None:
        return '<span class="muted">—</span>'
    with contextlib.suppress(TypeError, ValueError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return f"<pre>{escape(text)}</pre>"


def _badge(status: str) -> str:
    stroke = COLOURS.get(_EXECUTION_COLOURS.get(status, status), COLOURS[NOT_RUN])[0]
    return f'<span class="badge" style="background:{stroke}">{escape(status)}</span>'


def _error_rows(error: str | None, cause: str | None) -> list[tuple[str, str]]:
    """The error as one line first (its type and message: a traceback's last line, a Lambda
    error's errorMessage), then the whole cause folded away (issue 12: a cause is often a
    traceback whose message is at its bottom)."""
    if not (error or cause):
        return []
    message = summary_line(cause)
    if error and not message.startswith(error):
        message = f"{error}: {message}" if message else error
    rows = [("Error", f'<span class="error">{escape(message)}</span>')]
    if cause and cause.strip() != message:
        lines = len(cause.splitlines())
        rows.append(
            (
                "Cause",
                f"<details><summary>the whole cause ({lines} line{'s' * (lines != 1)})"
                f"</summary>{_pretty(cause)}</details>",
            )
        )
    return rows


def _facts(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _now(view: ExecutionView) -> dt.datetime | None:
    """The end of the timeline: the stop, or the last event of a running execution."""
    return view.stop or max((e["timestamp"] for e in view.events), default=view.start)


# -- header ----------------------------------------------------------------------------------


def header_section(view: ExecutionView, figures: int = 0) -> str:
    """The execution's status, times, input and error; `figures` links to the gallery."""
    rows = [
        ("Status", _badge(view.status)),
        ("ARN", f'<span class="arn">{escape(view.arn)}</span>'),
        ("Started", escape(_time(view.start))),
        ("Stopped", escape(_time(view.stop)) if view.stop else "— (still running)"),
        ("Duration", escape(_seconds(view.duration_seconds))),
        ("Input", _pretty(view.input)),
    ]
    if figures:
        rows.append(("Results", f'<a href="#figures">the month\'s {figures} figures and maps</a>'))
    rows += _error_rows(view.error, view.cause)
    return f"<header><h1>BISON workflow execution {escape(view.name)}</h1>{_facts(rows)}</header>"


# -- graph -----------------------------------------------------------------------------------


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch" style="border-color:{COLOURS[s][0]};background:{COLOURS[s][1]}">'
        f'</span><b>{escape(s)}</b> <span class="meaning">{escape(meaning)}</span></li>'
        for s, meaning in STATUSES.items()
    )
    return f'<ul class="legend">{items}</ul>'


def graph_section(view: ExecutionView, graph: StateGraph) -> str:
    """The legend, zoom buttons and graph: drawn once, a live page only restyles its nodes."""
    tools = "".join(
        f'<button type="button" data-zoom="{what}" title="{escape(title)}">{escape(text)}</button>'
        for what, text, title in (
            ("out", "−", "zoom out"),
            ("in", "+", "zoom in"),
            ("fit", "fit", "the whole graph in the window"),
            ("reset", "100%", "actual size"),
        )
    )
    return (
        '<section><h2>State machine</h2><p class="muted" style="margin:0 0 6px">Click a state '
        "or a rule for its details; hover a rule for its full text; drag to pan, Ctrl + wheel "
        "to zoom. Dashed red edges are Catch routes (of every error, States.ALL, unless labelled); "
        "purple boxes are Parallel branches.</p>"
        f'{_legend()}<div class="graph-tools">{tools}</div>'
        f'<div id="graph-scroll">{render_svg(view, graph)}</div></section>'
    )


def _branch_id(branch: tuple[str, int]) -> str:
    return f"{branch[0]}#{branch[1]}"


def render_svg(view: ExecutionView, graph: StateGraph) -> str:
    """The graph as inline SVG, unplaced: graph.js measures every box in the page's font and
    places it with dagre. Each state is coloured by its status through its data-status (the
    stylesheet's status rules), so a live page can restyle it by changing one attribute."""
    parts = [
        '<svg id="state-graph" class="state-graph" width="0" height="0" role="img" '
        'aria-label="state machine graph">',
        "<defs>",
        _marker("arrow", "#8a96a3"),
        _marker("arrow-catch", "#d9534f"),
        _marker("arrow-branch", "#7e57c2"),
        "</defs>",
        '<g class="clusters">',
    ]
    starts = {(e.source, e.target) for e in graph.edges if e.kind == "branch"}
    for (parallel, index), nodes in graph.branches().items():
        first = next((n.name for n in nodes if (parallel, n.name) in starts), nodes[0].name)
        parts.append(
            f'<g class="branch-group" data-cluster="{escape(_branch_id((parallel, index)))}" '
            f'data-parallel="{escape(parallel)}" data-branch="{index}" '
            f'data-start="{escape(first)}"><rect class="cluster" rx="12"/>'
            f'<text class="cluster-label" text-anchor="middle">'
            f"{escape(parallel)} · branch {index + 1}</text></g>"
        )
    parts.append('</g><g class="edges">')
    labels = []
    for i, edge in enumerate(graph.edges):
        marker = {CATCH: "arrow-catch", BRANCH: "arrow-branch", END_OF_BRANCH: "arrow-branch"}
        dashed = ' stroke-dasharray="6 4"' if edge.kind == CATCH else ""
        title = f"{edge.kind}: {edge.source} → {edge.target}" + (
            f" when {edge.label}"
            if edge.kind == CHOICE
            else f" ({edge.label})"
            if edge.label
            else ""
        )
        parts.append(
            f'<path class="edge edge-{edge.kind}" data-edge="{i}" data-kind="{edge.kind}" '
            f'data-source="{escape(edge.source)}" data-target="{escape(edge.target)}" '
            f'marker-end="url(#{marker.get(edge.kind, "arrow")})"{dashed}>'
            f"<title>{escape(title)}</title></path>"
        )
        if edge.short:
            lines = "".join(
                f'<tspan x="0" dy="{0 if n == 0 else 1.2:g}em">{escape(line)}</tspan>'
                for n, line in enumerate(edge.short)
            )
            cls = "edge-label catch" if edge.kind == CATCH else "edge-label"
            labels.append(
                f'<g class="{cls}" data-edge="{i}" data-source="{escape(edge.source)}" '
                f'data-full="{escape(edge.label)}"><title>{escape(title)}</title>'
                f'<rect class="label-box"/><text text-anchor="middle">{lines}</text></g>'
            )
    parts.append('</g><g class="nodes">')
    for node in graph.nodes.values():
        parts.append(_node_svg(node, view.states.get(node.name)))
    parts.append('</g><g class="labels">')
    parts.extend(labels)  # on top of nodes and edges
    parts.append("</g></svg>")
    return "\n".join(parts)


def _marker(name: str, colour: str) -> str:
    return (
        f'<marker id="{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        f'fill="{colour}"/></marker>'
    )


def _node_svg(node: Node, run: StateRun | None) -> str:
    """A node centred on (0, 0); graph.js sizes its box to its text and moves it."""
    branch = f' data-branch="{escape(_branch_id(node.branch))}"' if node.branch else ""
    if not node.is_state:
        label = "start" if node.type == "Start" else "end"
        return (
            f'<g class="marker" data-node="{escape(node.name)}"><rect rx="13"/>'
            f'<text class="type" y="4" text-anchor="middle">{label}</text></g>'
        )
    kind, status = type_line(node, run)
    return (
        f'<g class="state" data-node="{escape(node.name)}" data-state="{escape(node.name)}" '
        f'data-status="{status}" data-type="{escape(node.type)}"{branch} tabindex="0">'
        f"<title>{escape(node_title(node, status))}</title>"
        f'<rect rx="{18 if node.type in ("Succeed", "Fail") else 6}"/>'
        f'<text class="name" y="-3" text-anchor="middle">{escape(node.name)}</text>'
        f'<text class="type" y="14" text-anchor="middle">{escape(kind)}'
        f'<tspan class="status">{status}</tspan></text></g>'
    )


def type_line(node: Node, run: StateRun | None) -> tuple[str, str]:
    """A state node's second line as its type part ("Task ×2 · ") and its status, the part a
    live page restyles."""
    visits = f" ×{run.visits}" if run and run.visits > 1 else ""
    return f"{node.type}{visits} · ", run.status if run else NOT_RUN


def node_title(node: Node, status: str) -> str:
    """A state node's hover text."""
    return f"{node.name}: {status}"


def status_css() -> str:
    """Each status's colours as stylesheet rules keyed on data-status (COLOURS is the one
    source: the legend, badges, timeline bars and these rules all read it)."""
    rules = [
        f'g.state[data-status="{status}"] > rect {{ fill: {fill}; stroke: {stroke}; }}'
        for status, (stroke, fill) in COLOURS.items()
    ]
    return "\n".join(rules) + "\n"


# -- detail panel ----------------------------------------------------------------------------


def details_section(view: ExecutionView, log_links: LogLinks) -> str:
    """A panel per state that ran, all hidden until report.js shows the one clicked."""
    definitions = {d.name: d.definition for d in state_defs(view.definition)}
    panels = "".join(
        _state_detail(view, run, log_links.get(run.name, []), definitions)
        for run in view.in_order()
    )
    return (
        '<section><div class="detail"><h2>State details</h2>'
        '<p id="detail-help">Click a state in the graph or the timeline.</p>'
        f"{panels}</div></section>"
    )


def _routes(state: dict[str, Any]) -> str:
    """A Choice's rules in full and a Catch's errors, with where each leads (the graph's
    edges show them shortened)."""
    items = [
        f"<li>when <code>{escape(rule_label(rule))}</code> → {escape(rule['Next'])}</li>"
        for rule in state.get("Choices", [])
    ]
    if "Default" in state:
        items.append(f"<li>otherwise → {escape(state['Default'])}</li>")
    items += [
        f"<li>on <code>{escape(', '.join(c.get('ErrorEquals', [])))}</code> → "
        f"{escape(c['Next'])}</li>"
        for c in state.get("Catch", [])
    ]
    return f'<ul class="rules">{"".join(items)}</ul>' if items else ""


def _state_detail(
    view: ExecutionView,
    run: StateRun,
    links: list[tuple[str, str]],
    definitions: dict[str, dict[str, Any]],
) -> str:
    inside = _seconds_inside(run, _now(view))
    branch = f"{run.branch[0]}, branch {run.branch[1] + 1}" if run.branch else "top level"
    rows = [
        ("Status", _badge(run.status) + f' <span class="muted">{STATUSES[run.status]}</span>'),
        ("Type", escape(run.type)),
        ("Where", escape(branch)),
        ("Visits", str(run.visits)),
        ("Attempts", f"{run.attempts} ({run.retries} retries)"),
        ("First entered", escape(_time(run.entered))),
        ("Last exited", escape(_time(run.exited))),
        ("Time inside", escape(_seconds(inside) if run.intervals else "—")),
        ("Resource", escape(run.resource or "—")),
    ]
    rows += _error_rows(run.error, run.cause)
    routes = _routes(definitions.get(run.name, {}))
    if routes:
        rows.append(("Routes", routes))
    rows.append(("Input", _pretty(run.input)))
    rows.append(("Output", _pretty(run.output)))
    if links:
        items = "".join(
            f'<li><a href="{escape(href)}" target="_blank" rel="noopener">{escape(label)}</a></li>'
            for label, href in links
        )
        rows.append(("Logs", f'<ul class="log-links">{items}</ul>'))
    return (
        f'<div class="state-detail" data-detail="{escape(run.name)}" hidden>'
        f"<h3>{escape(run.name)}</h3>{_facts(rows)}</div>"
    )


def _seconds_inside(run: StateRun, now: dt.datetime | None) -> float:
    """Time inside the state over its visits, a visit still open counted up to `now`."""
    total = 0.0
    for start, end in run.intervals:
        stop = end or now
        if start and stop:
            total += (stop - start).total_seconds()
    return total


# -- timeline --------------------------------------------------------------------------------


def timeline_section(view: ExecutionView) -> str:
    """A row per state that ran, a bar per visit; a running execution's ends at its last event."""
    now, start = _now(view), view.start
    ran = [r for r in view.in_order() if r.intervals]
    if not start or not now or not ran:
        return '<section><h2>Timeline</h2><p class="muted">No state has run yet.</p></section>'
    span = max((now - start).total_seconds(), 0.001)

    def pct(t: dt.datetime | None) -> float:
        return 100 * max(0.0, min(span, ((t or now) - start).total_seconds())) / span

    def bar(run: StateRun, a: dt.datetime, b: dt.datetime | None) -> str:
        stroke, fill = COLOURS[run.status]
        until = f"+{(b - start).total_seconds():.3f} s" if b else "now"
        return (
            f'<div class="tl-bar" style="left:{pct(a):.3f}%;width:{max(pct(b) - pct(a), 0):.3f}%;'
            f'background:{fill};border-color:{stroke}" '
            f'title="{escape(run.name)}: +{(a - start).total_seconds():.3f} s to {until}"></div>'
        )

    def row(run: StateRun, depth: int) -> str:
        bars = "".join(bar(run, a, b) for a, b in run.intervals if a)
        visits = f" ×{run.visits}" if run.visits > 1 else ""
        name = escape(run.name)
        return (
            f'<div class="tl-row"><div class="tl-name indent{depth}" data-name="{name}" '
            f'title="{name} · {run.status}">{name}{visits}</div>'
            f'<div class="tl-track">{bars}</div></div>'
        )

    def rows_under(parent: tuple[str, int] | None, depth: int) -> list[str]:
        out = []
        for run in (r for r in ran if r.branch == parent):
            out.append(row(run, depth))
            indices = sorted({r.branch[1] for r in ran if r.branch and r.branch[0] == run.name})
            for index in indices:
                out.append(
                    f'<div class="tl-row group"><div class="tl-name indent{depth + 1}">'
                    f"{escape(run.name)} · branch {index + 1}</div><div></div></div>"
                )
                out.extend(rows_under((run.name, index), depth + 2))
        return out

    step = _tick_step(span)
    ticks = "".join(
        f'<div class="tl-tick" style="left:{100 * t / span:.3f}%">{t:g} s</div>'
        for t in (i * step for i in range(int(span / step) + 1))
    )
    axis = (
        '<div class="tl-row"><div class="tl-name muted">seconds from start</div>'
        f'<div class="tl-axis">{ticks}</div></div>'
    )
    return (
        '<section><h2>Timeline</h2><div class="timeline" id="timeline">'
        f"{axis}{''.join(rows_under(None, 0))}</div></section>"
    )


def _tick_step(span: float) -> float:
    raw = span / 8
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
