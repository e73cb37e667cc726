"""`bisonflow run` keeps a run's record; `local up` names a taken port; every command that
reaches AWS takes the common options and makes its clients through one target. (That `local
up` serves the plain AWS CLI is shown by test_new_user_commands, with the commands it prints.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import published_files, unload_prefixes

from bisonflow.cli.main import main
from bisonflow.cli.options import target
from bisonflow.cli.parser import build_parser
from bisonflow.layout import MonthLayout

BISONFLOW = [sys.executable, "-m", "bisonflow.cli"]  # (test_history_cli runs bisonflow.cli.main)


def test_a_bad_month_is_refused_before_anything_starts(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--month", "2026-13"])
    assert exit_info.value.code == 2
    assert "month '2026-13' has month number 13" in capsys.readouterr().err


def test_run_writes_execution_history_and_outputs(tmp_path: Path) -> None:
    done = subprocess.run(
        [*BISONFLOW, "run", "--month", "2026-10", "--records", "5000", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "-> CalcStats" in done.stdout and "SUCCEEDED" in done.stdout
    (run_dir,) = tmp_path.iterdir()
    execution = json.loads((run_dir / "execution.json").read_text())
    assert execution["status"] == "SUCCEEDED" and execution["name"] == run_dir.name
    events = json.loads((run_dir / "history.json").read_text())["events"]
    assert events[0]["type"] == "ExecutionStarted" and events[-1]["type"] == "ExecutionSucceeded"
    outputs = run_dir / "outputs"
    layout = MonthLayout.for_run("2026-10", execution["name"])  # the published run
    downloaded = {p.relative_to(outputs).as_posix() for p in outputs.rglob("*") if p.is_file()}
    assert published_files(layout) | {layout.done_marker_key} <= downloaded, (
        published_files(layout) - downloaded
    )
    for prefix in unload_prefixes(layout):
        assert any(name.startswith(prefix) for name in downloaded), prefix
    assert (run_dir / "report.html").is_file()


def test_a_taken_port_is_named_instead_of_hanging(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["local", "up", "--port", str(port)])
    assert exit_info.value.code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


#: Every command that reaches AWS or an emulator, with its required arguments.
REACHING = (
    ["executions"],
    ["history", "x"],
    ["watch", "x"],
    ["redrive", "x"],
    ["deploy"],
    ["destroy"],
    ["start"],
    ["schedule"],
)


def test_every_command_that_reaches_aws_takes_the_common_options() -> None:
    common = ["--endpoint-url", "http://127.0.0.1:5000", "--region", "eu-west-1"]
    common += ["--profile", "mine", "--stack-name", "other"]
    for command in REACHING:
        args = build_parser().parse_args([*command, *common])
        given = (args.endpoint_url, args.region, args.profile, args.stack_name)
        assert given == ("http://127.0.0.1:5000", "eu-west-1", "mine", "other"), command
        assert callable(args.handler), command
    # fire-schedule speaks to the emulator as its operator: its region and keys, no profile.
    fire = build_parser().parse_args(
        ["local", "fire-schedule", "--endpoint-url", "http://127.0.0.1:5001", "--stack-name", "s"]
    )
    assert (fire.endpoint_url, fire.stack_name) == ("http://127.0.0.1:5001", "s")
    assert not hasattr(fire, "region") and not hasattr(fire, "profile")


def test_one_target_gives_every_command_its_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """--region, else AWS_REGION (which boto3 alone does not read), else boto3's own chain;
    the local operator's target is the emulator's region and keys at its default endpoint."""
    for name in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    told = target(build_parser().parse_args(["deploy", "--region", "eu-west-1", "--profile", "p"]))
    assert (told.region, told.profile, told.endpoint_url) == ("eu-west-1", "p", None)
    assert target(build_parser().parse_args(["executions"])).region is None
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    for command in REACHING:
        assert target(build_parser().parse_args(command)).region == "us-west-2", command
    operator = target(build_parser().parse_args(["local", "fire-schedule"]), emulator_operator=True)
    assert (operator.endpoint_url, operator.region) == ("http://127.0.0.1:5000", "us-east-1")
    assert operator.credentials == {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7000")
    reached = target(build_parser().parse_args(["history", "x"]))
    assert reached.endpoint_url == "http://127.0.0.1:7000"
    assert reached.client("stepfunctions").meta.endpoint_url == "http://127.0.0.1:7000"
