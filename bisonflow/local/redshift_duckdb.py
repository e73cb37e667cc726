"""The Redshift Data API on DuckDB: patches moto's redshift-data service to run real SQL.

moto 5.2.5's redshift-data backend accepts statements but runs nothing: it has no
BatchExecuteStatement, ignores WorkgroupName and answers GetStatementResult with a canned
table. `install()` (idempotent; call it in the process that runs the moto server, e.g. before
`ThreadedMotoServer.start()`) replaces its request handlers so that

* ExecuteStatement (WorkgroupName or ClusterIdentifier, plus Database) and
  BatchExecuteStatement (Sqls) return an Id at once and queue the SQL; one worker thread per
  (workgroup or cluster, database) runs its statements serially, in submission order, on that
  target's own in-memory DuckDB database. A batch is one transaction, as on Redshift.
* DescribeStatement walks SUBMITTED -> PICKED -> STARTED -> FINISHED, or FAILED with `Error`
  holding the SQL error and naming the failing statement (batches list SubStatements
  "<id>:<n>" with their own Status, Error and QueryString), or ABORTED after CancelStatement.
* GetStatementResult pages a SELECT's real rows (ColumnMetadata with Redshift type names,
  Records of longValue/doubleValue/stringValue/booleanValue/isNull), NextToken included.
* ListStatements lists what was submitted.

`shutdown()` stops the workers and forgets every statement and database (moto's backends
outlive a server in the same process); the handlers stay installed. `run_batches()` runs a
step's batches one after the other through any Data API client, for tests and benchmarks.

The SQL is Redshift's: `bisonflow.local.sql_transpile` translates it to DuckDB with sqlglot
and parses the statements that touch S3 (CREATE EXTERNAL SCHEMA/TABLE, COPY, UNLOAD), which
this module then carries out.

S3 is moto's own S3, reached in-process (`bisonflow.local.moto_s3` says why, not httpfs).
COPY's and ST_Read's objects are copied to temporary files that DuckDB reads; UNLOAD's output
is written to a temporary file and put back into the bucket. External tables are read in
place, as Spectrum reads them (`bisonflow.local.external_tables`): nothing is read at CREATE
EXTERNAL TABLE, and each statement scans the files the location holds when it runs.

Every moto attribute this module relies on is listed in SEAM; `seam_problems()` checks them,
and `install()` refuses to patch a moto whose seam has moved.

Where the emulator knowingly differs from Redshift:

* An external table is a view over `read_parquet` of the objects under LOCATION, listed
  before each statement and fetched once per ETag into a local cache (Spectrum reads S3
  itself); a location with no files is an empty table. Parquet columns are matched by name
  (case-insensitively), a column the files lack reads as NULL, and scalar types are CAST;
  a column declared with a type the files do not hold fails every query reading it with
  Spectrum's "incompatible Parquet schema" error (`bisonflow.local.spectrum_types`).
* GEOMETRY carries DuckDB's CRS instead of an SRID; ST_SetSRID(g, n) becomes
  ST_SetCRS(g, 'EPSG:n') and columns loaded from shapefiles drop the CRS, so SRID mismatches
  that Redshift reports as errors pass silently. SIMPLIFY is accepted and ignored.
* Spatial functions refuse what Redshift's refuse for the SQL this project emits (a geometry
  collection in ST_Covers, ST_Intersects, ...): `redshift_rules` lists what it checks.
* UNLOAD writes one part (one slice), and none for an empty result, as Redshift does;
  MANIFEST writes `<prefix>manifest` listing the parts ({"entries": [{"url", "meta":
  {"content_length", "record_count"}}]}); MANIFEST VERBOSE, MAXFILESIZE and PARTITION BY are
  not emulated. COPY honours CSV/plain text/PARQUET/SHAPEFILE and their common options only.
* Statements in a batch run in one DuckDB transaction; S3 writes of an UNLOAD are not undone
  by a later failure (nor are they on Redshift).
* Identifiers are folded to lower case, as Redshift does by default; DuckDB error texts are
  DuckDB's, prefixed "ERROR: ".
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import datetime as dt
import decimal
import importlib
import inspect
import itertools
import json
import math
import queue
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from bisonflow.duckdb_ext import load_spatial
from bisonflow.local import redshift_rules
from bisonflow.local import sql_transpile as st
from bisonflow.local.external_tables import ExternalTable
from bisonflow.local.moto_s3 import EmulatorError, MotoS3, split_s3_uri

__all__ = [
    "EmulatorError",
    "PAGE_ROWS",
    "PATCHED",
    "SEAM",
    "SeamTarget",
    "install",
    "installed",
    "run_batches",
    "seam_problems",
    "shutdown",
    "uninstall",
]


# --- the seam -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeamTarget:
    """One moto attribute this module patches or relies on.

    `params` are the leading parameter names its signature must have (None: not callable or
    not checked); `patched` marks handlers `install()` replaces; `added` marks handlers moto
    does not have, which `install()` adds.
    """

    module: str
    qualname: str
    params: tuple[str, ...] | None = None
    patched: bool = False
    added: bool = False


_RESPONSES = "moto.redshiftdata.responses"
_RESPONSE_CLASS = "RedshiftDataAPIServiceResponse"

#: Request handlers on moto's RedshiftDataAPIServiceResponse that install() sets. moto finds
#: a handler by the snake-case action name among the class's plain functions.
PATCHED: tuple[str, ...] = (
    "execute_statement",
    "batch_execute_statement",
    "describe_statement",
    "get_statement_result",
    "cancel_statement",
    "list_statements",
)
_ADDED = frozenset({"batch_execute_statement", "list_statements"})

SEAM: tuple[SeamTarget, ...] = (
    *(
        SeamTarget(
            _RESPONSES,
            f"{_RESPONSE_CLASS}.{name}",
            ("self",),
            patched=True,
            added=name in _ADDED,
        )
        for name in PATCHED
    ),
    # What the handlers use on the response object.
    SeamTarget(_RESPONSES, f"{_RESPONSE_CLASS}.redshiftdata_backend"),
    SeamTarget("moto.core.responses", "BaseResponse._get_param", ("self", "param_name")),
    SeamTarget("moto.core.responses", "BaseResponse.setup_class", ("self", "request")),
    SeamTarget("moto.core.responses", "BaseResponse.call_action", ("self",)),
    SeamTarget("moto.core.utils", "method_names_from_class", ("clazz",)),
    SeamTarget("moto.redshiftdata.models", "redshiftdata_backends"),
    SeamTarget("moto.redshiftdata.exceptions", "ValidationException", ("message",)),
    SeamTarget("moto.redshiftdata.exceptions", "ResourceNotFoundException", ()),
    # moto's S3, used in-process.
    SeamTarget("moto.s3.models", "s3_backends"),
    SeamTarget("moto.s3.models", "FakeKey.value"),
    SeamTarget("moto.s3.models", "FakeKey.etag"),
    SeamTarget("moto.s3.models", "S3Backend.get_bucket", ("self", "bucket_name")),
    SeamTarget("moto.s3.models", "S3Backend.get_object", ("self", "bucket_name", "key_name")),
    SeamTarget(
        "moto.s3.models", "S3Backend.put_object", ("self", "bucket_name", "key_name", "value")
    ),
    SeamTarget("moto.s3.models", "S3Backend.delete_object", ("self", "bucket_name", "key_name")),
    SeamTarget("moto.s3.exceptions", "MissingBucket", ("bucket",)),
    SeamTarget("moto.utilities.utils", "get_partition", ("region",)),
    SeamTarget("moto.core", "DEFAULT_ACCOUNT_ID"),
)


def _resolve(target: SeamTarget) -> Any:
    obj: Any = importlib.import_module(target.module)
    for part in target.qualname.split("."):
        obj = inspect.getattr_static(obj, part)
    return obj


def seam_problems() -> list[str]:
    """What no longer matches SEAM in the installed moto (empty when all is well)."""
    problems: list[str] = []
    for target in SEAM:
        where = f"{target.module}.{target.qualname}"
        try:
            obj = _resolve(target)
        except (ImportError, AttributeError) as missing:
            if target.added:
                continue  # moto does not have it; install() adds it
            problems.append(f"{where} is missing ({missing})")
            continue
        if target.added and not getattr(obj, "_bisonflow_seam", False):
            problems.append(
                f"{where} now exists in moto; check it before letting install() replace it"
            )
            continue
        if target.params is None:
            continue
        func = obj.fget if isinstance(obj, property) else obj
        func = getattr(func, "__func__", func)
        try:
            names = tuple(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            problems.append(f"{where} has no inspectable signature")
            continue
        if names[: len(target.params)] != target.params:
            problems.append(f"{where} takes {names}, expected {target.params} first")
    return problems


# --- errors ---------------------------------------------------------------------------------


def _validation(message: str) -> Exception:
    from moto.redshiftdata.exceptions import ValidationException

    return ValidationException(message)


def _not_found() -> Exception:
    from moto.redshiftdata.exceptions import ResourceNotFoundException

    return ResourceNotFoundException()


# --- statements -----------------------------------------------------------------------------

#: Rows per GetStatementResult page (the real API pages by size, up to 100 MB).
PAGE_ROWS = 1000
#: BatchExecuteStatement's limit on Sqls.
MAX_BATCH = 40
#: The object UNLOAD ... MANIFEST writes beside the parts: `<prefix>manifest`.
MANIFEST_NAME = "manifest"

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


# --- one DuckDB database per (target, database) ---------------------------------------------

#: Engines' scratch folders (cached external-table parts), removed at interpreter exit.
_TMP_DIRS: list[Path] = []


@atexit.register
def _remove_scratch() -> None:
    for path in _TMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class _Outcome:
    has_result_set: bool = False
    rows: int = 0
    result: _Result | None = None


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _one_line(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Engine:
    """A DuckDB database standing in for one Redshift database, with its worker thread."""

    def __init__(self, label: str, s3: MotoS3) -> None:
        self.label = label
        self.s3 = s3
        self.tmp = Path(tempfile.mkdtemp(prefix="bisonflow-redshift-"))
        _TMP_DIRS.append(self.tmp)
        self.queue: queue.Queue[_Statement | None] = queue.Queue()
        self.external_schemas: set[str] = set()
        self.external_tables: dict[tuple[str, str], ExternalTable] = {}
        self.query_ids = itertools.count(random.randint(1000, 9000))
        self.pid = random.randint(1000, 65000)
        self.con: duckdb.DuckDBPyConnection | None = None
        self.running: _Statement | None = None
        self.thread = threading.Thread(target=self._work, name=f"redshift-{label}", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Abort what is queued, interrupt what runs, end the worker, drop the database."""
        while True:
            try:
                pending = self.queue.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                with _LOCK:
                    if pending.status == "SUBMITTED":
                        for sub in pending.subs:
                            sub.status = "ABORTED"
                        pending.touch("ABORTED")
        with _LOCK:
            if self.running is not None:
                self.running.cancel_requested = True
        self.interrupt()
        self.queue.put(None)
        self.thread.join(timeout)
        if not self.thread.is_alive() and self.con is not None:
            self.con.close()
            self.con = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the worker --------------------------------------------------------------------------

    def submit(self, statement: _Statement) -> None:
        statement.redshift_pid = self.pid
        self.queue.put(statement)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            con = duckdb.connect(":memory:")
            # Redshift promises no row order without ORDER BY either; letting DuckDB drop
            # it lets CREATE TABLE AS write in parallel (a third off the subset's wall time).
            con.execute("SET preserve_insertion_order = false")
            load_spatial(con)
            redshift_rules.install(con)
            self.con = con
        return self.con

    def _work(self) -> None:
        while True:
            statement = self.queue.get()
            if statement is None:
                return
            with _LOCK:
                if statement.status != "SUBMITTED":  # cancelled while queued
                    continue
                statement.touch("PICKED")
                for sub in statement.subs:
                    sub.status = "PICKED"
                self.running = statement
            try:
                self._execute(statement)
            except BaseException as error:  # the worker must outlive any statement
                with _LOCK:
                    statement.error = f"ERROR: internal emulator error: {error!r}"
                    statement.touch("FAILED")
            finally:
                with _LOCK:
                    self.running = None

    def _execute(self, statement: _Statement) -> None:
        con = self._connect()
        with _LOCK:
            statement.touch("STARTED")
        batch = statement.is_batch
        if batch:
            con.execute("BEGIN TRANSACTION")
        total = len(statement.subs)
        for n, sub in enumerate(statement.subs, start=1):
            with _LOCK:
                if statement.cancel_requested:
                    self._abort(statement, n - 1, batch)
                    return
                sub.status = "STARTED"
                sub.updated_at = time.time()
                sub.redshift_query_id = next(self.query_ids)
            started = time.perf_counter_ns()
            try:
                sql = st.bind_parameters(sub.sql, statement.parameters)
                outcome = self._run(sql, in_transaction=batch)
            except Exception as error:
                elapsed = time.perf_counter_ns() - started
                if batch:
                    self._rollback()
                with _LOCK:
                    sub.duration_ns = elapsed
                    if statement.cancel_requested and isinstance(error, duckdb.InterruptException):
                        self._abort(statement, n - 1, batch=False)
                        return
                    message = _error_text(error)
                    sub.error = message
                    sub.status = "FAILED"
                    sub.updated_at = time.time()
                    for later in statement.subs[n:]:
                        later.status = "ABORTED"
                        later.updated_at = time.time()
                    where = f"sub-statement {n} of {total} ({sub.id})" if batch else "statement"
                    statement.error = f"{message}\n[failed {where}: {_one_line(sub.sql)}]"
                    statement.touch("FAILED")
                return
            with _LOCK:
                sub.duration_ns = time.perf_counter_ns() - started
                sub.has_result_set = outcome.has_result_set
                sub.result_rows = outcome.rows
                sub.result = outcome.result
                if outcome.result is not None:
                    sub.result_size = len(json.dumps(outcome.result.records))
                sub.status = "FINISHED"
                sub.updated_at = time.time()
        if batch:
            try:
                con.execute("COMMIT")
            except Exception as error:
                self._rollback()
                with _LOCK:
                    statement.error = f"{_error_text(error)}\n[failed at COMMIT of the batch]"
                    statement.touch("FAILED")
                return
        with _LOCK:
            statement.touch("FINISHED")

    def _abort(self, statement: _Statement, done: int, batch: bool) -> None:
        """Mark the statement ABORTED (caller holds _LOCK); undo an open batch."""
        if batch:
            self._rollback()
        for sub in statement.subs[done:]:
            sub.status = "ABORTED"
            sub.updated_at = time.time()
        statement.touch("ABORTED")

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):
            self._connect().execute("ROLLBACK")
        for table in self.external_tables.values():  # a view rebuilt in the batch is undone
            table.stale()

    def interrupt(self) -> None:
        if self.con is not None:
            self.con.interrupt()

    # -- one statement ------------------------------------------------------------------------

    def _run(self, sql: str, in_transaction: bool) -> _Outcome:
        parsed = st.parse_statement(sql)
        con = self._connect()
        if isinstance(parsed, st.SqlStmt | st.UnloadStmt):
            # Spectrum lists an external table's files when a query scans it, not at CREATE.
            for table in self.external_tables.values():
                table.refresh(con, self.s3)
        if isinstance(parsed, st.SqlStmt):
            cursor = con.execute(parsed.duckdb_sql)
            if parsed.returns_rows:
                description = cursor.description or []
                columns = _column_metadata(description)
                types = [c["typeName"] for c in columns]
                records = [
                    [to_field(v, t) for v, t in zip(row, types, strict=True)]
                    for row in cursor.fetchall()
                ]
                return _Outcome(True, len(records), _Result(columns, records))
            if parsed.counts_rows:
                row = cursor.fetchone()
                return _Outcome(rows=int(row[0]) if row and row[0] is not None else 0)
            return _Outcome()
        if isinstance(parsed, st.NoOpStmt):
            return _Outcome()
        if isinstance(parsed, st.ExternalSchemaStmt):
            self._no_transaction(in_transaction, "CREATE EXTERNAL SCHEMA")
            ine = "IF NOT EXISTS " if parsed.if_not_exists else ""
            con.execute(f"CREATE SCHEMA {ine}{st.render_name(None, parsed.name)}")
            self.external_schemas.add(parsed.name)
            return _Outcome()
        if isinstance(parsed, st.ExternalTableStmt):
            self._no_transaction(in_transaction, "CREATE EXTERNAL TABLE")
            return self._create_external_table(parsed)
        if isinstance(parsed, st.DropTableStmt):
            return self._drop_tables(parsed, in_transaction)
        if isinstance(parsed, st.CopyStmt):
            return self._copy(parsed)
        if isinstance(parsed, st.UnloadStmt):
            return self._unload(parsed)
        raise EmulatorError(f"unhandled statement {type(parsed).__name__}")

    @staticmethod
    def _no_transaction(in_transaction: bool, what: str) -> None:
        if in_transaction:
            raise EmulatorError(f"{what} cannot run inside a transaction block")

    def _workdir(self, kind: str) -> Path:
        path = self.tmp / f"{kind}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def _columns(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        rows = self._connect().execute(f"DESCRIBE {st.render_name(schema, table)}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    # -- external tables ----------------------------------------------------------------------

    def _create_external_table(self, stmt: st.ExternalTableStmt) -> _Outcome:
        """Only the catalog entry, as on Redshift: the files are read by later queries."""
        con = self._connect()
        if stmt.schema not in self.external_schemas:
            raise EmulatorError(
                f'external schema "{stmt.schema}" does not exist '
                "(CREATE EXTERNAL SCHEMA must come first)"
            )
        key = (stmt.schema, stmt.name)
        exists = con.execute(
            "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?", key
        ).fetchone()
        if key in self.external_tables or (exists and exists[0]):
            raise EmulatorError(f'relation "{stmt.schema}.{stmt.name}" already exists')
        split_s3_uri(stmt.location)  # a malformed LOCATION fails CREATE EXTERNAL TABLE
        table = ExternalTable(
            stmt, self._workdir(f"external-{stmt.schema}.{stmt.name}"), self.s3.region
        )
        table.mount(con)
        self.external_tables[key] = table
        return _Outcome()

    def _drop_tables(self, stmt: st.DropTableStmt, in_transaction: bool) -> _Outcome:
        con = self._connect()
        for schema, name in stmt.tables:
            ie = "IF EXISTS " if stmt.if_exists else ""
            if schema is not None and schema in self.external_schemas:
                self._no_transaction(in_transaction, "DROP EXTERNAL TABLE")
                table = self.external_tables.pop((schema, name), None)
                if table is None and not stmt.if_exists:
                    raise EmulatorError(f'external table "{schema}.{name}" does not exist')
                if table is not None:
                    table.drop(con)
                continue
            cascade = " CASCADE" if stmt.cascade else ""
            con.execute(f"DROP TABLE {ie}{st.render_name(schema, name)}{cascade}")
        return _Outcome()

    # -- COPY ---------------------------------------------------------------------------------

    def _copy(self, stmt: st.CopyStmt) -> _Outcome:
        table_columns = self._columns(stmt.schema, stmt.table)
        types = dict(table_columns)
        if stmt.columns:
            unknown = [c for c in stmt.columns if c not in types]
            if unknown:
                raise EmulatorError(f"column(s) {unknown} of COPY do not exist in {stmt.table}")
            targets = [(c, types[c]) for c in stmt.columns]
        else:
            targets = table_columns
        bucket, key = split_s3_uri(stmt.uri)
        work = self._workdir("copy")
        try:
            if stmt.file_format == "SHAPEFILE":
                select = self._shapefile_select(stmt, bucket, key, targets, work)
            else:
                # COPY FROM names a key prefix: every object whose key starts with it loads.
                keys = self.s3.list(bucket, key)
                if not keys:
                    raise EmulatorError(
                        f"S3ServiceException: The specified S3 prefix '{key}' does not exist "
                        f"(COPY FROM s3://{bucket}/{key})"
                    )
                files = [self.s3.download(bucket, k, work / f"{i:06d}") for i, k in enumerate(keys)]
                if stmt.file_format == "PARQUET":
                    select = self._parquet_select(files, targets, stmt.uri)
                else:
                    select = self._text_select(stmt, files, targets)
            names = ", ".join(st.render_name(None, c) for c, _ in targets)
            row = (
                self._connect()
                .execute(
                    f"INSERT INTO {st.render_name(stmt.schema, stmt.table)} ({names}) {select}"
                )
                .fetchone()
            )
            return _Outcome(rows=int(row[0]) if row else 0)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _text_select(
        self, stmt: st.CopyStmt, files: list[Path], targets: list[tuple[str, str]]
    ) -> str:
        raw = {f"c{i}": "VARCHAR" for i in range(len(targets))}
        options = [
            "header = false",
            f"skip = {int(stmt.ignore_header)}",
            f"delim = {_sql_text(stmt.delimiter)}",
            f"quote = {_sql_text(stmt.quote)}",
            f"escape = {_sql_text(stmt.quote)}",
            "columns = {" + ", ".join(f"'{k}': 'VARCHAR'" for k in raw) + "}",
            # Redshift loads an empty field as an empty string (NULL only with EMPTYASNULL, or
            # for non-text columns): never let DuckDB turn it into NULL itself.
            "nullstr = '\u0001'",
            "allow_quoted_nulls = false",
            "auto_detect = false",
            "strict_mode = true",
        ]
        if stmt.compression:
            options.append(f"compression = {_sql_text(stmt.compression)}")
        exprs = []
        for i, (_, kind) in enumerate(targets):
            value = f'"c{i}"'
            if stmt.null_as is not None:
                value = f"CASE WHEN {value} = {_sql_text(stmt.null_as)} THEN NULL ELSE {value} END"
            if kind.upper() == "VARCHAR":
                if stmt.blanks_as_null:
                    value = f"NULLIF(TRIM({value}), '')"
                elif stmt.empty_as_null:
                    value = f"NULLIF({value}, '')"
            else:
                value = f"CAST(NULLIF(TRIM({value}), '') AS {kind})"
            exprs.append(value)
        paths = ", ".join(_sql_text(f.as_posix()) for f in files)
        return f"SELECT {', '.join(exprs)} FROM read_csv([{paths}], {', '.join(options)})"

    def _parquet_select(self, files: list[Path], targets: list[tuple[str, str]], uri: str) -> str:
        paths = ", ".join(_sql_text(f.as_posix()) for f in files)
        source = f"read_parquet([{paths}])"
        found = self._connect().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        if len(found) != len(targets):
            raise EmulatorError(
                f"COPY FORMAT PARQUET maps columns by position: {uri} has {len(found)} "
                f"columns, the target {len(targets)}"
            )
        exprs = [
            f"CAST({st.render_name(None, str(f[0]))} AS {kind})"
            for f, (_, kind) in zip(found, targets, strict=True)
        ]
        return f"SELECT {', '.join(exprs)} FROM {source}"

    def _shapefile_select(
        self,
        stmt: st.CopyStmt,
        bucket: str,
        key: str,
        targets: list[tuple[str, str]],
        work: Path,
    ) -> str:
        if not key.lower().endswith(".shp"):
            raise EmulatorError(f"COPY FORMAT SHAPEFILE needs the .shp object, got {stmt.uri}")
        stem = key[:-4]
        shp = self.s3.download(bucket, key, work / "layer.shp")
        for suffix, required in ((".shx", True), (".dbf", True), (".prj", False), (".cpg", False)):
            sidecar = stem + suffix
            try:
                self.s3.download(bucket, sidecar, work / f"layer{suffix}")
            except EmulatorError:
                if required:
                    raise EmulatorError(
                        f"shapefile component missing: s3://{bucket}/{sidecar} "
                        f"(COPY FORMAT SHAPEFILE reads it beside s3://{bucket}/{key})"
                    ) from None
        source = f"ST_Read({_sql_text(shp.as_posix())})"
        found = [
            (str(r[0]), str(r[1]))
            for r in self._connect().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        ]
        geometry = [name for name, kind in found if kind.upper().startswith("GEOMETRY")]
        fields = [
            name
            for i, (name, kind) in enumerate(found)
            if not kind.upper().startswith("GEOMETRY") and not (i == 0 and name == "OGC_FID")
        ]
        if len(geometry) != 1:
            raise EmulatorError(f"{stmt.uri}: expected one geometry column, found {geometry}")
        # Redshift loads a shapefile by position: the geometry, then the attribute fields in
        # the file's order.
        if len(targets) != 1 + len(fields):
            raise EmulatorError(
                f"COPY FORMAT SHAPEFILE loads by position: {stmt.uri} has a geometry and "
                f"{len(fields)} fields {fields}, but {stmt.table} takes {len(targets)} "
                f"columns {[c for c, _ in targets]}"
            )
        if not targets[0][1].upper().startswith("GEOMETRY"):
            raise EmulatorError(
                f"COPY FORMAT SHAPEFILE: the first column of {stmt.table} must be GEOMETRY, "
                f"not {targets[0][0]} {targets[0][1]}"
            )
        exprs = [st.render_name(None, geometry[0])] + [
            f"CAST({st.render_name(None, name)} AS {kind})"
            for name, (_, kind) in zip(fields, targets[1:], strict=True)
        ]
        return f"SELECT {', '.join(exprs)} FROM {source}"

    # -- UNLOAD -------------------------------------------------------------------------------

    def _unload(self, stmt: st.UnloadStmt) -> _Outcome:
        bucket, prefix = split_s3_uri(stmt.uri)
        existing = self.s3.list(bucket, prefix)
        if stmt.clean_path:
            for key in existing:
                self.s3.delete(bucket, key)
        elif existing and not stmt.allow_overwrite:
            raise EmulatorError(
                "Specified unload destination on S3 is not empty. Consider using a different "
                "bucket / prefix, manually removing the target files in S3, or using the "
                f"ALLOWOVERWRITE option. (s3://{bucket}/{prefix})"
            )
        # One slice: PARALLEL ON names parts <prefix>0000_part_00, PARALLEL OFF <prefix>000.
        name = "0000_part_00" if stmt.parallel else "000"
        if stmt.file_format == "PARQUET":
            name += ".parquet"
            options = "FORMAT PARQUET"
        elif stmt.file_format == "CSV":
            header = "true" if stmt.header else "false"
            options = f"FORMAT CSV, HEADER {header}, DELIMITER {_sql_text(stmt.delimiter)}"
        else:
            options = "FORMAT JSON"
        if stmt.extension:
            name += "." + stmt.extension
        work = self._workdir("unload")
        try:
            local = work / "part"
            row = (
                self._connect()
                .execute(f"COPY ({stmt.query_duckdb}) TO {_sql_text(local.as_posix())} ({options})")
                .fetchone()
            )
            rows = int(row[0]) if row else 0
            entries = []
            # Redshift writes no part for an empty result; only the manifest tells of it.
            if rows:
                data = local.read_bytes()
                self.s3.write(bucket, prefix + name, data)
                entries.append(
                    {
                        "url": f"s3://{bucket}/{prefix}{name}",
                        "meta": {"content_length": len(data), "record_count": rows},
                    }
                )
            if stmt.manifest:
                body = json.dumps({"entries": entries}, indent=1).encode("utf-8")
                self.s3.write(bucket, prefix + MANIFEST_NAME, body)
            return _Outcome(rows=rows)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _error_text(error: BaseException) -> str:
    """The SQL error as Redshift words it: 'ERROR: ...'."""
    if isinstance(error, duckdb.Error | st.UnsupportedSql | EmulatorError):
        text = redshift_rules.redshift_error_text(str(error))
    else:
        text = f"{type(error).__name__}: {error}"
    return text if text.startswith("ERROR:") else f"ERROR: {text}"


