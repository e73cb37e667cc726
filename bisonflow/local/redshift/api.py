"""The Data API's HTTP side: the request handlers that replace moto's on its
redshift-data response class (`bisonflow.local.redshift.service.install` sets HANDLERS).

Each handler reads the request's parameters through moto, answers in the API's JSON
shapes (`bisonflow.local.redshift.records`) and refuses what the API refuses with its
errors (ValidationException, ResourceNotFoundException). A statement is visible only to
the role that ran it (`bisonflow.local.redshift.owner`). Nothing here runs SQL: a submit
queues the statement on its database's engine and answers at once, as the API does.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from bisonflow.local.redshift.owner import may_see
from bisonflow.local.redshift.records import FINAL_STATES, LOCK, Statement, SubStatement
from bisonflow.local.redshift.sql_text import split_statements
from bisonflow.local.redshift.store import Store, store_of

__all__ = ["HANDLERS", "MAX_BATCH", "PAGE_ROWS"]

#: Rows per GetStatementResult page (the real API pages by size, up to 100 MB).
PAGE_ROWS = 1000
#: BatchExecuteStatement's limit on Sqls.
MAX_BATCH = 40
#: A statement Id, or a batch's sub-statement Id "<id>:<n>" (the API's pattern for Id).
_ID = re.compile(r"^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$")

Answer = tuple[int, dict[str, str], str]


def _validation(message: str) -> Exception:
    """The API's ValidationException (400), raised through moto's own error handling."""
    from moto.redshiftdata.exceptions import ValidationException

    return ValidationException(message)


def _not_found() -> Exception:
    """ResourceNotFoundException: also what a statement of another role looks like."""
    from moto.redshiftdata.exceptions import ResourceNotFoundException

    return ResourceNotFoundException()


def _json(body: dict[str, Any]) -> Answer:
    """A JSON 1.1 answer, as the Data API's protocol (awsJson1_1) sends it."""
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body)


def _find(store: Store, statement_id: str) -> tuple[Statement, SubStatement | None]:
    """The statement an Id names, and the sub-statement if it names one of a batch's."""
    if not isinstance(statement_id, str) or not _ID.match(statement_id):
        raise _validation(
            "id must satisfy regex pattern: ^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d+)?$"
        )
    base, _, number = statement_id.partition(":")
    statement = store.statements.get(base)
    if statement is None:
        raise _not_found()
    if not number:
        return statement, None
    index = int(number)
    if not statement.is_batch or not 1 <= index <= len(statement.subs):
        raise _not_found()
    return statement, statement.subs[index - 1]


def _owned(response: Any, statement_id: str) -> tuple[Statement, SubStatement | None]:
    """The statement, if the caller's role ran it (bisonflow.local.redshift.owner)."""
    statement, sub = _find(store_of(response), statement_id)
    if not may_see(response, statement.id):
        raise _not_found()
    return statement, sub


def _submit(response: Any, sqls: list[str], is_batch: bool) -> Statement:
    """Record and queue a statement; the Data API answers before any SQL runs."""
    workgroup = response._get_param("WorkgroupName")
    cluster = response._get_param("ClusterIdentifier")
    if bool(workgroup) == bool(cluster):
        raise _validation("Specify exactly one of ClusterIdentifier and WorkgroupName")
    target_key, target = (
        ("WorkgroupName", workgroup) if workgroup else ("ClusterIdentifier", cluster)
    )
    database = response._get_param("Database") or "dev"
    for sql in sqls:
        if not isinstance(sql, str) or not sql.strip():
            raise _validation("SQL statements must be non-empty strings")
    store = store_of(response)
    now = time.time()
    statement_id = str(uuid.uuid4())
    subs = [
        SubStatement(
            id=f"{statement_id}:{n}" if is_batch else statement_id, sql=sql, created_at=now
        )
        for n, sql in enumerate(sqls, start=1)
    ]
    statement = Statement(
        id=statement_id,
        target_key=target_key,
        target=target,
        database=database,
        subs=subs,
        is_batch=is_batch,
        created_at=now,
        db_user=response._get_param("DbUser"),
        secret_arn=response._get_param("SecretArn"),
        statement_name=response._get_param("StatementName"),
        parameters=None if is_batch else response._get_param("Parameters"),
    )
    engine = store.engine(target_key, target, database)
    with LOCK:
        store.statements[statement_id] = statement
    engine.submit(statement)
    return statement


def _execute_statement(self: Any) -> Answer:
    """ExecuteStatement: one SQL statement (several in one Sql are refused)."""
    sql = self._get_param("Sql")
    if not isinstance(sql, str) or not sql.strip():
        raise _validation("Sql must be a non-empty string")
    if len(split_statements(sql)) > 1:
        raise _validation(
            "ExecuteStatement runs one SQL statement; use BatchExecuteStatement for several"
        )
    return _json(_submit(self, [sql], is_batch=False).identity())


