"""The README and docs/ stay true to the tree: the state machine picture draws the ASL as it
is, every page is reachable from the README, and every link and source path they name exists.

No browser here: the picture is drawn by scripts/diagram (headless Chromium), and these tests
read what it committed, docs/state-machine.svg, whose elements keep report.html's data-node /
data-source / data-target / data-kind attributes.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from bisonflow.history.execution_view import STATUSES
from bisonflow.history.report import diagram
from bisonflow.history.report.graph import asl_graph

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SVG = DOCS / "state-machine.svg"
NS = {"svg": "http://www.w3.org/2000/svg"}
#: Paths the docs name that are not in this tree on purpose: a file gone (said so where named)
#: and LocalStack's recorded AWS answers (its own repository's path).
NOT_IN_TREE = {
    "bisonflow/csv_copies.py",
    "tests/aws/services/stepfunctions/v2/error_handling/test_states_errors.snapshot.json",
}
#: Other projects' files the docs cite by name: the seed system's (github lifemapper/bison)
#: and moto's Step Functions interpreter.
OTHER_PROJECTS_FILES = {
    "bison_s3_create_bison.py",
    "bison_s5_assign_riis.py",
    "state_task_service.py",
    "state_task_service_aws_sdk.py",
}
#: Where this project's Python lives (the tree's own, not .venv's).
CODE = ("bisonflow", "tests", "tasks", "functions", "bench")
#: The tree's top folders whose files the docs name by path.
TREE = (*CODE, "definitions", "statemachines", "scripts")


def _svg() -> ET.Element:
    return ET.parse(SVG).getroot()


def test_the_diagram_draws_the_asl_in_this_tree() -> None:
    """Every state (with its type), every edge (with its kind) and every edge label of the ASL
    in statemachines/ is in the committed picture, and nothing else: an ASL change without
    `scripts/diagram` fails here."""
    graph = asl_graph(json.loads(diagram.ASL.read_text()))
    root = _svg()
    drawn_nodes = {
        g.get("data-node"): g.get("data-type", "marker")
        for g in root.iterfind(".//svg:g[@data-node]", NS)
    }
    wanted_nodes = {n.name: (n.type if n.is_state else "marker") for n in graph.nodes.values()}
    assert drawn_nodes == wanted_nodes, "run scripts/diagram: the picture is not the ASL's"
    drawn_edges = Counter(
        (p.get("data-source"), p.get("data-target"), p.get("data-kind"))
        for p in root.iterfind(".//svg:path[@data-edge]", NS)
    )
    wanted_edges = Counter((e.source, e.target, e.kind) for e in graph.edges)
    assert drawn_edges == wanted_edges, "run scripts/diagram: the picture is not the ASL's"
    drawn_labels = Counter(
        (
            g.get("data-source"),
            g.get("data-full"),
            tuple(t.text or "" for t in g.iterfind(".//svg:tspan", NS)),
        )
        for g in root.iterfind(".//svg:g[@data-edge]", NS)
    )
    wanted_labels = Counter((e.source, e.label, e.short) for e in graph.edges if e.short)
    assert drawn_labels == wanted_labels


def test_the_diagram_is_laid_out_and_stands_alone() -> None:
    """Drawn, not just written: every node placed, every edge a path, a size, its own style,
    and no execution's status in a picture of the definition."""
    root = _svg()
    assert root.get("viewBox") and float(root.get("width", 0)) > 0
    assert all(g.get("transform") for g in root.iterfind(".//svg:g[@data-node]", NS))
    assert all(p.get("d") for p in root.iterfind(".//svg:path[@data-edge]", NS))
    assert root.find("svg:style", NS) is not None
    assert root.find(".//svg:tspan[@class='status']", NS) is None
    shown = " ".join(
        "".join(el.itertext())
        for tag in ("text", "title")
        for el in root.iterfind(f".//svg:{tag}", NS)
    )
    assert not [status for status in STATUSES if status in shown]


def test_the_diagram_script_refuses_bad_paths_in_one_line(tmp_path, capsys) -> None:
    assert diagram.main(["--asl", str(tmp_path / "missing.json")]) == 2
    assert diagram.main(["--out", str(tmp_path / "no" / "such" / "dir.svg")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("scripts/diagram: ") for line in err)


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_the_readme_shows_the_diagram_and_links_every_docs_page() -> None:
    readme = README.read_text()
    assert "](docs/state-machine.svg)" in readme
    for page in sorted(DOCS.glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README does not link docs/{page.name}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_link_and_path_a_page_names_exists(page: Path) -> None:
    """Relative links resolve (anchors to a heading of the page they name), and every path
    written out in full (`bisonflow/...py`, `definitions/...json`, ...) is in the tree: a
    module moved without its docs fails here, naming what to fix."""
    text = page.read_text()
    missing = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        unanchored = bool(anchor) and file.suffix == ".md" and anchor not in _anchors(file)
        if not file.exists() or unanchored:
            missing.append(target)
    for path in re.findall(
        rf"(?<![\w/$.-])((?:{'|'.join(TREE)})/[\w/.-]+\.(?:py|json|ya?ml|js|css))\b", text
    ):
        if path not in NOT_IN_TREE and not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchor of each heading: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_every_module_a_page_names_exists(page: Path) -> None:
    """A module named by file name alone (`worker.py`) is a file of the tree, and a dotted name
    (`bisonflow.steps.publish.published`) is a module, or a name a module defines: the regroup
    renamed modules the docs went on naming, which the path check above cannot see."""
    text = page.read_text()
    names = {p.name for top in CODE for p in (ROOT / top).rglob("*.py")}
    missing = [
        name
        for name in re.findall(r"(?<![\w/.-])([a-z_][a-z_0-9]*\.py)\b", text)
        if name not in names | OTHER_PROJECTS_FILES
    ]
    for dotted in set(re.findall(r"(?<![\w/.-])bisonflow(?:\.[a-z_][a-z_0-9]*)+", text)):
        if dotted.rsplit(".", 1)[-1] in ("yaml", "git", "json", "md", "py"):
            continue  # a file name (bisonflow.cfn.yaml), not a module
        if not _resolves(dotted):
            missing.append(dotted)
    assert not missing, f"{page.relative_to(ROOT)} names modules that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    """The longest module or package the name starts with leaves at most one name, and that
    module's source defines or imports it."""
    parts = dotted.split(".")
    for cut in range(len(parts), 1, -1):
        path = ROOT.joinpath(*parts[:cut])
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if source.is_file():
            rest = parts[cut:]
            return not rest or (
                len(rest) == 1 and re.search(rf"\b{rest[0]}\b", source.read_text()) is not None
            )
    return False
