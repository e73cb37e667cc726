"""Describe a submitted statement; raise SqlStatementFailed with the SQL error if it failed,
and SqlStatementTimedOut, after cancelling it, if it ran past SQL_STATEMENT_TIMEOUT_SECONDS.

`result` carries the statement's summary rows ({tally: {label: value}}) once it finished
with a result set, else null: the aggregate step's counts reach the execution history.

`{"cancel_run": <execution name>}` instead cancels every statement that run left queued or
running: the cleanup's request (bisonflow.steps.run_cleanup). Only the role that ran a statement may
act on it (bisonflow.steps.statements.cancel_run), and this Lambda has the SQL role.

Not Step Functions' own `aws-sdk:redshiftdata:describeStatement` task: the machine's role may
not describe the SQL role's statements, the stopped-run cleanup needs this Lambda anyway,
JSONPath cannot compute the CreatedAt bound or fold the summary (moto 5.2.5 evaluates no
JSONata), and moto 5.2.5 runs no `redshiftdata` task ("Unknown service"): docs, "SQL polling".
"""

from __future__ import annotations

from typing import Any

from bisonflow.steps.lambda_edge import step_handler
from bisonflow.steps.statements import cancel_run, poll
from bisonflow.steps.waits import sql_statement_timeout_seconds


@step_handler("poll_statement")
def handler(event: dict[str, Any]) -> dict[str, Any]:
    if "cancel_run" in event:
        return {"cancelled": cancel_run(event["cancel_run"])}
    polled = poll(event["statement_id"], sql_statement_timeout_seconds())
    next_batch = event["batch"] + 1
    return {
        **event,
        "status": polled.status,
        "result": polled.result,
        "next_batch": next_batch,
        "more_batches": next_batch < event["batches"],
    }
