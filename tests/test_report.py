"""report.html: graph of the ASL, and the page itself opened in headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import SUCCESS_PATH

from bisonflow.execution_view import CAUGHT, FAILED, NOT_RUN, RUNNING, SUCCEEDED, build_view
from bisonflow.report import render_report, write_report
from bisonflow.report.graph import (
    BRANCH,
    CATCH,
    CHOICE,
    DEFAULT,
    END,
    END_OF_BRANCH,
    NEXT,
    START,
    asl_graph,
    layout,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "executions"
ASL = json.loads((ROOT / "statemachines" / "bison_workflow.asl.json").read_text())
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def load_view(kind: str):
    folder = DATA / kind
    return build_view(
        json.loads((folder / "execution.json").read_text()),
        (folder / "definition.json").read_text(),
        json.loads((folder / "history.json").read_text())["events"],
    )


# -- graph.py --------------------------------------------------------------------------------


def edges_of(graph, kind):
    return {(e.source, e.target): e.label for e in graph.edges if e.kind == kind}


def test_every_state_is_a_node_with_its_branch():
    graph = asl_graph(ASL)
    states = [n for n in graph.nodes.values() if n.is_state]
    assert len(states) == 22
    assert {START, END} <= set(graph.nodes)
    branches = {key: sorted(n.name for n in nodes) for key, nodes in graph.branches().items()}
    assert branches == {
        ("SubsetAndAnnotate", 0): sorted(
            [
                "StartSubset",
                "SubmitSubset",
                "WaitForSubset",
                "PollSubset",
                "SubsetBatchDone?",
                "SubsetDone",
            ]
        ),
        ("SubsetAndAnnotate", 1): ["AnnotateRiis"],
    }


def test_edges_of_the_real_asl_have_kinds_and_labels():
    graph = asl_graph(ASL)
    choice = edges_of(graph, CHOICE)
    assert choice[("SnapshotReady?", "NoSnapshotYet")] == "$.snapshot_exists == false"
    assert choice[("SnapshotReady?", "AlreadyProcessed")] == "$.already_processed == true"
    assert choice[("SubsetBatchDone?", "SubmitSubset")] == (
        '$.sql.status == "FINISHED" && $.sql.more_batches == true'
    )
    assert ("SnapshotReady?", "SubsetAndAnnotate") in edges_of(graph, DEFAULT)
    assert ("SubsetBatchDone?", "WaitForSubset") in edges_of(graph, DEFAULT)
    catch = edges_of(graph, CATCH)
    assert set(catch) == {
        (s, "CleanupTasks")
        for s in [
            "CheckGbif",
            "SubsetAndAnnotate",
            "SubmitAssignAndAggregate",
            "PollAssignAndAggregate",
            "CalcStats",
        ]
    } | {("CleanupTasks", "WorkflowFailed")}
    assert set(catch.values()) == {"States.ALL"}
    assert set(edges_of(graph, BRANCH)) == {
        ("SubsetAndAnnotate", "StartSubset"),
        ("SubsetAndAnnotate", "AnnotateRiis"),
    }
    assert set(edges_of(graph, END_OF_BRANCH)) == {
        ("SubsetDone", "StartAssignAndAggregate"),
        ("AnnotateRiis", "StartAssignAndAggregate"),
    }
    nexts = edges_of(graph, NEXT)
    assert ("CleanupTasks", "WorkflowFailed") in nexts
    assert ("Published", END) in nexts and (START, "CheckGbif") in nexts


def test_layout_places_every_node_and_routes_loops():
    graph = layout(asl_graph(ASL))
    boxes = [(n.x, n.y) for n in graph.nodes.values()]
    assert len(set(boxes)) == len(boxes)  # no two nodes on top of each other
    for node in graph.nodes.values():
        assert node.w / 2 <= node.x <= graph.width - node.w / 2
        assert node.h / 2 <= node.y <= graph.height - node.h / 2
    back = {(e.source, e.target) for e in graph.edges if e.back}
    assert ("SubsetBatchDone?", "SubmitSubset") in back
    assert ("AssignAndAggregateBatchDone?", "WaitForAssignAndAggregate") in back
    assert all(len(e.points) >= 2 for e in graph.edges)
    # top to bottom: the start above CheckGbif above the Parallel above its branches
    ys = {n.name: n.y for n in graph.nodes.values()}
    assert ys[START] < ys["CheckGbif"] < ys["SubsetAndAnnotate"] < ys["StartSubset"]


# -- the page without a browser --------------------------------------------------------------


@pytest.mark.parametrize("kind", ["succeeded", "failed", "running"])
def test_report_loads_nothing_from_the_network(kind):
    link = ("CloudWatch", "https://console.aws.amazon.com/cloudwatch/home#logsV2:x")
    html = render_report(load_view(kind), {"CalcStats": [link]})
    lowered = html.lower()
    for needle in ("<script src", "<link", "@import", "url(http", "<img", "<iframe"):
        assert needle not in lowered, needle
    remote = re.findall(r"""(?:src|href)\s*=\s*["']?\s*((?:https?:)?//[^"'\s>]*)""", html, re.I)
    assert remote == [link[1]]  # only the log link the caller gave


def test_report_escapes_causes():
    view = load_view("failed")
    view.states["AnnotateRiis"].cause = "<script>alert(1)</script> & </pre>"
    html = render_report(view)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;/pre&gt;" in html


# -- the page in headless Chromium -----------------------------------------------------------


def _browser_missing() -> str | None:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        install = ROOT / "scripts" / "install-browser"
        result = subprocess.run([str(install)], capture_output=True, text=True)
        if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            return (
                "headless Chromium could not be installed (scripts/install-browser failed: "
                f"{(result.stderr or result.stdout).strip()[-300:]}); browser tests skipped"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]'); browser tests skipped"
    return None


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(argument)
    browser = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    browser.set_window_size(1600, 1200)
    yield browser
    browser.quit()


def open_report(driver, view, tmp_path, log_links=None):
    path = write_report(view, tmp_path / "report.html", log_links)
    driver.get(path.resolve().as_uri())
    png = tmp_path / "report.png"
    assert driver.save_screenshot(str(png))
    assert png.exists() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return driver


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


def click_state(driver, name):
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'g.state[data-state="{name}"]').click()
    panels = [p for p in driver.find_elements(By.CSS_SELECTOR, ".state-detail") if p.is_displayed()]
    assert len(panels) == 1
    return panels[0]


def test_succeeded_report(driver, tmp_path):
    view = load_view("succeeded")
    open_report(driver, view, tmp_path)
    check_graph_matches_model(driver, view)
    found = dom_statuses(driver)
    assert all(found[name] == [SUCCEEDED] for name in SUCCESS_PATH)
    for name in ("CleanupTasks", "WorkflowFailed", "NoSnapshotYet", "AlreadyProcessed"):
        assert found[name] == [NOT_RUN]
    panel = click_state(driver, "CalcStats")
    assert "CalcStats" in panel.text and '"month": "2026-09"' in panel.text


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
    assert len(catch) == 6
    assert all(el.value_of_css_property("stroke-dasharray") != "none" for el in catch)
    assert driver.find_elements(By.CSS_SELECTOR, "rect.cluster")  # the branch boxes
    panel = click_state(driver, "AnnotateRiis")
    assert "AnnotateRiis" in panel.text
    assert "FileNotFoundError" in panel.text and '"month": "2026-08"' in panel.text
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
