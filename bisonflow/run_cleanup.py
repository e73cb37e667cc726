"""Clean up after a run that ended without finishing: what CleanupTasks does inside a failed
execution, and what the stack's ExecutionEndedUncleanRule asks for after an execution ended
FAILED, ABORTED or TIMED_OUT (StopExecution and TimeoutSeconds run no Catch, and CalcStats
fails uncaught so that a redrive can resume it: README, "Redrive").

The rule's request names the status the execution ended with (`ended`). By the time it runs
the execution may have been redriven (RedriveExecution keeps the ARN and makes it RUNNING
again: Step Functions API reference, RedriveExecution); cleaning up then would terminate the
redriven run's instance and release its lock, so a cleanup for an ended execution that is
running again does nothing and says so. Every part is idempotent: a second cleanup of the same
run (CleanupTasks, then the rule) finds nothing left.
"""

from __future__ import annotations

from typing import Any

from bisonflow.ec2_tasks import cleanup
from bisonflow.month_lock import execution_status, release


def clean_up_run(execution: str, execution_arn: str | None, ended: str | None) -> dict[str, Any]:
    """Terminate the run's instances, delete its task tokens and release its month lock."""
    if ended and execution_arn and execution_status(execution_arn) == "RUNNING":
        return {
            "terminated": [],
            "deleted_tokens": 0,
            "released_locks": [],
            "skipped": f"the execution ended {ended} but is running again (redriven)",
        }
    terminated, deleted = cleanup(execution)
    released = release(execution_arn) if execution_arn else []
    return {"terminated": terminated, "deleted_tokens": deleted, "released_locks": released}
