"""The console in headless Chromium (issue 15), on the test session's local runtime, started the
way `bisonflow local up` starts it (bisonflow.local.console): open its URL, start an execution
from the form, watch the graph reach SUCCEEDED live, click a state and read its output, see the
month's maps; an invalid month refused in the form with the schema's message; a stop from the
page ends the execution and its task; a request without the token refused.

(`bisonflow local up` printing this URL is tested in tests/test_new_user_commands.py.)
Screenshots go to BISONFLOW_TEST_ARTIFACTS (default build/test-artifacts/)console/.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SUCCESS_PATH, launched_instance, wait_for_end
from test_report_browser import ARTIFACTS

from bisonflow.console.server import NO_TOKEN, ConsoleServer
from bisonflow.history.executions import list_executions
from bisonflow.local.console import local_console
from bisonflow.local.runtime import LocalRuntime
from bisonflow.schemas import DEFINITIONS
from bisonflow.steps.scheduled_start import scheduled_execution_name

#: Months no other test file runs (the runtime is shared by the files on one worker).
STARTED_MONTH = "2032-01"
STOPPED_MONTH = "2032-02"
SHOTS = ARTIFACTS.parent / "console"
#: Seconds a whole month may take on two busy cores.
MONTH_SECONDS = 300


@pytest.fixture(scope="module")
def console(runtime: LocalRuntime) -> Iterator[ConsoleServer]:
    with local_console(runtime) as server:
        yield server


@pytest.fixture(scope="module")
def browser(driver: Any) -> Any:
    """The test process's Chromium (tests/conftest.py)."""
    return driver


