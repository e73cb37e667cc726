"""One DuckDB database standing in for one Redshift database (workgroup or cluster, database),
with the worker thread that runs its statements serially, in submission order, a batch as
one transaction, as Redshift does. External tables are `bisonflow.local.redshift.external_tables`,
COPY and UNLOAD `bisonflow.local.redshift.copy_unload`."""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import queue
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import duckdb

from bisonflow.duckdb_ext import load_spatial
from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift import sql_transpile as st
from bisonflow.local.redshift.copy_unload import CopyUnload
from bisonflow.local.redshift.external_tables import ExternalTable, refuse_scan
from bisonflow.local.redshift.moto_s3 import EmulatorError, MotoS3, split_s3_uri
from bisonflow.local.redshift.statements import (
    _LOCK,
    _column_metadata,
    _Outcome,
    _Result,
    _Statement,
    to_field,
)

#: Engines' scratch folders (cached external-table parts), removed at interpreter exit.
_TMP_DIRS: list[Path] = []


@atexit.register
def _remove_scratch() -> None:
    for path in _TMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def _one_line(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class _Engine(CopyUnload):
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
            # ... and refuses a file's schema when it opens it, whichever rows pass the WHERE.
            query = parsed.duckdb_sql if isinstance(parsed, st.SqlStmt) else parsed.query_duckdb
            refuse_scan(query, self.external_tables)
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


def _error_text(error: BaseException) -> str:
    """The SQL error as Redshift words it: 'ERROR: ...'."""
    if isinstance(error, duckdb.Error | st.UnsupportedSql | EmulatorError):
        text = redshift_rules.redshift_error_text(str(error))
    else:
        text = f"{type(error).__name__}: {error}"
    return text if text.startswith("ERROR:") else f"ERROR: {text}"
