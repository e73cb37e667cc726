"""Build the Lambda deployment package: the function modules, the library and its schemas.

One zip serves every function (each has its own handler), so what runs on AWS and what the
local runtime unpacks are byte-for-byte the same files.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from bisonflow import PROJECT_ROOT
from bisonflow.ec2_tasks import USERDATA_TEMPLATE

#: Parts of the library that only the local runtime uses, kept out of the Lambda package.
LOCAL_ONLY = ("bisonflow/local/", "bisonflow/sample/")
FUNCTIONS = ("check_gbif", "submit_statements", "poll_statement", "launch_task", "cleanup_task")


def _package_files() -> list[Path]:
    files = sorted((PROJECT_ROOT / "functions").glob("*.py"))
    files += sorted((PROJECT_ROOT / "bisonflow").rglob("*.py"))
    files += sorted((PROJECT_ROOT / "definitions").glob("*.json"))
    files.append(USERDATA_TEMPLATE)  # launch_task renders the instance's boot script
    return [
        f
        for f in files
        if not any(f.relative_to(PROJECT_ROOT).as_posix().startswith(p) for p in LOCAL_ONLY)
    ]


def lambda_zip() -> bytes:
    """A reproducible zip (fixed timestamps) so an unchanged tree gives an unchanged CodeSha256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in _package_files():
            info = zipfile.ZipInfo(path.relative_to(PROJECT_ROOT).as_posix(), (2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def handler_of(function: str) -> str:
    return f"functions.{function}.handler"
