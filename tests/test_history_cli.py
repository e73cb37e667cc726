"""`bisonflow executions`, `history` and `watch` against the emulator, and history paging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for_end

from bisonflow.cli.main import main
from bisonflow.history import executions
from bisonflow.history.execution_view import build_view
from bisonflow.history.terminal import log_links, summary_line
from bisonflow.layout import RIIS_INPUT_KEY
from bisonflow.local.runtime import LocalRuntime


@pytest.fixture(scope="module")
def succeeded(runtime: LocalRuntime) -> dict[str, Any]:
    runtime.publish_snapshot("2026-04")
    arn = runtime.start_execution("2026-04", name="history-succeeded")
    description = wait_for_end(runtime, arn)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return description


@pytest.fixture(scope="module")
def failed(runtime: LocalRuntime) -> dict[str, Any]:
    assert runtime.deployment and runtime.sample
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    runtime.publish_snapshot("2026-03")
    s3.delete_object(Bucket=bucket, Key=RIIS_INPUT_KEY)
    try:
        arn = runtime.start_execution("2026-03", name="history-failed")
        description = wait_for_end(runtime, arn)
    finally:
        s3.upload_file(str(runtime.sample.riis_csv), bucket, RIIS_INPUT_KEY)
    assert description["status"] == "FAILED"
    return description


@pytest.fixture
def cli_env(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Credentials as a user has them, no colour, wide tables; the endpoint option to pass."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "any")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "any")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    return ["--endpoint-url", runtime.endpoint_url]


def test_history_shows_the_failed_state_its_error_and_the_cleanup(
    failed: dict[str, Any], cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert main(["history", "history-failed", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # no colour off a terminal
    assert "history-failed" in out and "FAILED" in out
    assert "FileNotFoundError" in out and RIIS_INPUT_KEY in out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    annotate = rows["SubsetAndAnnotate[1] › AnnotateRiis"]
    assert "FAILED" in annotate and RIIS_INPUT_KEY in annotate
    assert "$.settings.task_heartbeat_seconds = 30s" in annotate
    assert "CAUGHT" in rows["SubsetAndAnnotate"]
    assert "SUCCEEDED" in rows["CleanupTasks"]
    assert "NOT_RUN" in rows["CalcStats"]
    # the cost estimate follows the table, labelled an estimate, with the Lambda calls the
    # failed execution made read from the runtime's REPORT lines or its history
    assert "Estimated AWS cost (an ESTIMATE" in out
    assert "Step Functions" in out.split("Estimated AWS cost")[1]


def test_history_by_name_and_by_arn_agree(
    succeeded: dict[str, Any], cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert main(["history", "history-succeeded", *cli_env]) == 0
    by_name = capsys.readouterr().out
    assert main(["history", succeeded["executionArn"], *cli_env]) == 0
    by_arn = capsys.readouterr().out
    strip = [line for line in by_name.splitlines() if "RUNNING" not in line]
    assert "SUCCEEDED" in by_name and "Published" in by_name
    assert strip == [line for line in by_arn.splitlines() if "RUNNING" not in line]


def test_history_json_is_every_event_as_the_api_gave_it(
    runtime: LocalRuntime,
    failed: dict[str, Any],
    cli_env: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["history", "history-failed", "--json", *cli_env]) == 0
    printed = json.loads(capsys.readouterr().out)["events"]
    api = runtime.clients["stepfunctions"].get_execution_history(
        executionArn=failed["executionArn"], maxResults=1000
    )["events"]
    assert len(printed) == len(api)
    assert printed == json.loads(json.dumps(api, default=str))


def test_an_unknown_execution_is_named(cli_env: list[str], capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["history", "no-such-execution", *cli_env])
    assert exit_info.value.code == 2
    assert "no execution named 'no-such-execution'" in capsys.readouterr().err


def test_an_unknown_execution_arn_is_a_clear_error(
    runtime: LocalRuntime, cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert runtime.deployment
    arn = runtime.deployment.state_machine_arn.replace(":stateMachine:", ":execution:") + ":nope"
    with pytest.raises(SystemExit) as exit_info:
        main(["history", arn, *cli_env])
    assert exit_info.value.code == 2
    assert "nope" in capsys.readouterr().err


def test_executions_filters_by_status(
    succeeded: dict[str, Any],
    failed: dict[str, Any],
    cli_env: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["executions", "--status", "FAILED", "--limit", "100", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "history-failed" in out and "history-succeeded" not in out
    (row,) = [line for line in out.splitlines() if "history-failed" in line]
    assert "FAILED" in row and "2026-03" in row

    assert main(["executions", "--limit", "100", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "history-failed" in out and "history-succeeded" in out


def test_the_history_commands_find_the_machine_of_stack_name_as_start_does(
    runtime: LocalRuntime, failed: dict[str, Any], cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    """--stack-name names the stack whose state machine (its StateMachineArn output) holds the
    execution, as `start` finds the machine it starts; a stack that is not there is one line."""
    assert runtime.deployment
    stack = ["--stack-name", runtime.deployment.stack_name]
    assert main(["history", "history-failed", *stack, *cli_env]) == 0
    assert "history-failed" in capsys.readouterr().out
    assert main(["executions", "--status", "FAILED", "--limit", "100", *stack, *cli_env]) == 0
    assert "history-failed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["watch", "history-failed", "--stack-name", "nope", *cli_env])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == ["bisonflow: Stack with id nope does not exist"]


def test_watch_an_ended_execution_prints_it_and_exits_by_status(
    succeeded: dict[str, Any],
    failed: dict[str, Any],
    cli_env: list[str],
    capsys: pytest.CaptureFixture,
) -> None:
    assert main(["watch", "history-succeeded", *cli_env]) == 0
    assert "Published" in capsys.readouterr().out
    assert main(["watch", "history-failed", *cli_env]) == 1
    assert "CleanupTasks" in capsys.readouterr().out


def test_log_links_point_at_cloudwatch_or_local_files(
    runtime: LocalRuntime, failed: dict[str, Any]
) -> None:
    sfn = runtime.clients["stepfunctions"]
    view = executions.load_view(sfn, failed["executionArn"])

    on_aws = log_links(view, "us-west-2", None)
    (check,) = on_aws["CheckGbif"]
    assert check[0] == "/aws/lambda/bisonflow-check_gbif"
    assert check[1].startswith("https://us-west-2.console.aws.amazon.com/cloudwatch/home?")
    assert "log-group/$252Faws$252Flambda$252Fbisonflow-check_gbif" in check[1]
    labels = [label for label, _ in on_aws["AnnotateRiis"]]
    assert labels[0] == "/aws/lambda/bisonflow-launch_task"
    assert labels[1].startswith("bison_task/i-")
    assert "/log-group/bison_task/log-events/i-" in on_aws["AnnotateRiis"][1][1]
    assert "CleanupTasks" in on_aws and "CalcStats" not in on_aws

    local = log_links(view, "us-east-1", runtime.workdir / "logs")
    for links in local.values():
        for _, url in links:
            assert url.startswith("file://")
            assert Path(url.removeprefix("file://")).is_file()
    assert local["CheckGbif"][0][1].endswith("/logs/lambda/bisonflow-check_gbif.log")
    task_links = [url for _, url in local["AnnotateRiis"] if "/logs/tasks/i-" in url]
    assert len(task_links) == 1


def test_html_report_is_written(
    runtime: LocalRuntime,
    failed: dict[str, Any],
    cli_env: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:
    pytest.importorskip("bisonflow.history.report")
    report = tmp_path / "report.html"
    assert main(["history", "history-failed", "--html", str(report), *cli_env]) == 0
    assert report.is_file() and "AnnotateRiis" in report.read_text()
    assert "console.aws.amazon.com/cloudwatch" in report.read_text()
    assert "Estimated AWS cost" in report.read_text()
    logs = runtime.workdir / "logs"
    assert (
        main(["history", "history-failed", "--html", str(report), "--logs", str(logs), *cli_env])
        == 0
    )
    assert (logs / "lambda" / "bisonflow-check_gbif.log").as_uri() in report.read_text()


# --- history paging -------------------------------------------------------------------------
LOOPS = 300  # 4 events per loop: > 1,000 events in all

COUNTER = {
    "StartAt": "Init",
    "States": {
        "Init": {"Type": "Pass", "Result": 0, "ResultPath": "$.i", "Next": "Step"},
        "Step": {
            "Type": "Pass",
            "Parameters": {"i.$": "States.MathAdd($.i, 1)"},
            "Next": "More?",
        },
        "More?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.i", "NumericLessThan": LOOPS, "Next": "Step"}],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture(scope="module")
def long_execution(runtime: LocalRuntime) -> str:
    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    role = sfn.describe_state_machine(stateMachineArn=runtime.deployment.state_machine_arn)[
        "roleArn"
    ]
    machine = sfn.create_state_machine(
        name="history-paging-counter", definition=json.dumps(COUNTER), roleArn=role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="counter", input="{}")["executionArn"]
    assert wait_for_end(runtime, arn, timeout=60)["status"] == "SUCCEEDED"
    return arn


def test_history_returns_every_event_of_a_long_execution(
    runtime: LocalRuntime, long_execution: str
) -> None:
    events = executions.history(runtime.clients["stepfunctions"], long_execution)
    assert len(events) > 1000
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["type"] == "ExecutionSucceeded"
    view = build_view(
        runtime.clients["stepfunctions"].describe_execution(executionArn=long_execution),
        COUNTER,
        events,
    )
    assert view.states["Step"].visits == LOOPS


def test_history_json_prints_every_event_of_a_long_execution(
    long_execution: str, cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert main(["history", long_execution, "--json", *cli_env]) == 0
    printed = json.loads(capsys.readouterr().out)["events"]
    assert len(printed) > 1000 and printed[-1]["id"] == len(printed)
    assert main(["history", long_execution, *cli_env]) == 0
    assert "Step" in capsys.readouterr().out


class PagedHistory:
    """GetExecutionHistory as AWS pages it: at most maxResults events, then a nextToken."""

    def __init__(self, total: int) -> None:
        self.events = [{"id": i, "type": "PassStateEntered"} for i in range(1, total + 1)]
        self.calls: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        start = int(kwargs.get("nextToken", 0))
        end = start + min(kwargs.get("maxResults", 100), 1000)
        page: dict[str, Any] = {"events": self.events[start:end]}
        if end < len(self.events):
            page["nextToken"] = str(end)
        return page


def test_history_follows_next_token_across_pages() -> None:
    fake = PagedHistory(2_345)
    events = executions.history(fake, "arn:aws:states:us-east-1:1:execution:m:e")
    assert [e["id"] for e in events] == list(range(1, 2_346))
    assert len(fake.calls) == 3 and [c.get("nextToken") for c in fake.calls] == [
        None,
        "1000",
        "2000",
    ]


def test_summary_line_of_a_traceback_is_the_exception() -> None:
    cause = 'Traceback (most recent call last):\n  File "x.py"\nValueError: bad month\n'
    assert summary_line(cause) == "ValueError: bad month"
    assert summary_line('{"errorMessage": "boom\\nmore", "errorType": "E"}') == "boom"
    assert summary_line("first\nsecond") == "first"


# --- issue 12: what a new user meets -----------------------------------------------------------
def test_a_failed_tasks_cause_leads_with_its_message(
    runtime: LocalRuntime, failed: dict[str, Any]
) -> None:
    """The task runner's SendTaskFailure cause: `<ErrorType>: <message>` first, then a short
    traceback tail with no directory of this machine."""
    from bisonflow import PROJECT_ROOT

    events = executions.history(runtime.clients["stepfunctions"], failed["executionArn"])
    (task_failed,) = [
        e
        for e in events
        if e["type"] == "TaskFailed"
        and e["taskFailedEventDetails"].get("resource") == "invoke.waitForTaskToken"
    ]
    details = task_failed["taskFailedEventDetails"]
    first, *tail = details["cause"].splitlines()
    assert first.startswith(f"{details['error']}: ") and RIIS_INPUT_KEY in first, first
    assert tail[0] == "Traceback (innermost last):" and 1 < len(tail) <= 8, tail
    assert tail[-1].startswith("  tasks/") or "caused by" in tail[-1], tail
    assert str(PROJECT_ROOT) not in details["cause"] and "site-packages" not in details["cause"]


def test_tables_fit_100_columns_and_say_what_they_leave_out(
    succeeded: dict[str, Any],
    failed: dict[str, Any],
    cli_env: list[str],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    for argv in (["history", "history-failed"], ["executions", "--limit", "100"]):
        assert main([*argv, *cli_env]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 100, out
        assert "SUCCE…" not in out and "FAILED" in out
    assert main(["history", "history-failed", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "│ AnnotateRiis" in out or "› AnnotateRiis" in out
    assert "not shown at 100 columns: type, start, end" in out
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["history", "history-failed", *cli_env]) == 0
    assert "not shown" not in capsys.readouterr().out


def test_watch_off_a_terminal_prints_a_line_per_step(
    succeeded: dict[str, Any], cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert main(["watch", "history-succeeded", *cli_env]) == 0
    out = capsys.readouterr().out
    assert "] -> CheckGbif" in out and "] -> CalcStats" in out and "] ExecutionSucceeded" in out


def test_a_skipped_month_is_said_and_fails_only_when_processing_is_required(
    runtime: LocalRuntime, cli_env: list[str], capsys: pytest.CaptureFixture
) -> None:
    arn = runtime.start_execution("2019-01", name="history-skipped")  # no snapshot published
    assert wait_for_end(runtime, arn)["status"] == "SUCCEEDED"
    assert main(["watch", "history-skipped", *cli_env]) == 0
    said = "month not processed: GBIF has not published the 2019-01 snapshot"
    assert said in capsys.readouterr().out
    assert main(["watch", "history-skipped", "--require-processed", *cli_env]) == 3
    assert said in capsys.readouterr().out
    assert main(["watch", "history-succeeded", "--require-processed", *cli_env]) == 0
    assert "month not processed" not in capsys.readouterr().out


def test_a_closed_pipe_ends_history_quietly(
    runtime: LocalRuntime, failed: dict[str, Any], tmp_path: Path
) -> None:
    """`bisonflow history X --json | head` whose reader is gone: no BrokenPipeError, exit 141
    (128 + SIGPIPE) as cat or grep end; the environment holds nothing but PATH and HOME."""
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "bisonflow.cli.main", "history", "history-failed", "--json"]
        + ["--endpoint-url", runtime.endpoint_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        cwd=Path(__file__).parent.parent,
    )
    assert process.stdout and process.stderr
    process.stdout.close()  # the reader leaves before the first line
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""
