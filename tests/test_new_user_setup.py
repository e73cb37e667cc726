"""Issue 12: the first `./scripts/demo` installs for minutes; scripts/setup-venv shows pip's
progress (a line per package) instead of silence, and still fails when pip fails."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from bisonflow import PROJECT_ROOT

#: A stand-in for .venv/bin/python: `-m pip install` prints what pip prints, slowly.
FAKE_PYTHON = """#!/usr/bin/env bash
if [[ "$*" == *"--upgrade pip"* ]]; then exit 0; fi
echo "Obtaining file://$PWD"
echo "Collecting duckdb==1.1.3"
echo "  Downloading duckdb-1.1.3.whl (20.1 MB)"
echo "Requirement already satisfied: boto3 in ./.venv/lib/site-packages (1.35.0)"
echo "Building wheels for collected packages: bisonflow"
echo "Installing collected packages: duckdb, bisonflow"
echo "Successfully installed bisonflow-0.1 duckdb-1.1.3"
exit "${FAKE_PIP_STATUS:-0}"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tree with scripts/setup-venv, a venv whose python is FAKE_PYTHON, and the npm
    installs (IAM sidecar, report layout library) already done (their stamps match), so only
    the pip step runs."""
    (tmp_path / "scripts").mkdir()
    for script in ("setup-venv", "install-report-js"):
        shutil.copy(PROJECT_ROOT / "scripts" / script, tmp_path / "scripts" / script)
    for lock_dir, stamp_dir in (
        ("bisonflow/local/iam/sidecar", ".venv/iam-sidecar"),
        ("bisonflow/report/vendor", ".venv/report-js"),
    ):
        lock = tmp_path / lock_dir / "package-lock.json"
        lock.parent.mkdir(parents=True)
        lock.write_text("{}")
        stamp = tmp_path / stamp_dir / ".installed"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(hashlib.sha256(lock.read_bytes()).hexdigest() + "\n")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = bisonflow\n")
    (tmp_path / "pyproject.toml").write_text("")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def _setup(checkout: Path, status: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "setup-venv"), "local"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "FAKE_PIP_STATUS": str(status)},
        timeout=60,
    )


def test_the_install_shows_a_line_per_package(checkout: Path) -> None:
    done = _setup(checkout)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "installing bisonflow[local] into .venv (the first time takes minutes; one line per "
        "package)",
        "  Collecting duckdb==1.1.3",
        "  Building wheels for collected packages: bisonflow",
        "  Installing collected packages: duckdb, bisonflow",
        "  Successfully installed bisonflow-0.1 duckdb-1.1.3",
    ]
    assert _setup(checkout).stdout == ""  # installed: nothing to do, nothing said


def test_a_failed_install_still_fails(checkout: Path) -> None:
    done = _setup(checkout, status=1)
    assert done.returncode == 1
    assert not (checkout / ".venv" / ".bisonflow-local").exists()
