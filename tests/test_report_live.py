"""The report's live page (issue 15): report_body's data-live parts are what live_update sends,
log links can point where the serving page says, and in headless Chromium live.js follows a
running execution to its end, keeping what the reader chose (test_report_browser.py tests the
static page)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_report_browser import MEASURE, click_state, layout_defects, load_view

from bisonflow.history.report import (
    live_script,
    live_update,
    render_report,
    report_body,
    report_head,
    report_scripts,
)
from bisonflow.history.report.live import LIVE_PARTS
from bisonflow.history.terminal import log_links

KINDS = ("succeeded", "failed", "running")
LINKS = {"CalcStats": [("calc_stats log", "/logs/lambda/calc_stats.log")]}
FIGURES = [("map_richness_county.png", "outputs/map_richness_county.png")]


class _LiveParts(HTMLParser):
    """Each data-live element's inner HTML, cut from the page's own text at the element's
    start tag and its matching end tag (divs counted), independently of how it was built."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self.text = text
        self.lines = [0]
        for line in text.splitlines(keepends=True):
            self.lines.append(self.lines[-1] + len(line))
        self.parts: dict[str, str] = {}
        self.open: list[tuple[str, int, int]] = []  # name, content start, div depth
        self.depth = 0
        self.feed(text)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self.lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "div":
            return
        self.depth += 1
        name = dict(attrs).get("data-live")
        if name:
            start = self._offset() + len(self.get_starttag_text() or "")
            self.open.append((name, start, self.depth))

    def handle_endtag(self, tag: str) -> None:
        if tag != "div":
            return
        if self.open and self.open[-1][2] == self.depth:
            name, start, _ = self.open.pop()
            self.parts[name] = self.text[start : self._offset()]
        self.depth -= 1


@pytest.mark.parametrize("kind", KINDS)
def test_live_parts_are_the_pages_data_live_contents(kind):
    view = load_view(kind)
    figures = FIGURES if kind == "succeeded" else []
    update = live_update(view, LINKS, figures)
    page = _LiveParts(report_body(view, LINKS, figures)).parts
    assert list(page) == list(LIVE_PARTS)
    assert page == update["parts"]
    assert json.loads(json.dumps(update)) == update
    assert update["status"] == view.status
    assert update["running"] is (kind == "running")
    if kind == "succeeded":
        assert "map_richness_county.png" in update["parts"]["figures"]
        assert "figures and maps" in update["parts"]["header"]
    assert 'href="/logs/lambda/calc_stats.log"' in update["parts"]["details"]


@pytest.mark.parametrize("kind", KINDS)
def test_live_states_are_the_views_and_the_graphs_type_lines(kind):
    view = load_view(kind)
    states = live_update(view)["states"]
    assert set(states) == set(view.states)
    assert {name: s["status"] for name, s in states.items()} == {
        name: run.status for name, run in view.states.items()
    }
    body = report_body(view)
    for name, state in states.items():
        node = re.search(
            rf'<g class="state" data-node="{re.escape(name)}".*?<title>(.*?)</title>'
            r'.*?<text class="type"[^>]*>(.*?)</text>',
            body,
        )
        assert node, name
        assert state["title"] == node[1]
        assert state["label"] == re.sub(r"<[^>]+>", "", node[2])
        assert state["label"].endswith(" · " + state["status"])
    visits = {name: run.visits for name, run in view.states.items()}
    twice = next(name for name, n in visits.items() if n > 1)
    assert f"×{visits[twice]}" in states[twice]["label"]


def test_report_html_is_head_body_and_scripts_in_one_page():
    view = load_view("failed")
    html = render_report(view, LINKS)
    head, body, scripts = report_head(), report_body(view, LINKS), report_scripts()
    assert html.index(head) < html.index("</head><body>") < html.index(body) < html.index(scripts)
    assert "<script" not in body and "<style" not in body and "<html" not in body


def test_live_script_follows_a_url_that_cannot_end_the_script():
    script = live_script("live.json?next=</script>", 250)
    assert script.count("</script>") == 1 and script.endswith("</script>")
    assert 'BisonLive.follow("live.json?next=\\u003c/script>", 250);' in script
    assert "BisonLive.follow(" not in live_script().replace("function follow", "")


def test_log_links_are_made_by_the_url_function(tmp_path):
    view = load_view("succeeded")
    instance = next(
        json.loads(e["taskSubmittedEventDetails"]["output"])["Payload"]["instance_id"]
        for e in view.events
        if e["type"] == "TaskSubmitted"
    )
    logs = tmp_path / "logs"
    for file in ("lambda/bisonflow-check_gbif.log", f"tasks/{instance}.log"):
        (logs / file).parent.mkdir(parents=True, exist_ok=True)
        (logs / file).write_text("a log line\n")

    def url_of(path: Path) -> str:
        return "/logs/" + path.relative_to(logs).as_posix()

    served = log_links(view, "us-east-1", logs, url_of=url_of)
    assert served["CheckGbif"] == [
        ("/aws/lambda/bisonflow-check_gbif", "/logs/lambda/bisonflow-check_gbif.log")
    ]
    assert ("bison_task/" + instance, f"/logs/tasks/{instance}.log") in served["AnnotateRiis"]
    assert {url for links in served.values() for _, url in links} == {
        "/logs/lambda/bisonflow-check_gbif.log",
        f"/logs/tasks/{instance}.log",
    }
    default = log_links(view, "us-east-1", logs)
    assert default["CheckGbif"][0][1] == (logs / "lambda/bisonflow-check_gbif.log").as_uri()
    details = live_update(view, served)["parts"]["details"]
    assert 'href="/logs/lambda/bisonflow-check_gbif.log"' in details