# --- per-backend state ----------------------------------------------------------------------

_LOCK = threading.RLock()


class _Store:
    """Statements and engines of one moto redshift-data backend (account x region)."""

    def __init__(self, account_id: str, region: str) -> None:
        self.s3 = MotoS3(account_id, region)
        self.statements: dict[str, _Statement] = {}
        self.engines: dict[tuple[str, str, str], _Engine] = {}

    def engine(self, target_key: str, target: str, database: str) -> _Engine:
        key = (target_key, target, database)
        with _LOCK:
            if key not in self.engines:
                self.engines[key] = _Engine(f"{target}-{database}", self.s3)
            return self.engines[key]

    def stop(self) -> None:
        for engine in list(self.engines.values()):
            engine.stop()
        self.engines.clear()

    def find(self, statement_id: str) -> tuple[_Statement, _Sub | None]:
        if not isinstance(statement_id, str) or not _ID.match(statement_id):
            raise _validation(
                "id must satisfy regex pattern: ^[a-z0-9]{8}(-[a-z0-9]{4}){3}-[a-z0-9]{12}(:\\d+)?$"
            )
        base, _, number = statement_id.partition(":")
        statement = self.statements.get(base)
        if statement is None:
            raise _not_found()
        if not number:
            return statement, None
        index = int(number)
        if not statement.is_batch or not 1 <= index <= len(statement.subs):
            raise _not_found()
        return statement, statement.subs[index - 1]


