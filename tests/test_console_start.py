"""The console's start form: its fields follow the workflow's input schema, its browser checks
(the schema's pattern, Step Functions' name rule as a regular expression) agree with the
server's, and POST /start refuses what the schema or the rule refuses (400, the rule's words
by the field, nothing started) and starts the rest, as `bisonflow start` does.

The handler is driven through the console server's own dispatch (ConsoleServer.answer) with a
stand-in Step Functions client: the seam is the boto3 client, so no emulator is needed. The
browser checks run the page's own HTML and start_form.js in headless Chromium.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import urlencode

import pytest
from botocore.exceptions import ClientError

from bisonflow import layout
from bisonflow.console.pages import execution_path
from bisonflow.console.pages import start as start_page
from bisonflow.console.server import ConsoleServer, Request
from bisonflow.console.start_form import (
    NAME,
    NOT_IN_FORM,
    FormError,
    FormProblems,
    Submission,
    form_fields,
    start_request,
)
from bisonflow.layout import (
    EXECUTION_NAME_MAX,
    EXECUTION_NAME_RULE,
    execution_name_pattern,
    execution_name_problem,
)
from bisonflow.schemas import DEFINITIONS, SchemaViolation, properties, workflow_input

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:bison-workflow"
STARTED = "arn:aws:states:us-east-1:123456789012:execution:bison-workflow:run-1"
SCHEMA = json.loads((DEFINITIONS / "check_gbif.input.schema.json").read_text())
MONTH = json.loads((DEFINITIONS / "common.schema.json").read_text())["$defs"]["month"]
BAD_MONTH = "20260-01"  # a valid HTML month (5-digit year) that the schema refuses


# -- the form follows the schema ------------------------------------------------------------


def test_every_input_property_is_a_field_or_left_out_with_a_reason() -> None:
    in_form = [f.name for f in form_fields() if f.in_input]
    assert sorted(in_form + list(NOT_IN_FORM)) == sorted(SCHEMA["properties"])
    assert not set(in_form) & set(NOT_IN_FORM)
    assert [f.name for f in form_fields()][-1] == NAME  # the name, which is not input


def test_the_month_field_carries_the_schemas_pattern_and_words() -> None:
    month = next(f for f in form_fields() if f.name == "month")
    assert month.control == "month"
    assert month.pattern == MONTH["pattern"]
    assert month.description == MONTH["description"]
    force = next(f for f in form_fields() if f.name == "force")
    assert (force.control, force.description) == (
        "checkbox",
        SCHEMA["properties"]["force"]["description"],
    )


def test_a_property_the_schema_gains_fails_the_form() -> None:
    grown = {**properties("check_gbif.input"), "region": {"type": "string"}}
    with pytest.raises(FormError, match="'region'"):
        form_fields(grown)


def test_a_property_whose_type_no_longer_fits_its_control_fails_the_form() -> None:
    changed = {**properties("check_gbif.input"), "force": {"type": "string"}}
    with pytest.raises(FormError, match="'force'"):
        form_fields(changed)


# -- the one input builder -------------------------------------------------------------------


def test_workflow_input_sets_only_what_was_given_and_names_the_field_refused() -> None:
    assert workflow_input(None, False) == {}
    assert workflow_input("2026-11", True) == {"month": "2026-11", "force": True}
    with pytest.raises(SchemaViolation, match="a calendar month as YYYY-MM") as refused:
        workflow_input(BAD_MONTH, False)
    assert refused.value.fields == ("month",)


def test_start_request_gives_each_problem_by_its_field() -> None:
    with pytest.raises(FormProblems) as refused:
        start_request(Submission(BAD_MONTH, True, "a b"))
    assert set(refused.value.problems) == {"month", NAME}
    assert MONTH["description"] in refused.value.problems["month"]
    assert "contains white space" in refused.value.problems[NAME]
    assert start_request(Submission("2026-11", False, "run-1")) == {"month": "2026-11"}


# -- the name rule as a browser's regular expression ----------------------------------------

GOOD_AND_BAD_NAMES = [
    "a",
    "run-2026-11_retry.1",
    "a+b=c@d!e'f(g)h",
    "x" * EXECUTION_NAME_MAX,
    "x" * (EXECUTION_NAME_MAX + 1),
    "\N{GRINNING FACE}" * EXECUTION_NAME_MAX,  # 80 code points, 160 UTF-16 units
    "\N{GRINNING FACE}" * (EXECUTION_NAME_MAX + 1),
    "Ölçüm-día",
    "名前",
    "\ufeffbom",  # not white space to str.isspace, though JavaScript's \s has it
    "",
    "a b",
    "a\tb",
    "a\u00a0b",
    "a\u1680b",
    "a\u2028b",
    "a\u3000b",
    "a\u001cb",
    *(f"a{c}b" for c in sorted(layout._FORBIDDEN_CHARACTERS)),
    "\x00",
    "a\x1fb",
    "a\x7fb",
    "a\x85b",
    "a\x9fb",
    "a\ud800b",
    "a\udfffb",
    "a\ufffeb",
    "a\uffffb",
    "a\U0010ffffb",
    "a\U0010fffdb",
]


def test_the_name_list_has_names_of_both_kinds() -> None:
    verdicts = {execution_name_problem(n) is None for n in GOOD_AND_BAD_NAMES}
    assert verdicts == {True, False}


@pytest.fixture
def form_page(driver, tmp_path: Path):
    """The GET page as the console serves it, opened from a file (its scripts inline)."""
    response = start_page.show_form(Fake(), request("GET"), None)
    path = tmp_path / "start.html"
    path.write_text(str(response.body), encoding="utf-8")
    driver.get(path.as_uri())
    return driver


#: Each name (as code points, so lone surrogates cross the WebDriver wire) tested by the
#: regular expression with both flags, by the name input's own pattern attribute (text inputs
#: strip newlines; these names have none) and by start_form.js's message.
_JUDGE = """
const [points, pattern] = arguments;
const input = document.getElementById('name');
const problem = document.getElementById('name-problem');
return points.map(p => {
  const name = String.fromCodePoint(...p);
  input.value = name;
  input.dispatchEvent(new Event('change'));
  return [new RegExp('^(?:' + pattern + ')$', 'v').test(name),
          new RegExp('^(?:' + pattern + ')$', 'u').test(name),
          name === '' || !input.validity.patternMismatch,
          problem.textContent === ''];
});
"""


def test_the_browsers_name_check_agrees_with_execution_name_problem(form_page) -> None:
    points = [[ord(c) for c in name] for name in GOOD_AND_BAD_NAMES]
    judged = form_page.execute_script(_JUDGE, points, execution_name_pattern())
    for name, (v_flag, u_flag, attribute, script) in zip(GOOD_AND_BAD_NAMES, judged, strict=True):
        good = execution_name_problem(name) is None
        assert (v_flag, u_flag) == (good, good), name
        if name:  # an empty field is no name: Step Functions names the execution
            assert (attribute, script) == (good, good), name


def test_an_invalid_month_is_refused_in_the_browser_with_the_schemas_words(form_page) -> None:
    month = form_page.find_element("id", "month")
    form_page.execute_script(
        "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'))",
        month,
        BAD_MONTH,
    )
    assert month.get_attribute("value") == BAD_MONTH  # the browser's own month accepts it
    shown = form_page.find_element("id", "month-problem").text
    assert MONTH["description"] in shown and BAD_MONTH in shown
    address = form_page.current_url
    form_page.find_element("id", "start-submit").click()
    assert form_page.current_url == address  # blocked: nothing was posted
    # Nothing would be sent, as the server's refused form shows it.
    assert form_page.find_element("id", "input-json").text == ""


def test_the_input_shown_follows_the_fields(form_page) -> None:
    assert json.loads(form_page.find_element("id", "input-json").text) == {}
    form_page.execute_script(
        "const m = document.getElementById('month'); m.value = '2026-11';"
        "m.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    form_page.find_element("id", "force").click()
    shown = json.loads(form_page.find_element("id", "input-json").text)
    assert shown == workflow_input("2026-11", True)
    assert form_page.find_element("id", "month-problem").text == ""


# -- POST /start without a browser -----------------------------------------------------------


class StepFunctions:
    """The stand-in boto3 client: records StartExecution, or refuses it as AWS would."""

    def __init__(self, refusal: tuple[str, str] | None = None) -> None:
        self.calls: list[dict] = []
        self.refusal = refusal

    def start_execution(self, **kwargs):
        self.calls.append(kwargs)
        if self.refusal:
            code, message = self.refusal
            raise ClientError({"Error": {"Code": code, "Message": message}}, "StartExecution")
        return {"executionArn": STARTED, "startDate": datetime(2026, 12, 7, tzinfo=UTC)}


class Fake:
    """What a page needs of bisonflow.console.connection.Connection."""

    where = "account 123456789012 · us-east-1 · stack bisonflow"
    state_machine_arn = MACHINE

    def __init__(self, refusal: tuple[str, str] | None = None) -> None:
        self.stepfunctions = StepFunctions(refusal)

    def client(self, service: str):
        assert service == "stepfunctions"
        return self.stepfunctions


def request(method: str, form: dict[str, str] | None = None, **query: str) -> Request:
    return Request(method, "/start", query, form or {}, "/token")


def post(connection: Fake, form: dict[str, str]):
    """POST /start through the console server's dispatch, as a browser's form posts it."""
    with ConsoleServer(connection, start_page.ROUTES) as server:
        headers = {"Host": f"127.0.0.1:{server.port}", "Origin": server.origin}
        body = urlencode(form).encode()
        return server, server.answer("POST", f"/{server.token}/start", headers, body)


def test_a_bad_month_is_refused_with_the_schemas_description_and_nothing_starts() -> None:
    connection = Fake()
    _, response = post(connection, {"month": BAD_MONTH, "name": ""})
    assert response.status == 400
    assert MONTH["description"] in response.body
    assert 'id="month-problem"' in response.body
    assert f'value="{BAD_MONTH}"' in response.body  # the form keeps what was typed
    assert connection.stepfunctions.calls == []


def test_a_bad_name_is_refused_with_the_rules_words_and_nothing_starts() -> None:
    connection = Fake()
    _, response = post(connection, {"month": "2026-11", "name": "run #1"})
    assert response.status == 400
    problem = execution_name_problem("run #1")
    assert problem and escape(problem) in response.body
    assert escape(EXECUTION_NAME_RULE) in response.body
    assert connection.stepfunctions.calls == []


def test_a_valid_form_starts_the_execution_and_goes_to_its_page() -> None:
    connection = Fake()
    server, response = post(connection, {"month": "2026-11", "force": "true", "name": "run-1"})
    assert response.status == 303
    location = Request("GET", "/", {}, {}, f"/{server.token}").href(execution_path(STARTED))
    assert response.headers["Location"] == location
    assert connection.stepfunctions.calls == [
        {
            "stateMachineArn": MACHINE,
            "input": json.dumps({"month": "2026-11", "force": True}),
            "name": "run-1",
        }
    ]


def test_an_empty_form_starts_this_months_default_and_lets_aws_name_it() -> None:
    connection = Fake()
    _, response = post(connection, {"month": "", "name": ""})
    assert response.status == 303
    assert connection.stepfunctions.calls == [{"stateMachineArn": MACHINE, "input": "{}"}]


def test_a_name_aws_already_has_is_refused_on_the_form_with_its_message() -> None:
    message = "Execution Already Exists: 'arn:...:run-1'"
    connection = Fake(("ExecutionAlreadyExists", message))
    _, response = post(connection, {"month": "2026-11", "name": "run-1"})
    assert response.status == 400
    assert "ExecutionAlreadyExists" in response.body
    assert escape(message) in response.body
    assert 'value="run-1"' in response.body


def test_a_refusal_the_form_cannot_fix_is_the_error_page() -> None:
    connection = Fake(("AccessDeniedException", "not authorized to perform states:StartExecution"))
    _, response = post(connection, {"month": "2026-11"})
    assert response.status == 502
    assert "AccessDeniedException" in str(response.body)


def test_get_prefills_the_month_and_names_the_state_machine() -> None:
    response = start_page.show_form(Fake(), request("GET", month="2026-11"), None)
    assert response.status == 200
    assert "<title>Start execution" in response.body
    assert MACHINE in response.body
    assert 'id="month" name="month"' in response.body and 'value="2026-11"' in response.body
    for ident in ("force", "name", "start-submit", "month-problem", "name-problem", "form-problem"):
        assert f'id="{ident}"' in response.body
    sent = escape(json.dumps({"month": "2026-11"}, indent=2))
    assert f'<pre id="input-json">{sent}</pre>' in response.body  # the input it would send
