"""The state machine as a graph, from its ASL: nodes and typed, labelled edges.

`asl_graph` turns a definition into nodes (every state, Parallel branches included, plus a
START and an END marker) and typed edges. Placing them is the browser's work (graph.js with
dagre, see assets.py): only the page knows how wide its text is in the font it has. Each
labelled edge carries its full text (hover, details panel) and a short form of at most
LABEL_LINES lines of LABEL_CHARS characters, so that a long Choice rule does not make its
label, and so the layout, wider than the nodes it sits between.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bisonflow.history.execution_view import state_defs

START, END = "(start)", "(end)"  # marker nodes, not states
NEXT, CHOICE, DEFAULT, CATCH, BRANCH, END_OF_BRANCH = (
    "next",
    "choice",
    "default",
    "catch",
    "branch",
    "end-of-branch",
)

LABEL_LINES, LABEL_CHARS = 3, 28
TERMINAL_TYPES = ("Succeed", "Fail")
CATCH_ALL = "States.ALL"  # the error name matching every error
_OPS = {
    "Equals": "==",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}


@dataclass
class Node:
    name: str
    type: str  # the ASL Type, or "Start"/"End" for the markers
    branch: tuple[str, int] | None = None

    @property
    def is_state(self) -> bool:
        return self.name not in (START, END)


@dataclass
class Edge:
    source: str
    target: str
    kind: str
    label: str = ""  # in full: a Choice rule, a Catch's errors, "default"
    short: tuple[str, ...] = ()  # the lines drawn on the edge


@dataclass
class StateGraph:
    nodes: dict[str, Node]
    edges: list[Edge]

    def branches(self) -> dict[tuple[str, int], list[Node]]:
        """The nodes of each Parallel branch, keyed by (Parallel name, branch index)."""
        groups: dict[tuple[str, int], list[Node]] = {}
        for node in self.nodes.values():
            if node.branch:
                groups.setdefault(node.branch, []).append(node)
        return groups


def rule_label(rule: dict[str, Any]) -> str:
    """A Choice rule as a short expression: `$.snapshot_exists == false`."""
    if "And" in rule:
        return " && ".join(_grouped(r) for r in rule["And"])
    if "Or" in rule:
        return " || ".join(_grouped(r) for r in rule["Or"])
    if "Not" in rule:
        return f"!({rule_label(rule['Not'])})"
    if "Condition" in rule:  # JSONata
        return str(rule["Condition"])
    variable = rule.get("Variable", "?")
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key in ("IsPresent", "IsNull", "IsString", "IsNumeric", "IsBoolean", "IsTimestamp"):
            return f"{variable} {key[2:].lower()}" if value else f"{variable} not {key[2:].lower()}"
        path = key.endswith("Path")
        base = key[:-4] if path else key
        for suffix, op in sorted(_OPS.items(), key=lambda kv: -len(kv[0])):
            if base.endswith(suffix):
                shown = value if path else json.dumps(value)
                return f"{variable} {op} {shown}"
        return f"{variable} {key} {json.dumps(value)}"
    return "?"


def _grouped(rule: dict[str, Any]) -> str:
    text = rule_label(rule)
    return f"({text})" if ("And" in rule or "Or" in rule) else text


def short_rule(rule: dict[str, Any]) -> tuple[str, ...]:
    """A Choice rule as at most LABEL_LINES short lines for its edge.

    Each variable is named by its last path step (`$.sql.more_batches` reads `more_batches`),
    a comparison with true or false reads as the name or `not` the name, and each operand of
    And / Or gets a line of its own; anything longer is cut with "…" (the full rule is the
    edge's hover text and is listed in the Choice state's details)."""
    for key, joiner in (("And", "and "), ("Or", "or ")):
        if key in rule:
            parts = [" ".join(short_rule(r)) for r in rule[key]]
            return _fit([parts[0]] + [joiner + part for part in parts[1:]])
    if "Not" in rule:
        return _fit(["not " + " ".join(short_rule(rule["Not"]))])
    if "Condition" in rule or "Variable" not in rule:
        return _fit([rule_label(rule)])
    full = rule_label(rule)
    variable = str(rule["Variable"])
    name = variable.rsplit(".", 1)[-1].rstrip("]") or variable
    text = full.replace(variable, name, 1)
    if rule.get("BooleanEquals") is True:
        text = name
    elif rule.get("BooleanEquals") is False:
        text = f"not {name}"
    return _fit([text])


def _fit(lines: list[str]) -> tuple[str, ...]:
    """At most LABEL_LINES lines of at most LABEL_CHARS characters, cut with "…"."""
    cut = [line if len(line) <= LABEL_CHARS else line[: LABEL_CHARS - 1] + "…" for line in lines]
    if len(cut) > LABEL_LINES:
        cut = cut[: LABEL_LINES - 1] + [f"… {len(lines) - LABEL_LINES + 1} more"]
    return tuple(cut)


def asl_graph(definition: dict[str, Any]) -> StateGraph:
    """Nodes and typed edges of a definition (not laid out)."""
    nodes = {START: Node(START, "Start")}
    for d in state_defs(definition):
        nodes[d.name] = Node(d.name, d.type, d.branch)
    nodes[END] = Node(END, "End")
    edges = [Edge(START, definition["StartAt"], NEXT)]

    def walk(states: dict[str, Any], after: str | None) -> None:
        # after: where this level's ends lead (a Parallel's Next / END); None at top level
        for name, state in states.items():
            if "Next" in state and state["Type"] != "Parallel":
                # a Parallel's Next is drawn as its branches' end-of-branch edges
                edges.append(Edge(name, state["Next"], NEXT))
            for rule in state.get("Choices", []):
                edges.append(Edge(name, rule["Next"], CHOICE, rule_label(rule), short_rule(rule)))
            if "Default" in state:
                edges.append(Edge(name, state["Default"], DEFAULT, "default", ("default",)))
            for catch in state.get("Catch", []):
                label = ", ".join(catch.get("ErrorEquals", []))
                # States.ALL, the usual catch-all, goes unlabelled (the legend says so): six
                # such labels made the graph a third wider and said nothing new.
                short = () if label == CATCH_ALL else _fit([label])
                edges.append(Edge(name, catch["Next"], CATCH, label, short))
            for sub in state.get("Branches", []):
                edges.append(Edge(name, sub["StartAt"], BRANCH))
                walk(sub["States"], state.get("Next", END))
            ends = state.get("End") or state["Type"] in TERMINAL_TYPES
            if not ends:
                continue
            if after is not None and state["Type"] != "Fail":
                edges.append(Edge(name, after, END_OF_BRANCH))
            elif after is None and state["Type"] not in TERMINAL_TYPES:
                # A Succeed or Fail state ends the execution by its type (it is drawn as a
                # pill); an edge from each to one END marker would only add long lines
                # across the whole graph.
                edges.append(Edge(name, END, NEXT))

    walk(definition["States"], None)
    if not any(edge.target == END for edge in edges):
        del nodes[END]
    return StateGraph(nodes, edges)