def _batch_execute_statement(self: Any) -> Answer:
    """BatchExecuteStatement: up to MAX_BATCH statements, run as one transaction."""
    sqls = self._get_param("Sqls")
    if not isinstance(sqls, list) or not sqls:
        raise _validation("Sqls must be a non-empty list of SQL statements")
    if len(sqls) > MAX_BATCH:
        raise _validation(f"Sqls may hold at most {MAX_BATCH} statements, got {len(sqls)}")
    return _json(_submit(self, sqls, is_batch=True).identity())


def _describe_statement(self: Any) -> Answer:
    """DescribeStatement of a statement, a batch or one of its sub-statements ("<id>:<n>")."""
    statement, sub = _owned(self, self._get_param("Id"))
    with LOCK:
        if sub is None:
            return _json(statement.describe())
        body = statement.identity()
        body.update(sub.describe())
        body["RedshiftPid"] = statement.redshift_pid
        return _json(body)


def _get_statement_result(self: Any) -> Answer:
    """GetStatementResult: a finished query's rows, PAGE_ROWS a page, NextToken for more."""
    statement_id = self._get_param("Id")
    statement, sub = _owned(self, statement_id)
    with LOCK:
        if sub is None:
            if statement.is_batch:
                raise _validation(
                    f"{statement_id} is a batch; fetch the result of one of its statements "
                    f"with Id {statement_id}:<n>"
                )
            sub = statement.subs[0]
        if sub.status != "FINISHED":
            raise _validation(f"Query has not finished: its status is {sub.status}")
        if sub.result is None:
            raise _validation("Query does not have result. Please check query status.")
        result = sub.result
    token = self._get_param("NextToken")
    try:
        start = int(token) if token else 0
    except ValueError:
        raise _validation(f"invalid NextToken {token!r}") from None
    page = result.records[start : start + PAGE_ROWS]
    body: dict[str, Any] = {
        "ColumnMetadata": result.columns,
        "Records": page,
        "TotalNumRows": len(result.records),
    }
    if start + PAGE_ROWS < len(result.records):
        body["NextToken"] = str(start + PAGE_ROWS)
    return _json(body)


def _cancel_statement(self: Any) -> Answer:
    """CancelStatement: refused for a statement already ended, as the API refuses it."""
    statement_id = self._get_param("Id")
    statement, sub = _owned(self, statement_id)
    if sub is not None:
        raise _validation("cancel the batch by its Id, not a sub-statement Id")
    engine = store_of(self).engine_of(statement)
    with LOCK:
        if statement.status in FINAL_STATES:
            raise _validation(
                f"Could not cancel a query that is already in {statement.status} state "
                f"with ID: {statement_id}"
            )
        if engine is not None:
            engine.cancel(statement)
        else:  # its engine was stopped: nothing runs it any more
            statement.cancel_requested = True
            if statement.status in ("SUBMITTED", "PICKED"):
                statement.abort_from(0)
    return _json({"Status": True})


def _list_statements(self: Any) -> Answer:
    """ListStatements: newest first, by Status and StatementName prefix, the caller's role's
    only (RoleLevel), paged by MaxResults."""
    store = store_of(self)
    status = (self._get_param("Status") or "ALL").upper()
    name = self._get_param("StatementName")
    token = self._get_param("NextToken")
    limit = int(self._get_param("MaxResults") or 100)
    with LOCK:
        chosen = sorted(store.statements.values(), key=lambda s: s.created_at, reverse=True)
        if status != "ALL":
            chosen = [s for s in chosen if s.status == status]
        if name:
            chosen = [s for s in chosen if (s.statement_name or "").startswith(name)]
        role_level = self._get_param("RoleLevel")
        chosen = [s for s in chosen if may_see(self, s.id, role_level is not False)]
        start = int(token) if token else 0
        page = [s.summary() for s in chosen[start : start + limit]]
    body: dict[str, Any] = {"Statements": page}
    if start + limit < len(chosen):
        body["NextToken"] = str(start + limit)
    return _json(body)


#: moto's handler name (the snake-case action) -> the stand-in's handler; `service.SEAM`
#: (`bisonflow.local.redshift.seam.data_api_seam`) installs them.
HANDLERS: dict[str, Callable[[Any], Answer]] = {
    "execute_statement": _execute_statement,
    "batch_execute_statement": _batch_execute_statement,
    "describe_statement": _describe_statement,
    "get_statement_result": _get_statement_result,
    "cancel_statement": _cancel_statement,
    "list_statements": _list_statements,
}