def fetch(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """(status, body) of a GET, or a POST of `data` as a form."""
    body = None if data is None else urllib.parse.urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


def wait_until(browser: Any, script: str, timeout: float, what: str) -> Any:
    """The first truthy value of `script` in the page, looked at twice a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / "timed-out.png"))
    raise AssertionError(f"{what}: not within {timeout} s (screenshot {SHOTS}/timed-out.png)")


def execution_status(browser: Any) -> str | None:
    return browser.execute_script("return document.body.dataset.executionStatus")


def foreign_requests(browser: Any, origin: str) -> list[str]:
    """Every resource the page loaded from anywhere but the console's origin."""
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return [url for url in loaded if not url.startswith(origin)]


# -- the session token and the server's refusals ------------------------------------------------


def test_a_request_without_the_token_is_refused(console: ConsoleServer) -> None:
    assert fetch(console.origin + "/") == (403, NO_TOKEN + "\n")
    assert fetch(console.origin + "/executions")[0] == 403
    wrong = console.url.replace(console.token, console.token[::-1])
    assert fetch(wrong)[0] == 403
    # The log files it serves are the runtime's, and nothing outside their folder.
    assert fetch(console.url + "logs/../../../../etc/passwd")[0] == 404
    status, page = fetch(console.url)
    assert status == 200
    where = console.connection.where
    assert where in page.replace("&#x27;", "'") and "us-east-1" in where
    assert console.connection.account in where


def test_state_changes_need_a_post_from_this_origin(console: ConsoleServer) -> None:
    stop = console.url + "executions/arn:aws:states:us-east-1:123456789012:execution:x:y/stop"
    status, text = fetch(stop)
    assert status == 405 and "takes POST" in text
    assert fetch(console.url, headers={"Host": "attacker.example:80"})[0] == 403  # rebound DNS
    # A page of another site that somehow had the URL still cannot post from its origin.
    status, text = fetch(
        console.url + "start", {"month": "2032-03"}, {"Origin": "http://attacker.example"}
    )
    assert status == 403 and "another origin" in text


# -- the start form -----------------------------------------------------------------------------


def month_problem_text() -> str:
    """What the schema itself says a month is (definitions/common.schema.json)."""
    common = json.loads((DEFINITIONS / "common.schema.json").read_text())
    return common["$defs"]["month"]["description"]


def test_an_invalid_month_is_refused_in_the_form_with_the_schemas_message(
    runtime: LocalRuntime, console: ConsoleServer, browser: Any
) -> None:
    sfn = runtime.clients["stepfunctions"]
    assert runtime.deployment
    before = len(list_executions(sfn, runtime.deployment.state_machine_arn))
    browser.get(console.url + "start")
    month = browser.find_element("id", "month")
    # A year of five digits is a month <input type="month"> holds; the schema refuses it.
    browser.execute_script(
        "arguments[0].value = '20320-01'; arguments[0].dispatchEvent(new Event('change'))", month
    )
    browser.find_element("id", "start-submit").click()
    problem = wait_until(
        browser,
        "const p = document.getElementById('month-problem'); return p && p.textContent",
        10,
        "the form's month message",
    )
    assert month_problem_text() in problem
    assert browser.current_url.endswith("/start")  # the form did not post
    # The server refuses the same input with the same words, had the browser let it through.
    status, page = fetch(console.url + "start", {"month": "2032-13"})
    assert status == 400 and month_problem_text() in page
    assert len(list_executions(sfn, runtime.deployment.state_machine_arn)) == before


def test_an_execution_started_from_the_form_is_watched_live_to_its_maps(
    runtime: LocalRuntime, console: ConsoleServer, browser: Any
) -> None:
    runtime.publish_snapshot(STARTED_MONTH)
    browser.get(console.url)
    # The Workflow page: the machine, its versions and the `live` alias routing to one, the
    # schedule's next five fire times, and (the runtime's own) fire now.
    section = {
        name: browser.find_element("id", name).text
        for name in ("state-machine", "versions", "aliases", "schedule")
    }
    assert "bison-workflow" in section["state-machine"]
    assert "bison-workflow:1" in section["versions"] and "live" in section["aliases"]
    assert len(browser.find_elements("css selector", "#next-fires tbody tr")) == 5
    assert browser.find_element("id", "fire-now").is_displayed()
    assert not browser.find_elements("css selector", ".refusal, #problem")
    browser.find_element("link text", "Start execution").click()
    name = f"console-{uuid.uuid4().hex[:8]}"
    month = browser.find_element("id", "month")
    browser.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))",
        month,
        STARTED_MONTH,
    )
    browser.find_element("id", "name").send_keys(name)
    browser.find_element("id", "start-submit").click()

    # The execution's page, while it runs: the graph restyled in place as states finish.
    wait_until(browser, "return location.pathname.includes('/executions/')", 30, "its page")
    assert name in browser.current_url
    running_then_done = wait_until(
        browser,
        "return document.body.dataset.executionStatus === 'RUNNING' && "
        "document.querySelector('g.state[data-state=\"CheckGbif\"]')"
        ".dataset.status === 'SUCCEEDED'",
        MONTH_SECONDS,
        "CheckGbif shown SUCCEEDED while the execution runs",
    )
    assert running_then_done
    browser.save_screenshot(str(_shots() / "execution-running.png"))
    wait_until(
        browser,
        "return ['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED_OUT']"
        ".includes(document.body.dataset.executionStatus)",
        MONTH_SECONDS,
        "the execution's end",
    )
    assert execution_status(browser) == "SUCCEEDED"
    statuses = browser.execute_script(
        "const s = {}; document.querySelectorAll('g.state').forEach("
        "g => s[g.dataset.state] = g.dataset.status); return s"
    )
    assert all(statuses[state] == "SUCCEEDED" for state in SUCCESS_PATH if state in statuses)

    # A state's output, as the details panel shows it.
    browser.find_element("css selector", 'g.state[data-state="CalcStats"]').click()
    panel = browser.find_element("css selector", '.state-detail[data-detail="CalcStats"]')
    assert panel.is_displayed()
    assert "summary_prefix" in panel.text
    # Its task's log, served by the console from the runtime's log folder (not file://).
    logs = [a.get_attribute("href") for a in panel.find_elements("css selector", ".log-links a")]
    tasks = [href for href in logs if href.startswith(console.url + "logs/tasks/i-")]
    assert tasks and all(href.startswith(console.url + "logs/") for href in logs), logs
    status, text = fetch(tasks[0])
    assert status == 200 and text.strip()
    width = browser.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], f"the page is {width[0]} px wide in a {width[1]} px window"
    browser.execute_script(  # the whole graph ("fit") at the window's top, the details beside
        "document.querySelector('[data-zoom=fit]').click();"
        "const section = document.getElementById('graph-scroll').closest('section');"
        "window.scrollTo(0, section.getBoundingClientRect().top + scrollY - 8);"
    )
    browser.save_screenshot(str(_shots() / "execution-succeeded.png"))  # docs/console.png

    # report.html to keep: self-contained, its figures inlined, as the console role may read.
    download = browser.find_element("id", "download-report").get_attribute("href")
    with urllib.request.urlopen(download, timeout=60) as answer:
        disposition = answer.headers["Content-Disposition"]
        report = answer.read().decode()
    assert disposition == f'attachment; filename="{name}.report.html"'
    assert report.count('src="data:image/png;base64,') >= 6 and "SUCCEEDED" in report

    # The month's maps, inline on its outputs page, every image loaded from the console.
    browser.find_element("link text", "Outputs").click()
    images = wait_until(
        browser,
        "const imgs = [...document.querySelectorAll('#gallery img')];"
        "return imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0) && "
        "imgs.map(i => i.alt)",
        30,
        "the month's figures and maps",
    )
    assert any("Map" in alt for alt in images), images
    browser.save_screenshot(str(_shots() / "outputs.png"))
    assert foreign_requests(browser, console.origin) == []
    sfn = runtime.clients["stepfunctions"]
    assert runtime.deployment
    (started,) = [
        e for e in list_executions(sfn, runtime.deployment.state_machine_arn) if e["name"] == name
    ]
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert json.loads(described["input"]) == {"month": STARTED_MONTH}


