"""The two user contracts: `bisonflow run` keeps a run's record; `local up` serves the AWS CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
from conftest import published_files, unload_prefixes

from bisonflow.cli import main
from bisonflow.layout import MonthLayout

BISONFLOW = [sys.executable, "-m", "bisonflow.cli"]
CLI_ENV = {
    **os.environ,
    "AWS_ACCESS_KEY_ID": "any",
    "AWS_SECRET_ACCESS_KEY": "any",
    "AWS_DEFAULT_REGION": "us-east-1",
}


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _aws(endpoint: str, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--output", "json", *args],
        capture_output=True,
        text=True,
        env=CLI_ENV,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_local_up_serves_the_plain_aws_cli() -> None:
    port = _free_port()
    server = subprocess.Popen(
        [*BISONFLOW, "local", "up", "--port", str(port), "--records", "5000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        seen = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = server.stdout.readline()
            assert line, "local up exited early:\n" + "".join(seen)
            seen.append(line)
            if "Ctrl-C (or SIGTERM) stops it" in line:
                break
        # Keep reading: a server whose output pipe is full blocks on its next write, and
        # then cannot stop on Ctrl-C either.
        threading.Thread(target=seen.extend, args=(server.stdout,), daemon=True).start()
        endpoint = f"http://127.0.0.1:{port}"
        machines = _aws(endpoint, "stepfunctions", "list-state-machines")["stateMachines"]
        (machine,) = [m for m in machines if m["name"] == "bison-workflow"]
        started = _aws(
            endpoint,
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            machine["stateMachineArn"],
            "--input",
            "{}",
        )
        # The wait polls with boto3: an AWS CLI process costs about 1.5 s of CPU to start,
        # which the execution it waits on needs. The CLI reads the outcome once it is there.
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=endpoint,
            region_name=CLI_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id="any",
            aws_secret_access_key="any",
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if sfn.describe_execution(executionArn=started["executionArn"])["status"] != "RUNNING":
                break
            time.sleep(1)
        described = _aws(
            endpoint,
            "stepfunctions",
            "describe-execution",
            "--execution-arn",
            started["executionArn"],
        )
        assert described["status"] == "SUCCEEDED"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


def test_a_taken_port_is_named_instead_of_hanging(capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["local", "up", "--port", str(port)])
    assert exit_info.value.code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err