# -- in the browser ------------------------------------------------------------------------------

#: How often the page polls, in milliseconds.
INTERVAL_MS = 100


class _Server:
    """The page and its live.json on 127.0.0.1: the first poll is answered with `first`, the
    next ones with `then` once release is set (so the test acts on the page in between)."""

    def __init__(self, page: str, first: dict[str, Any], then: dict[str, Any]) -> None:
        self.release = threading.Event()
        self.polls = 0
        answers = {"/": ("text/html", page.encode())}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/live.json":
                    server.polls += 1
                    if server.polls > 1:
                        server.release.wait(10)
                    answer = first if server.polls == 1 else then
                    body, kind = json.dumps(answer).encode(), "application/json"
                elif self.path in answers:
                    kind, body = answers[self.path]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served_live_page() -> Iterator[tuple[_Server, Any, Any]]:
    running, succeeded = load_view("running"), load_view("succeeded")
    page = "\n".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            report_head(),
            "</head><body>",
            report_body(running),
            report_scripts(),
            live_script("live.json", INTERVAL_MS),
            "</body></html>",
        ]
    )
    server = _Server(page, live_update(running), live_update(succeeded))
    yield server, running, succeeded
    server.close()


def _wait(driver, script: str, expected: Any, timeout: float = 10) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script) == expected)


STATUS = "return document.body.dataset.executionStatus"
#: Each state's data-status in the graph, and the state details shown, each in one WebDriver
#: call (a call per element, as test_report_browser's helpers make, takes seconds here).
GRAPH = (
    "return Object.fromEntries([...document.querySelectorAll('g.state')]"
    ".map(g => [g.dataset.state, g.dataset.status]));"
)
SHOWN = (
    "return [...document.querySelectorAll('.state-detail')].filter(p => !p.hidden)"
    ".map(p => [p.dataset.detail, p.textContent]);"
)


def test_the_live_page_follows_the_execution_and_keeps_the_readers_choices(
    driver, served_live_page
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    server, running, succeeded = served_live_page
    driver.get(server.url)
    _wait(driver, STATUS, "RUNNING")  # the first poll, answered at once
    assert driver.execute_script(GRAPH) == {n: r.status for n, r in running.states.items()}
    panel = click_state(driver, "WaitForSubset")
    assert "RUNNING" in panel.text
    Select(driver.find_element(By.ID, "filter-type")).select_by_value("TaskScheduled")
    text = driver.find_element(By.ID, "filter-text")
    text.send_keys("task")  # every TaskScheduled row says so

    driver.execute_script(
        "window.updates = []; document.addEventListener('bison:update',"
        " e => window.updates.push(e.detail.status));"
    )
    server.release.set()
    _wait(driver, STATUS, "SUCCEEDED")
    assert driver.execute_script(GRAPH) == {n: r.status for n, r in succeeded.states.items()}
    labels = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('g.state')].map(g =>"
        " [g.dataset.state, g.querySelector('text.type').textContent]));"
    )
    states = live_update(succeeded)["states"]
    assert labels == {name: s["label"] for name, s in states.items()}
    assert layout_defects(driver.execute_script(MEASURE)) == []  # longer lines still fit
    # the state chosen before the update is still the one shown, with its new facts
    ((shown_name, shown_text),) = driver.execute_script(SHOWN)
    assert shown_name == "WaitForSubset" and "SUCCEEDED" in shown_text
    selected = driver.find_elements(By.CSS_SELECTOR, "g.state.selected")
    assert [g.get_attribute("data-state") for g in selected] == ["WaitForSubset"]
    # the filters kept their values, the text one its focus, and apply to the new rows
    assert Select(driver.find_element(By.ID, "filter-type")).first_selected_option.text == (
        "TaskScheduled"
    )
    assert driver.execute_script("return document.activeElement.id") == "filter-text"
    shown = driver.execute_script(  # one call: a WebDriver call per row takes seconds
        "return [...document.querySelectorAll('#events tbody tr')].filter(r => !r.hidden)"
        ".map(r => r.dataset.type);"
    )
    expected = sum(e["type"] == "TaskScheduled" for e in succeeded.events)
    assert expected > sum(e["type"] == "TaskScheduled" for e in running.events)
    assert shown == ["TaskScheduled"] * expected
    assert "still running" not in driver.find_element(By.TAG_NAME, "header").text
    # the swapped sections are as clickable as the first ones
    driver.find_element(By.CSS_SELECTOR, '.tl-name[data-name="CalcStats"]').click()
    assert [name for name, _ in driver.execute_script(SHOWN)] == ["CalcStats"]
    # no more polls once the execution stopped running
    assert driver.execute_script("return document.body.dataset.following") == "stopped"
    assert driver.execute_script("return window.updates") == ["SUCCEEDED"]
    polls = server.polls
    time.sleep(5 * INTERVAL_MS / 1000)
    assert server.polls == polls == 2

    # a type line that outgrows its node's box has the graph laid out again, at the same zoom
    update = live_update(succeeded)
    name = min(update["states"], key=len)
    state = update["states"][name]
    state["label"] = state["label"].replace(" · ", " ×1234567890123456 · ", 1)
    width = (
        f"return document.querySelector('g.state[data-state=\"{name}\"] > rect').getBBox().width"
    )
    before = driver.execute_script(width)
    driver.execute_script("BisonLive.update(arguments[0])", update)
    assert driver.execute_script(width) > before
    assert layout_defects(driver.execute_script(MEASURE)) == []