def _store(response: Any) -> _Store:
    backend = response.redshiftdata_backend
    with _LOCK:
        store = backend.__dict__.get("_bisonflow_store")
        if store is None:
            store = _Store(response.current_account, response.region)
            backend.__dict__["_bisonflow_store"] = store
            _BACKENDS.append(backend)
        return store


#: moto backends that hold a _Store, so shutdown() can find every engine.
_BACKENDS: list[Any] = []


def shutdown() -> None:
    """Stop every worker thread and close every DuckDB database; forget all statements.

    moto's backends live as long as the process, so without this a later server in the same
    process would find statements and databases of an earlier one. The handlers stay
    installed: the next statement starts afresh.
    """
    with _LOCK:
        backends = list(_BACKENDS)
        _BACKENDS.clear()
        stores = [b.__dict__.pop("_bisonflow_store", None) for b in backends]
    for store in stores:
        if store is not None:
            store.stop()


def run_batches(
    client: Any,
    batches: list[list[str]],
    workgroup: str,
    database: str = "dev",
    timeout: float = 600.0,
) -> str:
    """Submit the batches one after the other as the state machine does, each waited for.

    For tests and benchmarks that run a step's SQL without the state machine. Returns the id
    of the last statement; raises EmulatorError naming the batch and the SQL error if one
    does not finish.
    """
    where = {"WorkgroupName": workgroup, "Database": database}
    statement_id = ""
    for n, batch in enumerate(batches):
        if len(batch) == 1:
            statement_id = client.execute_statement(Sql=batch[0], **where)["Id"]
        else:
            statement_id = client.batch_execute_statement(Sqls=batch, **where)["Id"]
        deadline = time.monotonic() + timeout
        while True:
            desc = client.describe_statement(Id=statement_id)
            if desc["Status"] in _DONE:
                break
            if time.monotonic() > deadline:
                raise EmulatorError(f"batch {n + 1}/{len(batches)} still {desc['Status']}")
            time.sleep(0.01)
        if desc["Status"] != "FINISHED":
            raise EmulatorError(
                f"batch {n + 1}/{len(batches)} {desc['Status']}: {desc.get('Error')}"
            )
    return statement_id


