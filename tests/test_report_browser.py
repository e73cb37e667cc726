"""report.html in headless Chromium at a laptop's width: every node and edge label is measured
in the page (bounding boxes from the DOM) for overlaps, text size and fit, for a succeeded, a
failed and a running execution (each on the definition it ran) and for the succeeded one on
this tree's state machine; then the page's behaviour (statuses, details, filters, figures).

Screenshots go to BISONFLOW_TEST_ARTIFACTS (default build/test-artifacts/report/), one of the
window and one of the whole graph per execution, for a person to look at.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from conftest import SUCCESS_PATH, WINDOW

from bisonflow.history.execution_view import CAUGHT, FAILED, NOT_RUN, RUNNING, SUCCEEDED, build_view
from bisonflow.history.report import write_report
from bisonflow.history.report.graph import LABEL_CHARS

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "executions"
MIN_TEXT_PX = 11
ARTIFACTS = (
    Path(os.environ.get("BISONFLOW_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts")) / "report"
)
CURRENT = "current-asl"
KINDS = ("succeeded", "failed", "running", CURRENT)
ASL = ROOT / "statemachines" / "bison_workflow.asl.json"


def load_view(kind: str):
    """A recorded execution; "current" is the succeeded one drawn on the state machine as it
    is in this tree (statemachines/), so the check follows the ASL as it changes."""
    folder = DATA / ("succeeded" if kind == CURRENT else kind)
    definition = ASL if kind == CURRENT else folder / "definition.json"
    return build_view(
        json.loads((folder / "execution.json").read_text()),
        definition.read_text(),
        json.loads((folder / "history.json").read_text())["events"],
    )


def open_report(driver, view, tmp_path, log_links=None):
    path = write_report(view, tmp_path / "report.html", log_links)
    driver.get(path.resolve().as_uri())
    assert driver.execute_script("return window.innerWidth") == WINDOW[0]
    return driver


# -- what the page draws, measured in the DOM --------------------------------------------------

#: Bounding boxes (client pixels) of what must not overlap, each text's size as drawn, and
#: whether each text sits inside its box. The selectors hold for any drawing of the graph that
#: keeps its classes (nodes: g.state / g.marker; labels: .edge-label; branches: .cluster).
MEASURE = """
const svg = document.querySelector('#graph-scroll svg');
const box = el => { const b = el.getBoundingClientRect();
  return {x: b.left, y: b.top, w: b.width, h: b.height}; };
const name = el => el.getAttribute('data-state') || el.getAttribute('data-node')
  || (el.querySelector('text') || el).textContent;
const nodes = [...svg.querySelectorAll('g.state, g.marker')].map(g => ({
  kind: 'node', name: name(g), branch: g.getAttribute('data-branch'),
  box: box(g.querySelector('rect')),
  texts: [...g.querySelectorAll('text')].map(box)}));
const labels = [...svg.querySelectorAll('.edge-label')].map(el => ({
  kind: 'label', name: el.textContent.trim(), source: el.getAttribute('data-source'),
  box: box(el.querySelector('rect') || el), texts: [box(el.querySelector('text') || el)],
  lines: [...el.querySelectorAll('tspan')].map(t => t.textContent),
  full: el.getAttribute('data-full')}));
const clusters = [...svg.querySelectorAll('rect.cluster')].map(r => {
  const g = r.parentNode;
  return {kind: 'cluster', name: g.getAttribute('data-cluster')
      || (g.getAttribute('data-parallel') + '#' + g.getAttribute('data-branch')),
    box: box(r), texts: [...g.querySelectorAll('text')].map(box)}; });
const scale = svg.getScreenCTM().a;
const fonts = [...svg.querySelectorAll('text')].map(t => ({text: t.textContent,
  px: parseFloat(getComputedStyle(t).fontSize) * scale}));
