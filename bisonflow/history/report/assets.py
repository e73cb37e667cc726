"""The scripts and styles report.html inlines, read once from where they are installed.

The graph is laid out in the browser by @dagrejs/dagre: it measures each label in the page's
real font and reserves room for edge labels as ranks of their own, so no label lands on a
node or on another label, and a Parallel branch's box encloses its caption. grandalf, used
before, placed labels after the layout at edge midpoints, where they covered nodes (issue 12).
dagre is installed from the npm registry by scripts/install-report-js, pinned by
vendor/package-lock.json, and inlined here into each page: the page makes no network request.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent
#: dagre's browser build (an IIFE defining the global `dagre`, graphlib bundled in).
DAGRE = Path("@dagrejs") / "dagre" / "dist" / "dagre.min.js"


class ReportAssetMissing(RuntimeError):
    """The layout library is not installed where the report looks for it."""


def report_js_dir() -> Path:
    """Where scripts/install-report-js installed the library: BISONFLOW_REPORT_JS, else
    <venv>/report-js (the same default the script uses)."""
    configured = os.environ.get("BISONFLOW_REPORT_JS")
    return Path(configured) if configured else Path(sys.prefix) / "report-js"


def dagre_js() -> str:
    """dagre's source, or one clear line saying how to install it."""
    path = report_js_dir() / "node_modules" / DAGRE
    if not path.is_file():
        raise ReportAssetMissing(
            f"report.html's layout library is not installed ({path} is missing): "
            "run scripts/install-report-js (scripts/setup-venv runs it)"
        )
    return _read(path)


def own(name: str) -> str:
    """One of this package's own files (report.css, graph.js, report.js)."""
    return _read(_HERE / name)


@cache
def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")
