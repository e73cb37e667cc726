"""Clean up after a run that ended without finishing: what CleanupTasks does inside a failed
execution, and what the stack's ExecutionEndedUncleanRule asks for after an execution ended
FAILED, ABORTED or TIMED_OUT (StopExecution and TimeoutSeconds run no Catch, and CalcStats
fails uncaught so that a redrive can resume it: docs/aws.md, "Redrive").

The rule's request names the status the execution ended with (`ended`). By the time it runs
the execution may have been redriven (RedriveExecution keeps the ARN and makes it RUNNING
again: Step Functions API reference, RedriveExecution); cleaning up then would terminate the
redriven run's instance and release its lock, so a cleanup for an ended execution that is
running again does nothing and says so. Every part is idempotent: a second cleanup of the same
run (CleanupTasks, then the rule) finds nothing left.

The run's Data API statements still queued or running are cancelled first, so no SQL keeps
working (and billing) for a run that is over. Only "users with the same IAM role or IAM
permissions as the runner" of a statement may act on it (Redshift Management Guide, "Using the
Amazon Redshift Data API"), and ListStatements lists only the caller's role's statements (Data
API reference, ListStatements, RoleLevel), so the cleanup, which has a role of its own, asks the
SQL Lambda (SQL_CANCEL_FUNCTION, its `live` alias) to do it: its role needs only
lambda:InvokeFunction on that alias, and the SQL role only redshift-data:ListStatements more
than it had (bisonflow.steps.statements.cancel_run). If that request fails, the instances, tokens
and lock are still cleaned up before the failure is raised: one part's failure must not leave
the others running (the state machine reports it as CleanupFailed beside the step's error).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.steps.ec2_tasks import cleanup
from bisonflow.steps.month_lock import execution_status, release


class StatementsNotCancelled(RuntimeError):
    """The SQL Lambda could not cancel the run's statements; its error says why."""


def cancel_statements(execution: str) -> list[str]:
    """Ask the SQL Lambda to cancel run `execution`'s live statements; their ids."""
    function = config.statement_canceller()
    try:
        answer = aws.client("lambda").invoke(
            FunctionName=function, Payload=json.dumps({"cancel_run": execution}).encode()
        )
    except ClientError as exc:
        raise StatementsNotCancelled(f"{function} could not be asked to cancel: {exc}") from exc
    body = json.loads(answer["Payload"].read() or b"null")
    if "FunctionError" in answer:
        raise StatementsNotCancelled(
            f"{function} could not cancel the statements of {execution}: "
            f"{body.get('errorType')}: {body.get('errorMessage')}"
        )
    return list(body["cancelled"])


def clean_up_run(execution: str, execution_arn: str | None, ended: str | None) -> dict[str, Any]:
    """Cancel the run's statements, terminate its instances, delete its task tokens and
    release its month lock; raise StatementsNotCancelled after the rest if the cancel failed."""
    if ended and execution_arn and execution_status(execution_arn) == "RUNNING":
        return {
            "terminated": [],
            "deleted_tokens": 0,
            "released_locks": [],
            "cancelled_statements": [],
            "skipped": f"the execution ended {ended} but is running again (redriven)",
        }
    try:
        cancelled, not_cancelled = cancel_statements(execution), None
    except StatementsNotCancelled as exc:
        cancelled, not_cancelled = [], exc
    terminated, deleted = cleanup(execution)
    released = release(execution_arn) if execution_arn else []
    if not_cancelled:
        raise StatementsNotCancelled(
            f"{not_cancelled} (its instances {terminated}, {deleted} task tokens and its "
            f"locks {released} were cleaned up)"
        ) from not_cancelled
    return {
        "terminated": terminated,
        "deleted_tokens": deleted,
        "released_locks": released,
        "cancelled_statements": cancelled,
    }
