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

The SQL is Redshift's: `bisonflow.local.redshift.sql_transpile` translates it to DuckDB with sqlglot
and parses the statements that touch S3 (CREATE EXTERNAL SCHEMA/TABLE, COPY, UNLOAD), which
the stand-in then carries out. One concern per module: this one holds the request handlers,
the per-backend stores and install(); `redshift_statements` the statements and the API's
shapes for them; `redshift_engine` one DuckDB database and its worker; `redshift_copy` COPY
and UNLOAD; `external_tables` Spectrum's tables; `redshift_seam` the moto attributes relied on.

S3 is moto's own S3, reached in-process (`bisonflow.local.redshift.moto_s3` says why, not httpfs).
COPY's and ST_Read's objects are copied to temporary files that DuckDB reads; UNLOAD's output
is written to a temporary file and put back into the bucket. External tables are read in
place, as Spectrum reads them (`bisonflow.local.redshift.external_tables`): nothing is read
at CREATE EXTERNAL TABLE, and each statement scans the files the location holds when it runs.

Every moto attribute the stand-in replaces or relies on is declared in SEAM
(`bisonflow.local.redshift.seam`, with the one mechanism of `bisonflow.local.seams`), and
`install()` refuses to patch a moto whose seam has moved.

Where the emulator knowingly differs from Redshift:

* An external table is a view over `read_parquet` of the objects under LOCATION, listed
  before each statement and fetched once per ETag into a local cache (Spectrum reads S3
  itself); a location with no files is an empty table. Parquet columns are matched by name
  (case-insensitively), a column the files lack reads as NULL, and scalar types are CAST;
  a column declared with a type the files do not hold fails every query reading it with
  Spectrum's "incompatible Parquet schema" error (`bisonflow.local.redshift.spectrum_types`).
* GEOMETRY carries DuckDB's CRS instead of an SRID; ST_SetSRID(g, n) becomes
  ST_SetCRS(g, 'EPSG:n') and columns loaded from shapefiles drop the CRS, so SRID mismatches
  that Redshift reports as errors pass silently. SIMPLIFY is accepted and ignored.
* Spatial functions refuse what Redshift's refuse for the SQL this project emits (a geometry
  collection in ST_Covers, ST_Intersects, ...): `redshift_rules` lists what it checks.
* UNLOAD writes one part (one slice), and none for an empty parquet or JSON result, as
  Redshift does; a CSV UNLOAD always writes its file, the header alone for no rows (Redshift
  "might write empty Amazon S3 objects"). PARALLEL OFF never starts a second file at 6.2 GB.
  MANIFEST writes `<prefix>manifest` listing the parts ({"entries": [{"url", "meta":
  {"content_length", "record_count"}}]}); MANIFEST VERBOSE, MAXFILESIZE and PARTITION BY are
  not emulated. The option combinations Redshift refuses are refused
  (`redshift_unload_rules`), and so are FIXEDWIDTH, ADDQUOTES, ESCAPE and compression, which
  it does not write. CSV text follows Redshift's rules (`redshift_unload_csv`: quoting, NULL
  zero-length or NULL AS), for text and integer columns only. COPY honours CSV, plain text,
  PARQUET and SHAPEFILE and their common options only.
* Statements in a batch run in one DuckDB transaction; S3 writes of an UNLOAD are not undone
  by a later failure (nor are they on Redshift).
* Identifiers are folded to lower case, as Redshift does by default; DuckDB error texts are
  DuckDB's, prefixed "ERROR: ".
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from bisonflow.local.redshift import sql_transpile as st
from bisonflow.local.redshift.engine import _Engine
from bisonflow.local.redshift.moto_s3 import EmulatorError, MotoS3
from bisonflow.local.redshift.owner import may_see
from bisonflow.local.redshift.seam import PATCHED, data_api_seam
from bisonflow.local.redshift.statements import (
    _DONE,
    _ID,
    _LOCK,
    MAX_BATCH,
    PAGE_ROWS,
    _Statement,
    _Sub,
)

__all__ = [
    "EmulatorError",
    "PAGE_ROWS",
    "PATCHED",
    "SEAM",
    "install",
    "installed",
    "run_batches",
    "shutdown",
    "uninstall",
]


# --- errors ---------------------------------------------------------------------------------


def _validation(message: str) -> Exception:
    from moto.redshiftdata.exceptions import ValidationException

    return ValidationException(message)


def _not_found() -> Exception:
    from moto.redshiftdata.exceptions import ResourceNotFoundException

    return ResourceNotFoundException()


# --- per-backend state ----------------------------------------------------------------------


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


def _owned(response: Any, statement_id: str) -> tuple[_Statement, _Sub | None]:
    """The statement, if the caller's role ran it (bisonflow.local.redshift.owner)."""
    statement, sub = _store(response).find(statement_id)
    if not may_see(response, statement.id):
        raise _not_found()
    return statement, sub


def _describe_statement(self: Any) -> Any:
    statement, sub = _owned(self, self._get_param("Id"))
    with _LOCK:
        if sub is None:
            return _json(statement.describe())
        body = statement.identity()
        body.update(sub.describe())
        body["RedshiftPid"] = statement.redshift_pid
        return _json(body)


def _get_statement_result(self: Any) -> Any:
    statement_id = self._get_param("Id")
    statement, sub = _owned(self, statement_id)
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
    statement, sub = _owned(self, statement_id)
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
        role_level = self._get_param("RoleLevel")
        chosen = [s for s in chosen if may_see(self, s.id, role_level is not False)]
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
#: The stand-in's seam into moto (bisonflow.local.seams): the handlers and what they rely on.
SEAM = data_api_seam(_HANDLERS)


def installed() -> bool:
    return SEAM.installed()


def install() -> None:
    """Patch moto's redshift-data handlers to run SQL on DuckDB (idempotent).

    Raises SeamMoved (a RuntimeError), naming what moved, if the installed moto no longer
    matches SEAM.
    """
    SEAM.install()


def uninstall() -> None:
    """Restore moto's own handlers (tests use it to leave moto as they found it)."""
    SEAM.uninstall()
