"""The Data API's statement records of the stand-in: what ExecuteStatement and
BatchExecuteStatement queued, their sub-statements, results and statuses, and the API's
shapes for them (DescribeStatement's and ListStatements' fields).

Shared by the request handlers (`bisonflow.local.redshift.api`), which read them, and the
engine (`bisonflow.local.redshift.engine`), which writes them from its worker thread: every
read and write of a status holds LOCK. A record holds no engine: the store finds a
statement's engine by its target (`bisonflow.local.redshift.store`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["FINAL_STATES", "LOCK", "Outcome", "ResultSet", "Statement", "SubStatement"]

#: Guards every statement's status and the stores: the handlers (moto's request threads)
#: read what the engines' worker threads write.
LOCK = threading.RLock()

#: The statuses a statement ends in (Data API reference, DescribeStatement, Status).
FINAL_STATES = ("FINISHED", "FAILED", "ABORTED")


@dataclass
class ResultSet:
    """A query's rows, already as the Data API returns them (GetStatementResult's
    ColumnMetadata and Records), so paging them is slicing."""

    columns: list[dict[str, Any]]
    records: list[list[dict[str, Any]]]


@dataclass
class SubStatement:
    """One SQL statement: the whole of an ExecuteStatement, or one of a batch's Sqls."""

    id: str
    sql: str
    created_at: float
    status: str = "SUBMITTED"
    error: str | None = None
    updated_at: float = 0.0
    duration_ns: int = -1
    has_result_set: bool = False
    result_rows: int = -1
    result_size: int = -1
    redshift_query_id: int = 0
    result: ResultSet | None = None

    def describe(self) -> dict[str, Any]:
        """DescribeStatement's fields of this sub-statement (a batch's SubStatements)."""
        out: dict[str, Any] = {
            "Id": self.id,
            "QueryString": self.sql,
            "Status": self.status,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at or self.created_at,
            "Duration": self.duration_ns,
            "HasResultSet": self.has_result_set,
            "ResultRows": self.result_rows,
            "ResultSize": self.result_size,
            "RedshiftQueryId": self.redshift_query_id,
        }
        if self.error is not None:
            out["Error"] = self.error
        return out


@dataclass
class Statement:
    """What one ExecuteStatement or BatchExecuteStatement submitted, and how it went.

    The record of the API, not of the database: the engine that runs it is found by
    (target_key, target, database) in the store (`bisonflow.local.redshift.store`), so a
    record can be described, listed and kept after its engine is stopped."""

    id: str
    target_key: str  # "ClusterIdentifier" or "WorkgroupName"
    target: str
    database: str
    subs: list[SubStatement]
    is_batch: bool
    created_at: float
    db_user: str | None = None
    secret_arn: str | None = None
    statement_name: str | None = None
    parameters: list[dict[str, str]] | None = None
    status: str = "SUBMITTED"
    error: str | None = None
    updated_at: float = 0.0
    redshift_pid: int = 0
    cancel_requested: bool = False

    def touch(self, status: str) -> None:
        """Move to `status` now (UpdatedAt is when the status last changed)."""
        self.status = status
        self.updated_at = time.time()

    def abort_from(self, first: int) -> None:
        """ABORTED: sub-statements `first` on (0-based) and the statement. Called under LOCK
        when a cancel or a stop reaches it, queued or between two sub-statements."""
        self.abort_subs_from(first)
        self.touch("ABORTED")

    def abort_subs_from(self, first: int) -> None:
        """ABORTED: sub-statements `first` on (0-based), which will not run (the statement
        itself ends otherwise: FAILED when one before them failed)."""
        now = time.time()
        for sub in self.subs[first:]:
            sub.status = "ABORTED"
            sub.updated_at = now

    def identity(self) -> dict[str, Any]:
        """The fields ExecuteStatement answers with, and every description starts with."""
        out: dict[str, Any] = {
            "Id": self.id,
            "CreatedAt": self.created_at,
            "Database": self.database,
            self.target_key: self.target,
        }
        if self.db_user:
            out["DbUser"] = self.db_user
        if self.secret_arn:
            out["SecretArn"] = self.secret_arn
        return out

    def describe(self) -> dict[str, Any]:
        """DescribeStatement's answer for the whole statement or batch."""
        done = [s for s in self.subs if s.duration_ns >= 0]
        out = self.identity()
        out.update(
            {
                "Status": self.status,
                "UpdatedAt": self.updated_at or self.created_at,
                "QueryString": ";\n".join(s.sql for s in self.subs)
                if self.is_batch
                else self.subs[0].sql,
                "Duration": sum(s.duration_ns for s in done)
                if self.status in FINAL_STATES and done
                else -1,
                "HasResultSet": any(s.has_result_set for s in self.subs),
                "ResultRows": self.subs[-1].result_rows if not self.is_batch else -1,
                "ResultSize": self.subs[-1].result_size if not self.is_batch else -1,
                "RedshiftPid": self.redshift_pid,
                "RedshiftQueryId": self.subs[-1].redshift_query_id,
                "ResultFormat": "JSON",
            }
        )
        if self.parameters:
            out["QueryParameters"] = self.parameters
        if self.error is not None:
            out["Error"] = self.error
        if self.is_batch:
            out["SubStatements"] = [s.describe() for s in self.subs]
        return out

    def summary(self) -> dict[str, Any]:
        """One entry of ListStatements' Statements."""
        out: dict[str, Any] = {
            "Id": self.id,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at or self.created_at,
            "Status": self.status,
            "IsBatchStatement": self.is_batch,
        }
        if self.is_batch:
            out["QueryStrings"] = [s.sql for s in self.subs]
        else:
            out["QueryString"] = self.subs[0].sql
        if self.statement_name:
            out["StatementName"] = self.statement_name
        if self.secret_arn:
            out["SecretArn"] = self.secret_arn
        if self.parameters:
            out["QueryParameters"] = self.parameters
        return out


@dataclass
class Outcome:
    """What running one SQL statement produced, for its SubStatement's fields."""

    has_result_set: bool = False
    rows: int = 0
    result: ResultSet | None = None
