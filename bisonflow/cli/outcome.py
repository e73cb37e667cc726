"""The exit code of a command that followed an execution to its end (`run`, `watch`).

A SUCCEEDED execution may not have processed its month (no GBIF snapshot yet, the month
already processed, or another run holding the month): that is said on the console, and is an
error only for a caller who asks (--require-processed), as a scheduler retrying an early
month would.
"""

from __future__ import annotations

import json
from typing import Any

from bisonflow.cli.output import say

#: What --require-processed means on `run` and `watch`.
REQUIRE_PROCESSED_HELP = (
    "exit 3 when the execution succeeded without processing the month (no GBIF snapshot "
    "yet, or already processed); without it such a run exits 0 and says why"
)
#: The exit code of a run that skipped its month, under --require-processed.
EXIT_SKIPPED = 3


def skipped_reason(description: dict[str, Any]) -> str | None:
    """Why a SUCCEEDED execution did not process its month (CheckGbif's `reason`, which the
    NoSnapshotYet / AlreadyProcessed states pass on as the output, or the month lock's, which
    MonthAlreadyRunning passes on naming the running execution); None if it processed it."""
    if description.get("status") != "SUCCEEDED":
        return None
    try:
        output = json.loads(description.get("output") or "{}")
    except ValueError:
        return None
    if not isinstance(output, dict):
        return None
    if (
        output.get("snapshot_exists") is False
        or output.get("already_processed") is True
        or output.get("already_running") is True
    ):
        return str(output.get("reason") or "the month was not processed")
    return None


def outcome(description: dict[str, Any], require_processed: bool) -> int:
    """The exit code of `run` / `watch`: 0 on SUCCEEDED, 1 otherwise; a skipped month is said
    on the console and exits EXIT_SKIPPED only when --require-processed asks for it."""
    reason = skipped_reason(description)
    if reason:
        say(f"month not processed: {reason}")
        return EXIT_SKIPPED if require_processed else 0
    return 0 if description["status"] == "SUCCEEDED" else 1