def _json(body: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(body)


# --- the request handlers -------------------------------------------------------------------


def _submit(response: Any, sqls: list[str], is_batch: bool) -> _Statement:
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
    store = _store(response)
    now = time.time()
    statement_id = str(uuid.uuid4())
    subs = [
        _Sub(id=f"{statement_id}:{n}" if is_batch else statement_id, sql=sql, created_at=now)
        for n, sql in enumerate(sqls, start=1)
    ]
    statement = _Statement(
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
    statement.engine = engine
    with _LOCK:
        store.statements[statement_id] = statement
    engine.submit(statement)
    return statement


def _execute_statement(self: Any) -> Any:
    sql = self._get_param("Sql")
    if not isinstance(sql, str) or not sql.strip():
        raise _validation("Sql must be a non-empty string")
    if len(st.split_statements(sql)) > 1:
        raise _validation(
            "ExecuteStatement runs one SQL statement; use BatchExecuteStatement for several"
        )
    return _json(_submit(self, [sql], is_batch=False).identity())


def _batch_execute_statement(self: Any) -> Any:
    sqls = self._get_param("Sqls")
    if not isinstance(sqls, list) or not sqls:
        raise _validation("Sqls must be a non-empty list of SQL statements")
    if len(sqls) > MAX_BATCH:
        raise _validation(f"Sqls may hold at most {MAX_BATCH} statements, got {len(sqls)}")
    return _json(_submit(self, sqls, is_batch=True).identity())


def _describe_statement(self: Any) -> Any:
    statement, sub = _store(self).find(self._get_param("Id"))
    with _LOCK:
        if sub is None:
            return _json(statement.describe())
        body = statement.identity()
        body.update(sub.describe())
        body["RedshiftPid"] = statement.redshift_pid
        return _json(body)


def _get_statement_result(self: Any) -> Any:
    statement_id = self._get_param("Id")
    statement, sub = _store(self).find(statement_id)
    with _LOCK:
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


def _cancel_statement(self: Any) -> Any:
    statement_id = self._get_param("Id")
    statement, sub = _store(self).find(statement_id)
    if sub is not None:
        raise _validation("cancel the batch by its Id, not a sub-statement Id")
    with _LOCK:
        if statement.status in _DONE:
            raise _validation(
                f"Could not cancel a query that is already in {statement.status} state "
                f"with ID: {statement_id}"
            )
        statement.cancel_requested = True
        if statement.status in ("SUBMITTED", "PICKED") and (
            statement.engine is None or statement.engine.running is not statement
        ):
            for s in statement.subs:
                s.status = "ABORTED"
                s.updated_at = time.time()
            statement.touch("ABORTED")
        elif statement.engine is not None:
            statement.engine.interrupt()
    return _json({"Status": True})


def _list_statements(self: Any) -> Any:
    store = _store(self)
    status = (self._get_param("Status") or "ALL").upper()
    name = self._get_param("StatementName")
    token = self._get_param("NextToken")
    limit = int(self._get_param("MaxResults") or 100)
    with _LOCK:
        chosen = sorted(store.statements.values(), key=lambda s: s.created_at, reverse=True)
        if status != "ALL":
            chosen = [s for s in chosen if s.status == status]
        if name:
            chosen = [s for s in chosen if (s.statement_name or "").startswith(name)]
        start = int(token) if token else 0
        page = [s.summary() for s in chosen[start : start + limit]]
    body: dict[str, Any] = {"Statements": page}
    if start + limit < len(chosen):
        body["NextToken"] = str(start + limit)
    return _json(body)


_HANDLERS = {
    "execute_statement": _execute_statement,
    "batch_execute_statement": _batch_execute_statement,
    "describe_statement": _describe_statement,
    "get_statement_result": _get_statement_result,
    "cancel_statement": _cancel_statement,
    "list_statements": _list_statements,
}
for _handler in _HANDLERS.values():
    _handler._bisonflow_seam = True  # type: ignore[attr-defined]
assert tuple(_HANDLERS) == PATCHED

_ABSENT = object()
_ORIGINALS: dict[str, Any] = {}
_INSTALL_LOCK = threading.Lock()


def _response_class() -> type:
    return getattr(importlib.import_module(_RESPONSES), _RESPONSE_CLASS)


def installed() -> bool:
    return bool(getattr(_response_class(), "_bisonflow_installed", False))


def install() -> None:
    """Patch moto's redshift-data handlers to run SQL on DuckDB (idempotent).

    Raises RuntimeError, naming what moved, if the installed moto no longer matches SEAM.
    """
    with _INSTALL_LOCK:
        cls = _response_class()
        if getattr(cls, "_bisonflow_installed", False):
            return
        problems = seam_problems()
        if problems:
            raise RuntimeError(
                "moto's redshift-data seam has moved; bisonflow.local.redshift_duckdb needs "
                "updating: " + "; ".join(problems)
            )
        for name, handler in _HANDLERS.items():
            _ORIGINALS[name] = cls.__dict__.get(name, _ABSENT)
            setattr(cls, name, handler)
        cls._bisonflow_installed = True  # type: ignore[attr-defined]


def uninstall() -> None:
    """Restore moto's own handlers (tests use it to leave moto as they found it)."""
    with _INSTALL_LOCK:
        cls = _response_class()
        if not getattr(cls, "_bisonflow_installed", False):
            return
        for name, original in _ORIGINALS.items():
            if original is _ABSENT:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        _ORIGINALS.clear()
        cls._bisonflow_installed = False  # type: ignore[attr-defined]
