"""The state machine as a graph (from its ASL) laid out with grandalf's Sugiyama layout.

`asl_graph` turns a definition into nodes (every state, Parallel branches included, plus a
START and an END marker) and typed edges; `layout` places them top to bottom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grandalf.graphs import Edge as GEdge
from grandalf.graphs import Graph as GGraph
from grandalf.graphs import Vertex
from grandalf.layouts import SugiyamaLayout

from bisonflow.execution_view import state_defs

START, END = "(start)", "(end)"  # marker nodes, not states
NEXT, CHOICE, DEFAULT, CATCH, BRANCH, END_OF_BRANCH = (
    "next",
    "choice",
    "default",
    "catch",
    "branch",
    "end-of-branch",
)
EDGE_KINDS = (NEXT, CHOICE, DEFAULT, CATCH, BRANCH, END_OF_BRANCH)

NODE_H = 40
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
    w: float = 0.0
    h: float = NODE_H
    x: float = 0.0  # centre, after layout
    y: float = 0.0

    @property
    def is_state(self) -> bool:
        return self.name not in (START, END)


@dataclass
class Edge:
    source: str
    target: str
    kind: str
    label: str = ""
    points: list[tuple[float, float]] = field(default_factory=list)  # after layout
    back: bool = False  # goes against the layout's direction (a loop)


@dataclass
class StateGraph:
    nodes: dict[str, Node]
    edges: list[Edge]
    width: float = 0.0
    height: float = 0.0

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
                edges.append(Edge(name, rule["Next"], CHOICE, rule_label(rule)))
            if "Default" in state:
                edges.append(Edge(name, state["Default"], DEFAULT, "default"))
            for catch in state.get("Catch", []):
                label = ", ".join(catch.get("ErrorEquals", []))
                edges.append(Edge(name, catch["Next"], CATCH, label))
            for sub in state.get("Branches", []):
                edges.append(Edge(name, sub["StartAt"], BRANCH))
                walk(sub["States"], state.get("Next", END))
            ends = state.get("End") or state["Type"] in ("Succeed", "Fail")
            if ends and after is None:
                edges.append(Edge(name, END, NEXT))
            elif ends and state["Type"] != "Fail":
                edges.append(Edge(name, after, END_OF_BRANCH))

    walk(definition["States"], None)
    return StateGraph(nodes, edges)


class _View:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = [tuple(p) for p in points]


def node_width(node: Node) -> float:
    if not node.is_state:
        return 70.0
    return max(110.0, 7.4 * len(node.name) + 28)


def layout(graph: StateGraph, margin: float = 24.0) -> StateGraph:
    """Place the nodes (Sugiyama, top to bottom) and route the edges through grandalf's
    dummy points. Loops are found by a depth-first walk from START and laid out reversed."""
    vertices = {}
    for node in graph.nodes.values():
        node.w = node_width(node)
        vertex = Vertex(node.name)
        vertex.view = _View(node.w, node.h)
        vertices[node.name] = vertex
    back = _back_edges(graph)
    g_edges = []
    seen_pairs: dict[tuple[str, str], GEdge] = {}
    for edge in graph.edges:
        pair = (edge.source, edge.target)
        if pair not in seen_pairs:  # grandalf wants one edge per pair
            g_edge = GEdge(vertices[edge.source], vertices[edge.target])
            g_edge.view = _EdgeView()
            seen_pairs[pair] = g_edge
            g_edges.append(g_edge)
        edge.back = pair in back
    g = GGraph(list(vertices.values()), g_edges)
    for component in g.C:
        sug = SugiyamaLayout(component)
        sug.xspace, sug.yspace = 28, 46
        roots = [v for v in component.sV if v.data == START] or [component.sV[0]]
        inverted = [e for e in component.sE if (e.v[0].data, e.v[1].data) in back]
        sug.init_all(roots=roots, inverted_edges=inverted)
        sug.draw(3)
    for name, vertex in vertices.items():
        node = graph.nodes[name]
        node.x, node.y = vertex.view.xy
    for edge in graph.edges:
        edge.points = list(seen_pairs[(edge.source, edge.target)].view.points)
    # the drawing's bounds: node boxes and edge routes (long edges bend around nodes)
    corners = [(n.x - n.w / 2, n.y - n.h / 2) for n in graph.nodes.values()]
    corners += [(n.x + n.w / 2, n.y + n.h / 2) for n in graph.nodes.values()]
    corners += [p for e in graph.edges for p in e.points]
    min_x, min_y = min(x for x, _ in corners), min(y for _, y in corners)
    dx, dy = margin - min_x, margin - min_y
    for node in graph.nodes.values():
        node.x, node.y = node.x + dx, node.y + dy
    for edge in graph.edges:
        edge.points = [(x + dx, y + dy) for x, y in edge.points]
    graph.width = max(x for x, _ in corners) + dx + margin
    graph.height = max(y for _, y in corners) + dy + margin
    return graph


def _back_edges(graph: StateGraph) -> set[tuple[str, str]]:
    """Edges closing a cycle in a depth-first walk from START (the poll loops)."""
    out: dict[str, list[str]] = {}
    for edge in graph.edges:
        out.setdefault(edge.source, []).append(edge.target)
    back, on_stack, done = set(), set(), set()

    def visit(name: str) -> None:
        on_stack.add(name)
        for target in out.get(name, []):
            if target in on_stack:
                back.add((name, target))
            elif target not in done:
                visit(target)
        on_stack.discard(name)
        done.add(name)

    visit(START)
    for name in graph.nodes:  # anything unreachable
        if name not in done:
            visit(name)
    return back
