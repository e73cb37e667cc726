"""Statements of the Data API stand-in: what ExecuteStatement/BatchExecuteStatement queued,
their sub-statements, results and the API's shapes for them (DescribeStatement's fields,
GetStatementResult's typed fields), shared by the engine that runs them
(`bisonflow.local.redshift.engine`) and the request handlers (`redshift_duckdb`)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bisonflow.local.redshift.engine import _Engine

#: Guards every statement's status and the stores: the handlers (moto's request threads)
#: read what the engines' worker threads write.
_LOCK = threading.RLock()

#: Rows per GetStatementResult page (the real API pages by size, up to 100 MB).
PAGE_ROWS = 1000
#: BatchExecuteStatement's limit on Sqls.
MAX_BATCH = 40

_DONE = ("FINISHED", "FAILED", "ABORTED")
_ID = re.compile(r"^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\d+)?$")


@dataclass
class _Result:
    columns: list[dict[str, Any]]
    records: list[list[dict[str, Any]]]


@dataclass
class _Sub:
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
    result: _Result | None = None

    def describe(self) -> dict[str, Any]:
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
class _Statement:
    id: str
    target_key: str  # "ClusterIdentifier" or "WorkgroupName"
    target: str
    database: str
    subs: list[_Sub]
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
    engine: _Engine | None = field(default=None, repr=False)

    def touch(self, status: str) -> None:
        self.status = status
        self.updated_at = time.time()

    def identity(self) -> dict[str, Any]:
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
                if self.status in _DONE and done
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


# --- values and types -----------------------------------------------------------------------

_TYPE_NAMES: tuple[tuple[str, str], ...] = (
    ("BOOLEAN", "bool"),
    ("TINYINT", "int2"),
    ("SMALLINT", "int2"),
    ("UTINYINT", "int2"),
    ("USMALLINT", "int4"),
    ("INTEGER", "int4"),
    ("UINTEGER", "int8"),
    ("BIGINT", "int8"),
    ("UBIGINT", "numeric"),
    ("HUGEINT", "numeric"),
    ("UHUGEINT", "numeric"),
    ("DECIMAL", "numeric"),
    ("FLOAT", "float4"),
    ("DOUBLE", "float8"),
    ("VARCHAR", "varchar"),
    ("UUID", "varchar"),
    ("DATE", "date"),
    ("TIMESTAMP WITH TIME ZONE", "timestamptz"),
    ("TIMESTAMP", "timestamp"),
    ("TIME WITH TIME ZONE", "timetz"),
    ("TIME", "time"),
    ("INTERVAL", "interval"),
    ("BLOB", "varbyte"),
    ("GEOMETRY", "geometry"),
    ("JSON", "super"),
)


def redshift_type_name(duckdb_type: str) -> str:
    """The Redshift type name the Data API would report for a DuckDB result column."""
    upper = duckdb_type.upper()
    if upper.endswith("]") or upper.startswith(("STRUCT", "MAP", "UNION", "LIST")):
        return "super"
    for prefix, name in _TYPE_NAMES:
        if upper.startswith(prefix):
            return name
    return upper.lower()


def _column_metadata(description: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    columns = []
    for item in description:
        name, type_code = str(item[0]), str(item[1])
        type_name = redshift_type_name(type_code)
        precision = scale = 0
        if m := re.match(r"DECIMAL\((\d+),\s*(\d+)\)", type_code.upper()):
            precision, scale = int(m.group(1)), int(m.group(2))
        columns.append(
            {
                "name": name.lower(),
                "label": name.lower(),
                "typeName": type_name,
                "nullable": 1,
                "isSigned": type_name in ("int2", "int4", "int8", "numeric", "float4", "float8"),
                "isCaseSensitive": type_name == "varchar",
                "isCurrency": False,
                "precision": precision,
                "scale": scale,
                "length": 0,
                "schemaName": "",
                "tableName": "",
            }
        )
    return columns


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value)


def to_field(value: Any, type_name: str) -> dict[str, Any]:
    """One value as a Data API Field."""
    if value is None:
        return {"isNull": True}
    if type_name == "geometry" and isinstance(value, bytes | bytearray):
        return {"stringValue": bytes(value).hex().upper()}  # Redshift shows hex (E)WKB
    if isinstance(value, bool):
        return {"booleanValue": value}
    if isinstance(value, int):
        if -(2**63) <= value < 2**63:
            return {"longValue": value}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        if math.isfinite(value):
            return {"doubleValue": value}
        return {"stringValue": str(value)}  # JSON has no NaN/Infinity
    if isinstance(value, bytes | bytearray):
        return {"blobValue": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dt.datetime):
        return {"stringValue": value.isoformat(sep=" ")}
    if isinstance(value, dt.date | dt.time):
        return {"stringValue": value.isoformat()}
    if isinstance(value, list | tuple | dict):
        return {"stringValue": json.dumps(value, default=_json_default)}
    return {"stringValue": str(value)}


@dataclass
class _Outcome:
    has_result_set: bool = False
    rows: int = 0
    result: _Result | None = None
