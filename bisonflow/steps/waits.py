"""Bounds on every wait of the workflow (issue 11), read only from the environment.

A month must end, whatever hangs: the execution as a whole (the state machine's
TimeoutSeconds), each callback task (HeartbeatSeconds / TimeoutSeconds, bisonflow.config
Timing), each SQL statement (SQL_STATEMENT_TIMEOUT_SECONDS: the poll Lambda cancels a
statement running longer and fails the step), and the wait for a late GBIF snapshot
(SNAPSHOT_WAIT_DAYS, rechecked every SNAPSHOT_RECHECK_SECONDS).

Step Functions' own limits make these necessary: a Standard execution may run a year, and
its history holds at most 25,000 events (Developer Guide, "Step Functions service quotas"),
which a statement polled every 30 s without a bound would exhaust in about a day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bisonflow.config import env_float, env_int
from bisonflow.steps.gbif_snapshot import SnapshotCheck

DAY_SECONDS = 86_400
#: The longest wait for a late snapshot the template allows (its SnapshotWaitDays pattern).
MAX_SNAPSHOT_WAIT_DAYS = 10
#: What a month's processing may take once the snapshot is there: two callback tasks of at
#: most TaskTimeoutSeconds (4 h by default) each tried up to three times, and the SQL.
PROCESSING_BUDGET_SECONDS = 2 * DAY_SECONDS
#: The state machine's TimeoutSeconds (statemachines/bison_workflow.asl.json; test_asl
#: checks they agree): the longest snapshot wait plus the processing budget, after which
#: Step Functions ends the execution TIMED_OUT, which the alarm rule reports.
EXECUTION_TIMEOUT_SECONDS = MAX_SNAPSHOT_WAIT_DAYS * DAY_SECONDS + PROCESSING_BUDGET_SECONDS

#: Default bound on one Data API statement: the subset of a whole GBIF snapshot takes
#: minutes to an hour on Redshift Serverless; 3 h of 30 s polls is ~3,000 history events.
DEFAULT_SQL_STATEMENT_TIMEOUT_SECONDS = 3 * 3600


def sql_statement_timeout_seconds() -> int:
    """SQL_STATEMENT_TIMEOUT_SECONDS: a statement still running after this long (since the
    Data API's CreatedAt) is cancelled and fails its step with SqlStatementTimedOut."""
    return env_int(
        "SQL_STATEMENT_TIMEOUT_SECONDS", DEFAULT_SQL_STATEMENT_TIMEOUT_SECONDS, minimum=1
    )


@dataclass(frozen=True)
class SnapshotWait:
    """How long a scheduled run waits for GBIF's snapshot, and how often it looks again."""

    days: float
    recheck_seconds: int

    @classmethod
    def from_env(cls) -> SnapshotWait:
        return cls(
            days=env_float(
                "SNAPSHOT_WAIT_DAYS",
                7.0,
                minimum=0,
                maximum=MAX_SNAPSHOT_WAIT_DAYS,
                unit=" days (the state machine's TimeoutSeconds allows no longer)",
            ),
            recheck_seconds=env_int("SNAPSHOT_RECHECK_SECONDS", 6 * 3600, minimum=1),
        )


def late_snapshot(
    check: SnapshotCheck,
    scheduled_time: str | None,
    force: bool,
    wait: SnapshotWait,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """What CheckGbif adds so the state machine can wait for a late snapshot.

    Only a scheduled run waits: GBIF publishes on the 1st and the schedule fires on the 2nd,
    so a missing snapshot then is usually late, not absent; a run started by hand for a month
    GBIF never published ends at once (NoSnapshotYet). The deadline is the scheduled time
    plus SNAPSHOT_WAIT_DAYS, so a retried or redriven run never waits longer. Past it, the
    state machine fails the run with SnapshotNotPublished, which the alarm rule reports.

    Returns `scheduled`, `wait_for_snapshot`, `reason` (which says until when it waits, or
    that the wait is over) and `recheck`, the input CheckGbif takes again after the wait.
    """
    recheck: dict[str, Any] = {"month": check.month, "force": force}
    if scheduled_time is None:
        return {"scheduled": False, "wait_for_snapshot": False, "recheck": recheck}
    recheck["scheduled_time"] = scheduled_time
    scheduled = dt.datetime.fromisoformat(scheduled_time.replace("Z", "+00:00"))
    deadline = scheduled + dt.timedelta(days=wait.days)
    waiting = not check.snapshot_exists and (now or dt.datetime.now(dt.UTC)) < deadline
    reason = check.reason
    if not check.snapshot_exists:
        until = deadline.astimezone(dt.UTC).isoformat(timespec="seconds")
        reason += (
            f"; rechecking every {wait.recheck_seconds} s until {until}"
            if waiting
            else f"; the wait for it ended at {until} ({wait.days:g} days after the scheduled "
            f"time {scheduled_time}, SNAPSHOT_WAIT_DAYS)"
        )
    return {"scheduled": True, "wait_for_snapshot": waiting, "reason": reason, "recheck": recheck}