return {nodes, labels, clusters, fonts};
"""


def overlap(a, b, slack=0.5) -> bool:
    return (
        a["x"] + slack < b["x"] + b["w"]
        and b["x"] + slack < a["x"] + a["w"]
        and a["y"] + slack < b["y"] + b["h"]
        and b["y"] + slack < a["y"] + a["h"]
    )


def inside(inner, outer, slack=1.0) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["w"] <= outer["x"] + outer["w"] + slack
        and inner["y"] + inner["h"] <= outer["y"] + outer["h"] + slack
    )


def layout_defects(found: dict) -> list[str]:
    """Every overlap, spill and too-small text in the measured page, as readable lines."""
    defects = []
    boxes = found["nodes"] + found["labels"]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            if overlap(a["box"], b["box"]):
                defects.append(f"{a['kind']} {a['name']!r} overlaps {b['kind']} {b['name']!r}")
    for item in boxes + found["clusters"]:
        for text in item["texts"]:
            if not inside(text, item["box"]):
                defects.append(f"the text of {item['kind']} {item['name']!r} spills out of it")
    for cluster in found["clusters"]:
        for item in boxes:
            member = item.get("branch") == cluster["name"] or (
                item["kind"] == "label"
                and any(
                    n["name"] == item["source"] and n.get("branch") == cluster["name"]
                    for n in found["nodes"]
                )
            )
            if not member and overlap(item["box"], cluster["box"]):
                defects.append(f"{item['kind']} {item['name']!r} lies on branch {cluster['name']}")
    for font in found["fonts"]:
        if font["px"] < MIN_TEXT_PX - 0.01:
            defects.append(f"text {font['text']!r} is {font['px']:.1f} px")
    return defects


def save_screenshots(driver, kind: str) -> None:
    """The window as a person first sees it, and the whole graph at actual size (captured
    beyond the window through the DevTools protocol)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / f"{kind}.png"))
    clip = driver.execute_script(
        "document.querySelector('.main').style.display = 'block';"
        "const c = document.getElementById('graph-scroll'); c.style.height = 'auto';"
        "c.style.overflow = 'visible'; const b = c.querySelector('svg').getBoundingClientRect();"
        "return {x: b.left + scrollX, y: b.top + scrollY, width: b.width, height: b.height,"
        " scale: 1};"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    png = base64.b64decode(shot["data"])
    (ARTIFACTS / f"{kind}-graph.png").write_bytes(png)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@pytest.mark.parametrize("kind", KINDS)
def test_graph_is_readable_at_laptop_width(driver, tmp_path, kind):
    view = load_view(kind)
    open_report(driver, view, tmp_path)
    found = driver.execute_script(MEASURE)
    assert len(found["nodes"]) >= len(view.states)  # every state, plus the start marker
    assert found["labels"], "no edge label drawn"
    assert layout_defects(found) == []
    # Choice rules are short on the edge; the whole rule is the label's hover text
    long_rule = next(label for label in found["labels"] if "more_batches" in label["name"])
    assert long_rule["lines"] == ['status == "FINISHED"', "and more_batches"]
    assert long_rule["full"] == '$.sql.status == "FINISHED" && $.sql.more_batches == true'
    # however wide the graph, it opens with its start in view
    assert driver.execute_script(
        "const s = document.querySelector('g.nodes > g[data-node]').getBoundingClientRect(),"
        " c = document.getElementById('graph-scroll').getBoundingClientRect();"
        "return s.left >= c.left && s.right <= c.right && s.top >= c.top && s.bottom <= c.bottom;"
    )
    assert all(len(line) <= LABEL_CHARS for label in found["labels"] for line in label["lines"])
    save_screenshots(driver, kind)


def test_the_whole_graph_can_be_seen_by_zooming_out_and_read_at_actual_size(driver, tmp_path):
    open_report(driver, load_view("succeeded"), tmp_path)
    scroller = driver.find_element("css selector", "#graph-scroll")
    svg = driver.find_element("css selector", "#graph-scroll svg")

    def fits() -> bool:
        return driver.execute_script(
            "const [s, c] = arguments; const a = s.getBoundingClientRect(), "
            "b = c.getBoundingClientRect(); return a.left >= b.left - 1 && a.top >= b.top - 1 "
            "&& a.right <= b.right + 1 && a.bottom <= b.bottom + 1;",
            svg,
            scroller,
        )

    assert float(svg.get_attribute("data-scale")) == 1.0  # opens at actual size
    driver.find_element("css selector", '[data-zoom="fit"]').click()
    assert fits()
    driver.find_element("css selector", '[data-zoom="reset"]').click()
    assert float(svg.get_attribute("data-scale")) == 1.0
    assert layout_defects(driver.execute_script(MEASURE)) == []


def test_the_choice_states_details_list_its_rules_in_full(driver, tmp_path):
    from selenium.webdriver.common.by import By

    open_report(driver, load_view("succeeded"), tmp_path)
    label = driver.find_element(By.CSS_SELECTOR, 'g.edge-label[data-source="SubsetBatchDone?"]')
    label.click()  # a rule's label opens its Choice state's details
    panel = visible_panel(driver)
    assert "SubsetBatchDone?" in panel.text
    assert '$.sql.status == "FINISHED" && $.sql.more_batches == true → SubmitSubset' in panel.text
    assert "otherwise → WaitForSubset" in panel.text


def test_the_months_figures_and_maps_show_in_the_page(driver, tmp_path):
    from PIL import Image

    view = load_view("succeeded")
    prefix = "summary/2026_08_01/runs/recorded-succeeded/"  # tests/record_executions.py
    outputs = tmp_path / "outputs" / prefix
    outputs.mkdir(parents=True)
    for name, colour in (("figure_richness_state.png", "teal"), ("map_richness_county.png", "red")):
        Image.new("RGB", (320, 200), colour).save(outputs / name)
    (tmp_path / "execution.json").write_text("{}")  # a run record: report.html beside outputs/
    path = write_report(view, tmp_path / "report.html")
    driver.get(path.resolve().as_uri())
    shown = driver.execute_script(
        "return [...document.querySelectorAll('#figures img')].map(i => "
        "[i.getAttribute('src'), i.naturalWidth, i.alt]);"
    )
    assert shown == [
        [f"outputs/{prefix}figure_richness_state.png", 320, "Figure: richness state"],
        [f"outputs/{prefix}map_richness_county.png", 320, "Map: richness county"],
    ]


# -- behaviour ---------------------------------------------------------------------------------


def dom_statuses(driver) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for el in driver.find_elements("css selector", "[data-state]"):
        found.setdefault(el.get_attribute("data-state"), []).append(el.get_attribute("data-status"))
    return found


def check_graph_matches_model(driver, view):
    found = dom_statuses(driver)
    assert set(found) == set(view.states)
    for name, run in view.states.items():
        assert found[name] == [run.status], name


def visible_panel(driver):
    from selenium.webdriver.common.by import By

    panels = [p for p in driver.find_elements(By.CSS_SELECTOR, ".state-detail") if p.is_displayed()]
    assert len(panels) == 1
    return panels[0]


def click_state(driver, name):
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.CSS_SELECTOR, f'g.state[data-state="{name}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()
    return visible_panel(driver)


def test_succeeded_report(driver, tmp_path):
    view = load_view("succeeded")
    open_report(driver, view, tmp_path)
    check_graph_matches_model(driver, view)
    found = dom_statuses(driver)
    assert all(found[name] == [SUCCEEDED] for name in SUCCESS_PATH)
    for name in ("CleanupTasks", "WorkflowFailed", "NoSnapshotYet", "AlreadyProcessed"):
        assert found[name] == [NOT_RUN]
    panel = click_state(driver, "CalcStats")
    assert "CalcStats" in panel.text and '"month": "2026-08"' in panel.text


def test_failed_report(driver, tmp_path):
    from selenium.webdriver.common.by import By

    view = load_view("failed")
    links = {"AnnotateRiis": [("annotate_riis log", "file:///tmp/annotate_riis.log")]}
    open_report(driver, view, tmp_path, links)
    check_graph_matches_model(driver, view)
    found = dom_statuses(driver)
    assert found["AnnotateRiis"] == [FAILED]
    assert found["SubsetAndAnnotate"] == [CAUGHT]
    assert found["CleanupTasks"] == [SUCCEEDED]
    assert found["WorkflowFailed"] == [FAILED]
    assert "FileNotFoundError" in driver.find_element(By.TAG_NAME, "header").text
    catch = driver.find_elements(By.CSS_SELECTOR, "path.edge-catch[stroke-dasharray]")
    assert len(catch) == 9  # the ASL's Catch rules (test_report.py lists them)
    assert all(el.value_of_css_property("stroke-dasharray") != "none" for el in catch)
    assert driver.find_elements(By.CSS_SELECTOR, "rect.cluster")  # the branch boxes
    panel = click_state(driver, "AnnotateRiis")
    assert "AnnotateRiis" in panel.text
    assert "FileNotFoundError" in panel.text and '"month": "2026-07"' in panel.text
    link = panel.find_element(By.LINK_TEXT, "annotate_riis log")
    assert link.get_attribute("href") == "file:///tmp/annotate_riis.log"


def test_running_report_and_event_filter(driver, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    view = load_view("running")
    open_report(driver, view, tmp_path)
    check_graph_matches_model(driver, view)
    assert RUNNING in {s for statuses in dom_statuses(driver).values() for s in statuses}
    panel = click_state(driver, "WaitForSubset")
    assert "WaitForSubset" in panel.text and "RUNNING" in panel.text
    assert '"poll_seconds"' in panel.text  # its input

    bars = driver.find_elements(By.CSS_SELECTOR, "#timeline .tl-bar")
    assert len(bars) == sum(len(r.intervals) for r in view.states.values())

    def visible_rows():
        rows = driver.find_elements(By.CSS_SELECTOR, "#events tbody tr")
        return [r for r in rows if r.is_displayed()]

    assert len(visible_rows()) == len(view.events)
    Select(driver.find_element(By.ID, "filter-type")).select_by_value("TaskScheduled")
    rows = visible_rows()
    expected = sum(e["type"] == "TaskScheduled" for e in view.events)
    assert 0 < len(rows) == expected < len(view.events)
    Select(driver.find_element(By.ID, "filter-state")).select_by_value("SubmitSubset")
    assert len(visible_rows()) == view.states["SubmitSubset"].attempts
    Select(driver.find_element(By.ID, "filter-type")).select_by_value("")
    Select(driver.find_element(By.ID, "filter-state")).select_by_value("")
    driver.find_element(By.ID, "filter-text").send_keys("ExecutionStarted")
    assert len(visible_rows()) == 1