def test_a_stop_from_the_page_ends_the_execution_and_its_task(
    runtime: LocalRuntime, console: ConsoleServer, browser: Any
) -> None:
    runtime.publish_snapshot(STOPPED_MONTH)
    # The task's instance is held running with its work not done (as in test_faults_stopped),
    # so only the stop can end it.
    runtime.agent.paused = True
    try:
        arn = runtime.start_execution(STOPPED_MONTH, name=f"console-stop-{uuid.uuid4().hex[:8]}")
        instance = launched_instance(runtime, arn.rsplit(":", 1)[1])
        browser.get(console.url + "executions/" + arn)
        assert execution_status(browser) == "RUNNING"
        # The first update puts its own copy of every part in, the Stop button's included.
        wait_until(browser, "return Number(document.body.dataset.updates) > 0", 30, "an update")
        browser.find_element("id", "stop").click()
        browser.switch_to.alert.accept()  # "Stop ...? Step Functions ends it ABORTED; ..."
        wait_until(
            browser,
            "return document.body.dataset.executionStatus === 'ABORTED'",
            60,
            "the page showing the execution ABORTED",
        )
    finally:
        runtime.agent.paused = False
    assert wait_for_end(runtime, arn)["status"] == "ABORTED"
    ec2 = runtime.clients["ec2"]
    deadline = time.monotonic() + 90
    while True:
        state = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
            "State"
        ]["Name"]
        if state in ("shutting-down", "terminated"):
            break
        assert time.monotonic() < deadline, f"the task's instance is still {state}"
        time.sleep(0.5)
    assert not browser.find_elements("id", "stop")  # nothing left to stop
    # Stopped inside SubsetAndAnnotate: Step Functions would redrive it from there.
    assert (
        runtime.clients["stepfunctions"].describe_execution(executionArn=arn)["redriveStatus"]
        == "REDRIVABLE"
    )
    assert browser.find_element("id", "redrive").text == "Redrive from SubsetAndAnnotate"


def test_fire_now_starts_the_months_run_as_the_schedule_would(
    runtime: LocalRuntime, console: ConsoleServer, browser: Any
) -> None:
    """The Workflow page's "fire now" (the runtime's own: EventBridge Scheduler's part) starts
    the scheduled run of the current month through the schedule's target, and the page
    follows it. The month has no snapshot here, so the run waits for one, and is stopped."""
    browser.get(console.url)
    browser.find_element("id", "fire-now").click()
    browser.switch_to.alert.accept()
    month = time.strftime("%Y-%m", time.gmtime())
    name = scheduled_execution_name(month)
    wait_until(browser, f"return location.pathname.endsWith(':{name}')", 60, "the run's page")
    assert runtime.deployment
    arn = f"{runtime.deployment.state_machine_arn}:{name}".replace(":stateMachine:", ":execution:")
    sfn = runtime.clients["stepfunctions"]
    started = json.loads(sfn.describe_execution(executionArn=arn)["input"])
    assert started["scheduled_time"].startswith(month), started
    if execution_status(browser) == "RUNNING":
        sfn.stop_execution(executionArn=arn)
        assert wait_for_end(runtime, arn)["status"] == "ABORTED"


def _shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
