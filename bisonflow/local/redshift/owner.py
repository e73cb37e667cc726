"""Emulator seam: a Data API statement is the business of the IAM role that ran it, as on AWS.

"Users with the same IAM role or IAM permissions as the runner" of a statement can act on it
(Redshift Management Guide, "Using the Amazon Redshift Data API"), and ListStatements returns
"all statements run by the caller's IAM role" (RoleLevel true, the default) or "only
statements run by the caller's IAM role in the current IAM session" (RoleLevel false; Data API
reference, ListStatements). So a Lambda with a role of its own, such as the cleanup, cannot
list or cancel the SQL role's statements (docs/faults.md: the cleanup asks the SQL Lambda).

The DuckDB stand-in kept every statement visible to every caller. It now asks this module: a
statement submitted by a role session (the IAM seam records its aws:userid,
bisonflow.local.iam.data_api_requests.STATEMENT_OWNERS) is visible only to sessions of that
role; DescribeStatement, GetStatementResult and CancelStatement by another role get the
stand-in's "not found" (ResourceNotFoundException: AWS's exact answer to a statement of
another role is not documented; to that caller the statement does not exist). Requests signed
with the operator's long-term keys see everything, as the IAM seam lets them do anything.
"""

from __future__ import annotations

from typing import Any

from bisonflow.local.iam.data_api_requests import STATEMENT_OWNERS
from bisonflow.local.iam.policies import UnknownSession, find_session
from bisonflow.local.iam.seam import request_access_key


def _caller(response: Any) -> str | None:
    """The caller's aws:userid ("<role id>:<session name>"), or None for the operator."""
    key = request_access_key(response)
    if not key:
        return None
    try:
        session = find_session(response.current_account, key)
    except UnknownSession:
        return None  # the IAM seam refuses such a request before it gets here
    return None if session is None else session.user_id


def may_see(response: Any, statement_id: str, role_level: bool = True) -> bool:
    """Whether the caller may see statement `statement_id` (a batch's id for its parts)."""
    caller = _caller(response)
    owner = STATEMENT_OWNERS.get(statement_id.split(":")[0])
    if caller is None or owner is None:
        return True
    if role_level:
        return caller.split(":")[0] == owner.split(":")[0]
    return caller == owner
