"""`bisonflow run` keeps a run's record; `local up` names a taken port. (That `local up` serves
the plain AWS CLI is shown by test_new_user_commands, with the commands it prints.)"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import published_files, unload_prefixes

from bisonflow.cli.main import main
from bisonflow.layout import MonthLayout

BISONFLOW = [sys.executable, "-m", "bisonflow.cli.main"]


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
