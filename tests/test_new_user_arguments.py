"""Issue 12: every argument and path a newcomer can get wrong is refused before any work, in
one line on stderr with exit code 2 and no traceback; --debug / BISONFLOW_DEBUG show it."""

from __future__ import annotations

import argparse
import http.server
import os
import threading
from pathlib import Path

import pytest

from bisonflow.cli import endpoint as cli_endpoint
from bisonflow.cli.checks import EXECUTION_NAME_MAX, execution_name_problem
from bisonflow.cli.main import main


def _refused(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run `bisonflow argv`; it must exit 2 with exactly one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize("command", [["run"], ["local", "up"]])
def test_a_port_outside_the_16_bit_range_is_refused(
    capsys: pytest.CaptureFixture, command: list[str]
) -> None:
    line = _refused(capsys, [*command, "--port", "70000"])
    assert "argument --port: port 70000 is outside 0-65535; choose a port such as 5000" in line


@pytest.mark.parametrize("value", ["abc", "0", "-5", "2.5"])
def test_counts_must_be_positive_whole_numbers(capsys: pytest.CaptureFixture, value: str) -> None:
    assert _refused(capsys, ["run", "--records", value]) == (
        f"bisonflow run: argument --records: must be a positive integer, got {value} "
        "(see `bisonflow run --help`)"
    )


def test_run_out_must_be_a_writable_directory(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    a_file = tmp_path / "runs.txt"
    a_file.write_text("not a directory")
    assert _refused(capsys, ["run", "--out", str(a_file)]) == (
        f"bisonflow: --out {a_file} is a file, not a directory; give a directory"
    )
    under_a_file = a_file / "runs"
    line = _refused(capsys, ["run", "--out", str(under_a_file)])
    assert line.startswith(f"bisonflow: --out {under_a_file}: cannot create the directory (")
    assert line.endswith("give a directory you can write to")


def test_history_html_must_be_a_file_in_an_existing_directory(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    assert _refused(capsys, ["history", "x", "--html", str(tmp_path)]) == (
        f"bisonflow: --html {tmp_path} is a directory; give a file name, e.g. "
        f"{tmp_path / 'report.html'}"
    )
    missing = tmp_path / "no" / "report.html"
    assert _refused(capsys, ["history", "x", "--html", str(missing)]) == (
        f"bisonflow: --html {missing}: directory {missing.parent} does not exist; create it "
        "or choose another"
    )
    assert "--logs links log files from the report: give --html FILE too" in _refused(
        capsys, ["history", "x", "--logs", str(tmp_path)]
    )


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a" * (EXECUTION_NAME_MAX + 1), "is 81 characters long; it must have 1 to 80"),
        ("", "is 0 characters long"),
        ("month/2026-12", "contains '/'"),
        ("run*", "contains '*'"),
        ("two words", "contains white space"),
        ("tab\there", "contains white space"),
        ("bell\x07", "contains the control character U+0007"),
        ("c1\x85", "contains white space"),  # NEL is both white space and a C1 control
        ("del\x7f", "contains the control character U+007F"),
        ("x`y", "contains '`'"),
    ],
)
def test_start_name_follows_the_start_execution_rules(
    capsys: pytest.CaptureFixture, name: str, problem: str
) -> None:
    line = _refused(capsys, ["start", "--name", name])
    assert line.startswith("bisonflow start: argument --name: execution name ")
    assert problem in line
    assert "Step Functions allows 1-80 characters" in line


def test_valid_execution_names_pass() -> None:
    for name in ("2026-12", "bison_2026-12.retry", "a" * EXECUTION_NAME_MAX, "é"):
        assert execution_name_problem(name) is None


@pytest.mark.parametrize("given", ["[]", '"2026-12"', "7"])
def test_non_object_workflow_input_gets_the_schema_message(
    capsys: pytest.CaptureFixture, given: str
) -> None:
    line = _refused(capsys, ["start", "--input", given])
    assert f"check_gbif.input: field $ = {given} is invalid:" in line
    assert "is not of type 'object'" in line
    assert """the workflow input is an object such as '{"month": "2026-12"}\'""" in line


def test_workflow_input_that_is_not_json_or_doubles_the_month(
    capsys: pytest.CaptureFixture,
) -> None:
    assert "workflow input is not JSON" in _refused(capsys, ["start", "--input", "{month:"])
    assert "check_gbif.input: field $.month" in _refused(
        capsys, ["start", "--input", '{"month": "2026-13"}']
    )
    assert "put month and force in it instead of also giving --month/--force" in _refused(
        capsys, ["start", "--input", '{"month": "2026-12"}', "--month", "2026-11"]
    )


def test_an_endpoint_that_is_not_a_url_is_named(capsys: pytest.CaptureFixture) -> None:
    assert _refused(capsys, ["executions", "--endpoint-url", "127.0.0.1:5000"]) == (
        "bisonflow: --endpoint-url '127.0.0.1:5000' is not an http(s) URL; e.g. "
        "http://127.0.0.1:5000"
    )


def test_an_emulator_that_is_not_running_is_named(capsys: pytest.CaptureFixture) -> None:
    line = _refused(capsys, ["executions", "--endpoint-url", "http://127.0.0.1:9"])
    assert line.startswith('bisonflow: Could not connect to the endpoint URL: "http://127.0.0.1:9')
    assert line.endswith("is `bisonflow local up` running on that port?")


def test_a_profile_that_is_not_configured_is_named(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--profile is one of the common options: the history commands take it as deploy does."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for command in (["executions"], ["history", "x"], ["deploy"]):
        line = _refused(
            capsys, [*command, "--profile", "nosuch", "--endpoint-url", "http://127.0.0.1:9"]
        )
        assert line == "bisonflow: The config profile (nosuch) could not be found", command


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bisonflow.cli.checks import UsageError

    with pytest.raises(UsageError, match="is a directory"):
        main(["history", "x", "--html", str(tmp_path), "--debug"])
    monkeypatch.setenv("BISONFLOW_DEBUG", "1")
    with pytest.raises(UsageError, match="is a directory"):
        main(["history", "x", "--html", str(tmp_path)])


def test_loopback_endpoints_get_a_region_and_dummy_keys_only_while_the_command_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for url in ("http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"):
        args = argparse.Namespace(endpoint_url=url, region=None)
        with cli_endpoint.loopback_defaults(args):
            assert args.region == "us-east-1"
            assert os.environ["AWS_ACCESS_KEY_ID"] == "local"
        assert "AWS_ACCESS_KEY_ID" not in os.environ
    remote = argparse.Namespace(endpoint_url="https://states.us-east-1.amazonaws.com", region=None)
    with cli_endpoint.loopback_defaults(remote):
        assert remote.region is None and "AWS_ACCESS_KEY_ID" not in os.environ
    monkeypatch.setenv("AWS_PROFILE", "mine")
    profiled = argparse.Namespace(endpoint_url="http://127.0.0.1:5000", region="eu-west-1")
    with cli_endpoint.loopback_defaults(profiled):
        assert profiled.region == "eu-west-1" and "AWS_ACCESS_KEY_ID" not in os.environ


def test_main_runs_off_the_main_thread_too(tmp_path: Path) -> None:
    """SIGTERM can only be handled on the main thread; elsewhere main() still works."""
    ended: list[object] = []

    def call() -> None:
        try:
            main(["history", "x", "--html", str(tmp_path)])
        except SystemExit as exc:
            ended.append(exc.code)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    assert ended == [2]


class _ErrorPage(http.server.BaseHTTPRequestHandler):
    """What moto's server (werkzeug) answers when it fails inside: an HTML 500 page."""

    def do_POST(self) -> None:
        body = b"<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n"
        self.send_response(500)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("command", [["executions"], ["destroy"], ["schedule"]])
def test_an_endpoint_that_fails_inside_is_one_line(
    capsys: pytest.CaptureFixture, command: list[str]
) -> None:
    """JSON services (Step Functions, SSM) and XML ones (CloudFormation, which botocore cannot
    even parse then) alike."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        extra = ["--stack-name", "bisonflow"] if command == ["schedule"] else []
        line = _refused(capsys, [*command, "--endpoint-url", endpoint, *extra])
    finally:
        server.shutdown()
    assert line == (
        f"bisonflow: {endpoint} failed inside (it answered an HTML error page, not AWS's error "
        "format); --debug shows the traceback, and the emulator's console its own"
    )
