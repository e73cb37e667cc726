"""What a month costs: the estimate from recorded executions (tests/data/executions), with
REPORT lines, statement durations and prices given or not, shown as text and in report.html.

Expected quantities are worked out here from the recorded files by hand-checkable rules (the
events' types and timestamps), not by calling the code under test twice.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bisonflow.history.cost import CostEstimate, CostLine, Prices, estimate, format_estimate
from bisonflow.history.cost_inputs import (
    estimate_execution,
    function_configuration,
    history_estimate,
    task_instance_types,
)
from bisonflow.history.execution_view import build_view
from bisonflow.history.report import render_report
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.statements import run_batches

DATA = Path(__file__).parent / "data" / "executions"
FUNCTIONS = {
    name: (256, "arm64")
    for name in (
        "check_gbif",
        "month_lock",
        "publish_month",
        "submit_statements",
        "poll_statement",
        "launch_task",
        "cleanup_task",
    )
}
INSTANCES = {"annotate_riis": "t4g.micro", "calc_stats": "t4g.small"}


def _events(kind: str) -> list[dict[str, Any]]:
    return json.loads((DATA / kind / "history.json").read_text())["events"]


def _entered(kind: str) -> int:
    """States entered: each a billed state transition (the recorded runs retried no Task)."""
    return sum(1 for e in _events(kind) if e["type"].endswith("StateEntered"))


def _lambda_calls(kind: str) -> int:
    """Lambda invocations: TaskScheduled events of resource type lambda."""
    return sum(
        1
        for e in _events(kind)
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resourceType"] == "lambda"
    )


def _sql_seconds(kind: str) -> float:
    """Seconds of SQL by the estimate's rule without Data API durations: from the submit's
    answer to the first poll that found the statement ended, summed over the statements."""
    events = _events(kind)
    by_id = {e["id"]: e for e in events}
    submitted: dict[str, float] = {}
    ended: dict[str, float] = {}
    for end in events:
        if end["type"] != "TaskSucceeded":
            continue
        start = by_id.get(by_id.get(end["previousEventId"], {}).get("previousEventId"), {})
        payload = json.loads(end["taskSucceededEventDetails"]["output"]).get("Payload")
        if start.get("type") != "TaskScheduled" or not isinstance(payload, dict):
            continue
        statement = payload.get("statement_id")
        if "submit_statements" in json.dumps(start) and statement:
            submitted.setdefault(statement, _at(end))
        elif "poll_statement" in json.dumps(start) and payload.get("status") in (
            "FINISHED",
            "FAILED",
            "ABORTED",
        ):
            ended.setdefault(statement, _at(start))
    return sum(ended[i] - at for i, at in submitted.items() if i in ended)


def _line(result: CostEstimate, service: str, item_start: str = "") -> CostLine:
    (line,) = [x for x in result.lines if x.service == service and x.item.startswith(item_start)]
    return line


def _at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def test_state_transitions_are_the_states_entered_at_the_published_price() -> None:
    events = _events("succeeded")
    entered = _entered("succeeded")
    assert entered > 20  # every state of the success path, the loops more than once
    line = _line(estimate(events, functions=FUNCTIONS, instance_types=INSTANCES), "Step Functions")
    assert line.quantity == entered
    assert line.cost == pytest.approx(entered / 1000 * 0.025)
    assert line.price_text == "$0.025 per 1,000 state transitions"
    assert "step-functions/pricing" in line.source


def test_a_task_retry_is_a_billed_transition() -> None:
    """Step Functions bills each retry as a state transition; the retry has no StateEntered."""
    call = {
        "resourceType": "lambda",
        "resource": "invoke",
        "parameters": json.dumps(
            {"FunctionName": "arn:aws:lambda:us-east-1:1:function:s-check_gbif"}
        ),
    }

    def event(n: int, kind: str, second: int, **details: Any) -> dict[str, Any]:
        at = f"2026-11-23 10:00:0{second}+00:00"
        return {"id": n, "previousEventId": n - 1, "type": kind, "timestamp": at, **details}

    events = [
        event(1, "ExecutionStarted", 0),
        event(2, "TaskStateEntered", 0),
        event(3, "TaskScheduled", 1, taskScheduledEventDetails=call),
        event(4, "TaskStarted", 1),
        event(5, "TaskFailed", 2, taskFailedEventDetails={"resourceType": "lambda"}),
        event(6, "TaskScheduled", 4, taskScheduledEventDetails=call),
        event(7, "TaskStarted", 4),
        event(8, "TaskSucceeded", 7, taskSucceededEventDetails={"output": "{}"}),
    ]
    result = estimate(events, functions=FUNCTIONS, instance_types=INSTANCES)
    assert _line(result, "Step Functions").quantity == 2
    assert "1 states entered + 1 retries" in _line(result, "Step Functions").basis
    assert _line(result, "Lambda", "requests").quantity == 2
    # 1 s and 3 s from TaskScheduled to the invocation's end, at 256 MB
    assert _line(result, "Lambda", "duration").quantity == pytest.approx(0.25 * 4)


def test_report_lines_replace_the_history_timing_of_their_function() -> None:
    events = _events("succeeded")
    polls = sum(
        1 for e in events if e["type"] == "TaskScheduled" and "poll_statement" in json.dumps(e)
    )
    assert polls >= 13  # a poll per statement at least (5 subset and 8 aggregate batches)
    calls = _lambda_calls("succeeded")
    reports = {
        "bisonflow-poll_statement": [
            "START RequestId: a Version: 1",
            "REPORT RequestId: a\tDuration: 100.01 ms\tBilled Duration: 101 ms\t"
            "Memory Size: 256 MB\tMax Memory Used: 80 MB",
            "REPORT RequestId: b\tDuration: 49.20 ms\tMemory Size: 256 MB",  # the local runtime's
        ]
    }
    with_logs = estimate(events, functions=FUNCTIONS, instance_types=INSTANCES, reports=reports)
    without = estimate(events, functions=FUNCTIONS, instance_types=INSTANCES)
    assert _line(without, "Lambda", "requests").quantity == calls
    assert _line(with_logs, "Lambda", "requests").quantity == calls - polls + 2
    # each poll: TaskScheduled -> TaskStarted -> TaskSucceeded along previousEventId (the
    # Parallel's other branch interleaves its events)
    by_id = {e["id"]: e for e in events}
    poll_history_gb_s = 0.0
    for end in events:
        started = by_id.get(end.get("previousEventId"), {})
        start = by_id.get(started.get("previousEventId"), {})
        if (
            end["type"] == "TaskSucceeded"
            and started.get("type") == "TaskStarted"
            and start.get("type") == "TaskScheduled"
            and "poll_statement" in json.dumps(start)
        ):
            poll_history_gb_s += 0.25 * (_at(end) - _at(start))
    gb_s_delta = (
        _line(without, "Lambda", "duration").quantity
        - _line(with_logs, "Lambda", "duration").quantity
    )
    assert gb_s_delta == pytest.approx(poll_history_gb_s - 0.25 * (0.101 + 0.050))
    assert "poll_statement: 2 REPORT lines" in _line(with_logs, "Lambda", "requests").basis


def test_instances_and_redshift_are_priced_only_with_the_prices_given() -> None:
    events = _events("succeeded")
    unpriced = estimate(events, functions=FUNCTIONS, instance_types=INSTANCES)
    micro = _line(unpriced, "EC2", "Spot t4g.micro")
    assert micro.item == "Spot t4g.micro (annotate_riis)"
    assert micro.quantity == pytest.approx(60 / 3600)  # 1.5 s of task, billed 60 s
    assert micro.cost is None and micro.price_text == "no price"
    redshift = _line(unpriced, "Redshift Serverless")
    assert redshift.cost is None
    sql = _sql_seconds("succeeded")
    assert sql > 0
    # one busy period at the 128 RPU base capacity, billed for at least a minute
    assert redshift.quantity == pytest.approx(128 * max(60.0, sql) / 3600)
    assert {x.service for x in unpriced.unpriced} == {"EC2", "Redshift Serverless"}

    prices = Prices(
        spot_hourly={"t4g.micro": 0.003, "t4g.small": 0.006}, rpu_hour=0.375, base_rpu=8
    )
    ids = []
    for event in events:  # the submit Lambda's answers name the statements
        if event["type"] == "TaskSucceeded":
            payload = json.loads(event["taskSucceededEventDetails"]["output"]).get("Payload")
            if isinstance(payload, dict) and "statements" in payload:
                ids.append(payload["statement_id"])
    assert len(ids) == 13  # 5 subset and 8 aggregate batches
    seconds = {statement_id: 10.0 for statement_id in ids}
    priced = estimate(
        events,
        functions=FUNCTIONS,
        instance_types=INSTANCES,
        prices=prices,
        statement_seconds=seconds,
    )
    assert _line(priced, "EC2", "Spot t4g.micro").cost == pytest.approx(0.003 / 60)
    assert _line(priced, "EC2", "Spot t4g.small").cost == pytest.approx(0.006 / 60)
    redshift = _line(priced, "Redshift Serverless")
    assert redshift.quantity == pytest.approx(8 * 130 / 3600)
    assert redshift.cost == pytest.approx(8 * 130 / 3600 * 0.375)
    assert "Data API Duration of 13 statements" in redshift.basis
    assert priced.unpriced == ()
    assert priced.total == pytest.approx(sum(line.cost or 0 for line in priced.lines))
    assert priced.total == pytest.approx(
        _entered("succeeded") / 1000 * 0.025
        + _lambda_calls("succeeded") / 1e6 * 0.20
        + _line(priced, "Lambda", "duration").quantity * 0.0000133334
        + 0.003 / 60
        + 0.006 / 60
        + 8 * 130 / 3600 * 0.375
    )


def test_a_failed_execution_counts_what_ran() -> None:
    result = estimate(_events("failed"), functions=FUNCTIONS, instance_types=INSTANCES)
    assert _line(result, "Step Functions").quantity == _entered("failed")
    assert _line(result, "Lambda", "requests").quantity == _lambda_calls("failed")
    assert _lambda_calls("failed") < _lambda_calls("succeeded")
    assert [x.item for x in result.lines if x.service == "EC2"] == [
        "Spot t4g.micro (annotate_riis)"
    ]


def test_the_template_gives_memory_architecture_and_instance_types() -> None:
    functions = function_configuration()
    assert functions["poll_statement"] == (256, "arm64")
    assert task_instance_types() == INSTANCES
    assert task_instance_types({"calc_stats": "m7g.large"})["calc_stats"] == "m7g.large"


def test_the_text_says_estimate_names_sources_and_what_is_not_priced() -> None:
    text = "\n".join(format_estimate(history_estimate(_events("succeeded"))))
    assert text.startswith("Estimated AWS cost (an ESTIMATE; prices as published on ")
    assert "Step Functions: state transitions (Standard)" in text
    assert f"{_entered('succeeded')}.0000 state transitions" in text
    assert "not priced: EC2 instance-hours, Redshift Serverless RPU-hours" in text
    assert "aws.amazon.com/step-functions/pricing" in text


def test_report_html_has_the_cost_section() -> None:
    folder = DATA / "succeeded"
    view = build_view(
        json.loads((folder / "execution.json").read_text()),
        (folder / "definition.json").read_text(),
        _events("succeeded"),
    )
    html = render_report(view)
    section = html[html.index('<section id="cost">') :]
    section = section[: section.index("</section>")]
    assert "Estimated AWS cost" in section and "<b>estimate</b>" in section
    entered = _entered("succeeded")
    assert f"{entered}.0000 state transitions" in section
    assert f"${entered / 1000 * 0.025:.6f}" in section
    assert "no price given" in section


def test_report_lines_and_statement_durations_are_read_from_the_services(
    runtime: LocalRuntime,
) -> None:
    """Through the local runtime's CloudWatch Logs and Data API: the REPORT lines logged while
    the execution ran, and DescribeStatement's Duration of the statements it submitted."""
    logs, data = runtime.clients["logs"], runtime.clients["redshift-data"]
    function = f"costtest{uuid.uuid4().hex[:6]}-submit_statements"
    group = f"/aws/lambda/{function}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    now = datetime.now(UTC)
    line = "REPORT RequestId: r\tDuration: 1999.20 ms\tMemory Size: 512 MB"
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": int(now.timestamp() * 1000), "message": line}],
    )
    statement_id = run_batches(data, [["SELECT 1"]], "bisonflow-cost-test")
    duration = data.describe_statement(Id=statement_id)["Duration"] / 1e9
    assert duration > 0

    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"

    def event(n: int, kind: str, **details: Any) -> dict[str, Any]:
        return {"id": n, "previousEventId": n - 1, "type": kind, "timestamp": now, **details}

    submitted = json.dumps({"Payload": {"statement_id": statement_id, "statements": 1}})
    events = [
        event(1, "TaskStateEntered"),
        event(
            2,
            "TaskScheduled",
            taskScheduledEventDetails={
                "resourceType": "lambda",
                "parameters": json.dumps({"FunctionName": arn}),
            },
        ),
        event(3, "TaskStarted"),
        event(4, "TaskSucceeded", taskSucceededEventDetails={"output": submitted}),
    ]
    window = {"startDate": now - timedelta(seconds=5), "stopDate": now + timedelta(seconds=5)}
    result = estimate_execution(window, events, logs=logs, data=data)
    assert _line(result, "Lambda", "requests").quantity == 1
    assert _line(result, "Lambda", "duration").quantity == pytest.approx(0.5 * 2.0)
    redshift = _line(result, "Redshift Serverless")
    assert redshift.basis.startswith("Data API Duration of 1 statements")
    assert f"({duration:.1f} s of SQL)" in redshift.item
    # Without the services: the history's timing (zero here) and no durations.
    bare = estimate_execution(window, events)
    assert _line(bare, "Lambda", "duration").quantity == 0
    assert "history" in _line(bare, "Redshift Serverless").basis
