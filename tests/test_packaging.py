"""The Lambda artefacts: what each zip holds, that it imports in a clean interpreter, and that
the layer built for Lambda carries that platform's compiled wheels."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bisonflow.deploy import packaging
from bisonflow.deploy.packaging import (
    FUNCTIONS,
    PackagingError,
    function_zip,
    handler_of,
    layer_zip,
)
from bisonflow.local.lambdas.worker import link_runtime_site


def _names(archive: bytes) -> list[str]:
    return zipfile.ZipFile(io.BytesIO(archive)).namelist()


@pytest.fixture(scope="module")
def local_layer() -> bytes:
    return layer_zip()


def test_function_zip_holds_its_handler_only_and_is_reproducible() -> None:
    for function in FUNCTIONS:
        archive = function_zip(function)
        assert _names(archive) == ["functions/__init__.py", f"functions/{function}.py"]
        assert archive == function_zip(function), "same tree, same bytes (same CodeSha256)"
        infos = zipfile.ZipFile(io.BytesIO(archive)).infolist()
        assert {i.date_time for i in infos} == {(2020, 1, 1, 0, 0, 0)}


def test_unknown_function_is_named() -> None:
    with pytest.raises(PackagingError, match="unknown function 'check_gbf'"):
        function_zip("check_gbf")


def test_layer_holds_what_the_lambdas_import_and_nothing_local(local_layer: bytes) -> None:
    names = set(_names(local_layer))
    assert local_layer == layer_zip(), "same tree, same bytes"
    for expected in (
        "python/bisonflow/__init__.py",
        "python/bisonflow/steps/lambda_edge.py",
        "python/bisonflow/schemas.py",
        "python/definitions/check_gbif.input.schema.json",
        "python/jsonschema/__init__.py",
        "python/referencing/__init__.py",
    ):
        assert expected in names, expected
    assert any(n.startswith("python/rpds/rpds.") and n.endswith(".so") for n in names)
    assert not [n for n in names if n.startswith(("python/bisonflow/local/", "python/boto"))]
    # Modules the handlers never import stay out (the report, the science in the tasks).
    assert "python/bisonflow/history/report/__init__.py" not in names
    assert "python/bisonflow/stats/pam.py" not in names
    assert not [n for n in names if n.endswith((".pyc", ".dist-info/RECORD"))]


def test_clean_interpreter_imports_each_function_from_its_zip_and_the_layer(
    local_layer: bytes, tmp_path: Path
) -> None:
    """`python -I -S`: only the function zip (/var/task), the layer (/opt) and the runtime's
    boto3 family on sys.path, as in Lambda; each handler rejects a schema-invalid event."""
    opt = tmp_path / "opt"
    zipfile.ZipFile(io.BytesIO(local_layer)).extractall(opt)
    runtime_site = link_runtime_site(tmp_path / "runtime")
    probe = (
        "import importlib, json, sys\n"
        "sys.path[:0] = sys.argv[1:4]\n"
        "module_name, _, attr = sys.argv[4].rpartition('.')\n"
        "handler = getattr(importlib.import_module(module_name), attr)\n"
        "import bisonflow, jsonschema\n"
        "try:\n"
        "    handler({'unexpected': True, 'month': 'May'}, None)\n"
        "    error = None\n"
        "except Exception as exc:\n"
        "    error = [type(exc).__name__, str(exc)]\n"
        "print(json.dumps({'error': error, 'bisonflow': bisonflow.__file__,\n"
        "                  'jsonschema': jsonschema.__file__}))\n"
    )
    for function in FUNCTIONS:
        task = tmp_path / "task" / function
        zipfile.ZipFile(io.BytesIO(function_zip(function))).extractall(task)
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", probe, str(task), str(opt / "python"),
             str(runtime_site), handler_of(function)],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["bisonflow"].startswith(str(opt / "python"))
        assert report["jsonschema"].startswith(str(opt / "python"))
        kind, message = report["error"]
        assert kind == "SchemaViolation", message
        assert message.startswith(f"{function}.input: "), message


def test_layer_for_lambda_arm64_carries_aarch64_wheels() -> None:
    """pip installs the pinned distributions for Python 3.12 on manylinux aarch64 (needs the
    package index once; then .bisonflow-cache/ serves it)."""
    archive = layer_zip("3.12", "arm64")
    names = _names(archive)
    assert "python/rpds/rpds.cpython-312-aarch64-linux-gnu.so" in names
    wheel = next(n for n in names if n.startswith("python/rpds_py-") and n.endswith("/WHEEL"))
    tags = zipfile.ZipFile(io.BytesIO(archive)).read(wheel).decode()
    assert "Tag: cp312-cp312-manylinux" in tags and "aarch64" in tags
    assert "python/bisonflow/schemas.py" in names
    assert not [n for n in names if n.startswith(("python/bin/", "python/boto"))]
    assert archive == layer_zip("3.12", "arm64"), "same pins, same bytes"


@pytest.mark.parametrize(
    ("python_version", "architecture", "message"),
    [
        ("312", None, "python_version '312' is not like '3.12'"),
        (None, "sparc", "architecture 'sparc' is not one of arm64, x86_64"),
    ],
)
def test_bad_layer_target_is_named(
    python_version: str | None, architecture: str | None, message: str
) -> None:
    with pytest.raises(PackagingError, match=message):
        layer_zip(python_version, architecture)


def test_a_layer_over_lambdas_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packaging, "LAMBDA_UNZIPPED_LIMIT", 100_000)
    with pytest.raises(PackagingError, match=r"over Lambda's 0 MB .*; largest: \w+ \d"):
        layer_zip()


def _tree(root: Path, helper: str) -> None:
    for function in FUNCTIONS:
        (root / "functions").mkdir(parents=True, exist_ok=True)
        (root / "functions" / f"{function}.py").write_text("from bisonflow import helper\n")
    (root / "bisonflow" / "local").mkdir(parents=True)
    (root / "bisonflow" / "__init__.py").write_text("")
    (root / "bisonflow" / "local" / "__init__.py").write_text("")
    (root / "bisonflow" / "helper.py").write_text(helper)


def test_a_lambda_importing_the_local_runtime_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even inside a function: the import may run on Lambda, where moto is not installed.
    _tree(tmp_path, "def later():\n    import bisonflow.local\n")
    monkeypatch.setattr(packaging, "PROJECT_ROOT", tmp_path)
    with pytest.raises(PackagingError, match="imports the local-only module bisonflow/local/"):
        packaging.library_closure()


def test_a_lambda_importing_an_uninstalled_module_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    helper = (
        "import json\nimport jsonschema\nimport not_installed_anywhere.sub\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:  # never runs: neither refused nor packaged\n"
        "    import bisonflow.local\n    import numpy\n"
    )
    _tree(tmp_path, helper)
    monkeypatch.setattr(packaging, "PROJECT_ROOT", tmp_path)
    library, modules = packaging.library_closure()
    assert [p.relative_to(tmp_path).as_posix() for p in library] == [
        "bisonflow/__init__.py",
        "bisonflow/helper.py",
    ]
    assert modules == {"jsonschema", "not_installed_anywhere"}
    with pytest.raises(PackagingError, match="imports not_installed_anywhere, which is not"):
        packaging.layer_distributions()


def test_the_distribution_providing_a_module_is_found_by_either_name() -> None:
    # By the module's own name where the distribution is named so, else from every
    # distribution's file list (yaml is PyYAML's); a module nothing provides is left out.
    assert packaging.module_distributions(["jsonschema", "yaml", "no_such_module_here"]) == {
        "jsonschema": ["jsonschema"],
        "yaml": ["PyYAML"],
    }
