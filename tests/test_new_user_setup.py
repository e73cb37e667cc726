"""Issues 12 and 13: the first `./scripts/demo` installs what it needs. scripts/setup-venv
installs the Python packages with uv (installed into .venv, or the one on PATH) and falls back
to pip where uv cannot be had; it shows a line per package instead of silence, runs the npm
installs beside the Python install, and still fails when any install fails."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bisonflow import PROJECT_ROOT

#: A stand-in for both the system's python3 and .venv/bin/python: `-m pip install` prints
#: what pip prints; installing uv (`--target .venv/uv uv`) fails unless FAKE_UV_INSTALLS=1
#: (then it writes a working .venv/uv/bin/uv).
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$PWD/python-calls"
if [[ "$*" == *" --version" ]]; then exit 0; fi
if [[ "$*" == "-m venv --without-pip .venv" ]]; then
  mkdir -p .venv/bin && cp "$PWD/fake-python" .venv/bin/python && exit 0
fi
if [[ "$*" == *" --target .venv/uv uv" ]]; then
  [ "${FAKE_UV_INSTALLS:-0}" = 1 ] || exit 1
  mkdir -p "$PWD/.venv/uv/bin" && cp "$PWD/fake-uv" "$PWD/.venv/uv/bin/uv"
  exit 0
fi
echo "Obtaining file://$PWD"
echo "Collecting duckdb==1.1.3"
echo "  Downloading duckdb-1.1.3.whl (20.1 MB)"
echo "Requirement already satisfied: boto3 in ./.venv/lib/site-packages (1.35.0)"
echo "WARNING: Location 'file:///somewhere/simple/boto3/' is ignored" >&2
echo "Building wheels for collected packages: bisonflow"
echo "Installing collected packages: duckdb, bisonflow"
echo "Successfully installed bisonflow-0.1 duckdb-1.1.3"
exit "${FAKE_PIP_STATUS:-0}"
"""

#: A stand-in for uv: records its arguments, prints uv's per-package lines.
FAKE_UV = """#!/usr/bin/env bash
echo "$*" >> "$PWD/uv-calls"
echo "Resolved 2 packages in 10ms" >&2
echo " + duckdb==1.5.5" >&2
exit "${FAKE_PIP_STATUS:-0}"
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A tree with scripts/setup-venv, a venv whose python is FAKE_PYTHON, and the npm
    installs (IAM sidecar, report layout library) already done (their stamps match), so only
    the Python install runs. `fake-uv` lies beside it; `bin/` (first on PATH) is empty."""
    (tmp_path / "scripts").mkdir()
    for script in ("setup-venv", "install-report-js"):
        shutil.copy(PROJECT_ROOT / "scripts" / script, tmp_path / "scripts" / script)
    for lock_dir, stamp_dir in (
        ("bisonflow/local/iam/sidecar", ".venv/iam-sidecar"),
        ("bisonflow/history/report/vendor", ".venv/report-js"),
    ):
        lock = tmp_path / lock_dir / "package-lock.json"
        lock.parent.mkdir(parents=True)
        lock.write_text("{}")
        (lock.parent / "package.json").write_text("{}")
        stamp = tmp_path / stamp_dir / ".installed"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(hashlib.sha256(lock.read_bytes()).hexdigest() + "\n")
    (tmp_path / "setup.cfg").write_text("[metadata]\nname = bisonflow\n")
    (tmp_path / "pyproject.toml").write_text("")
    for path, text in (
        (".venv/bin/python", FAKE_PYTHON),
        ("fake-python", FAKE_PYTHON),
        ("fake-uv", FAKE_UV),
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
        (tmp_path / path).chmod(0o755)
    (tmp_path / "bin").mkdir()
    return tmp_path


def _setup(checkout: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(checkout / "scripts" / "setup-venv"), "local"],
        cwd=checkout,
        capture_output=True,
        text=True,
        env={
            "PATH": f"{checkout / 'bin'}:/usr/bin:/bin",
            "PYTHON": str(checkout / ".venv" / "bin" / "python"),
            **env,
        },
        timeout=60,
    )


def _calls(checkout: Path, program: str) -> list[str]:
    path = checkout / f"{program}-calls"
    return path.read_text().splitlines() if path.exists() else []


def test_pip_shows_a_line_per_package_where_uv_cannot_be_installed(checkout: Path) -> None:
    done = _setup(checkout)
    assert done.returncode == 0, done.stderr
    *lines, timing = done.stdout.splitlines()
    assert lines == [
        "uv could not be installed: pip installs instead",
        "installing bisonflow[local] into .venv with pip (one line per package)",
        "  Collecting duckdb==1.1.3",
        "  Building wheels for collected packages: bisonflow",
        "  Installing collected packages: duckdb, bisonflow",
        "  Successfully installed bisonflow-0.1 duckdb-1.1.3",
    ]
    # the install's wall time: 0 s on a quiet machine, a second or more on a loaded one
    assert re.fullmatch(r"  installed in \d+ s", timing), timing
    assert _setup(checkout).stdout == ""  # installed: nothing to do, nothing said


def test_uv_installed_from_the_index_installs_the_packages(checkout: Path) -> None:
    done = _setup(checkout, FAKE_UV_INSTALLS="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "installing bisonflow[local] into .venv with uv"
    assert " + duckdb==1.5.5" in done.stderr  # uv's own per-package lines reach the user
    assert _calls(checkout, "uv") == ["pip install --python .venv/bin/python pip -e .[local]"]
    # pip only installed uv (beside the venv); it did not install the packages
    assert [call for call in _calls(checkout, "python") if "-e" in call.split()] == []
    assert (checkout / ".venv" / "uv" / "bin" / "uv").is_file()


def test_a_new_venv_is_made_without_ensurepip_and_uv_installs_pip(checkout: Path) -> None:
    """ensurepip took 18 s of a first install at load 10; uv installs pip with the rest (the
    Lambda layer for AWS is built with the venv's pip)."""
    (checkout / ".venv" / "bin" / "python").unlink()
    done = _setup(checkout, FAKE_UV_INSTALLS="1", PYTHON=str(checkout / "fake-python"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("creating .venv with")
    assert "-m venv --without-pip .venv" in _calls(checkout, "python")
    assert "-m ensurepip --default-pip" not in _calls(checkout, "python")
    assert _calls(checkout, "uv") == ["pip install --python .venv/bin/python pip -e .[local]"]


def test_a_uv_on_path_is_used_as_it_is(checkout: Path) -> None:
    shutil.copy(checkout / "fake-uv", checkout / "bin" / "uv")
    done = _setup(checkout)
    assert done.returncode == 0, done.stderr
    assert _calls(checkout, "uv") == ["pip install --python .venv/bin/python pip -e .[local]"]
    assert _calls(checkout, "python") == []


def test_bisonflow_installer_pip_skips_uv(checkout: Path) -> None:
    shutil.copy(checkout / "fake-uv", checkout / "bin" / "uv")
    done = _setup(checkout, BISONFLOW_INSTALLER="pip")
    assert done.returncode == 0, done.stderr
    assert "with pip" in done.stdout and "uv could not" not in done.stdout
    assert _calls(checkout, "uv") == []


@pytest.mark.parametrize("uv_installs", ["0", "1"])
def test_a_failed_install_still_fails(checkout: Path, uv_installs: str) -> None:
    done = _setup(checkout, FAKE_PIP_STATUS="1", FAKE_UV_INSTALLS=uv_installs)
    assert done.returncode == 1
    assert not (checkout / ".venv" / ".bisonflow-local").exists()


def test_a_failed_npm_install_fails_after_the_python_install(checkout: Path) -> None:
    """npm runs in the background: its failure must still fail the script, with its message."""
    (checkout / ".venv" / "iam-sidecar" / ".installed").unlink()
    npm = checkout / "bin" / "npm"
    npm.write_text('#!/usr/bin/env bash\necho "npm ERR! 404 not found" >&2\nexit 1\n')
    npm.chmod(0o755)
    done = _setup(checkout, FAKE_UV_INSTALLS="1")
    assert done.returncode == 1
    assert (checkout / ".venv" / ".bisonflow-local").exists()  # the Python install finished
    assert "npm ERR! 404 not found" in done.stdout
    assert not (checkout / ".venv" / "iam-sidecar" / ".installed").exists()
