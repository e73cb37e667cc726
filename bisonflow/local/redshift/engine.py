"""The worker that runs one Redshift database's statements (workgroup or cluster, database):
serially, in submission order, a batch as one transaction, as the Data API runs them
("The SQL statements are run as a single transaction. They run serially in the order of the
array", Data API reference, BatchExecuteStatement, Sqls). It moves each statement record
through SUBMITTED -> PICKED -> STARTED -> FINISHED, FAILED or ABORTED and hands each SQL
statement to the command for its kind (`bisonflow.local.redshift.commands`), on its
database (`bisonflow.local.redshift.database`).
"""

from __future__ import annotations

import itertools
import json
import queue
import random
import threading
import time

import duckdb

from bisonflow.local.redshift import commands
from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.moto_s3 import EmulatorError, MotoS3
from bisonflow.local.redshift.parsed_sql import UnsupportedSql
from bisonflow.local.redshift.records import LOCK, Outcome, Statement, SubStatement
from bisonflow.local.redshift.sql_text import bind_parameters

__all__ = ["Engine", "error_text"]


def _one_line(sql: str, limit: int = 300) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_text(error: BaseException) -> str:
    """The SQL error as Redshift words it: 'ERROR: ...'."""
    if isinstance(error, duckdb.Error | UnsupportedSql | EmulatorError):
        text = redshift_rules.redshift_error_text(str(error))
    else:
        text = f"{type(error).__name__}: {error}"
    return text if text.startswith("ERROR:") else f"ERROR: {text}"


class Engine:
    """A DuckDB database standing in for one Redshift database, with its worker thread."""

    def __init__(self, label: str, s3: MotoS3) -> None:
        self.label = label
        self.database = Database(s3)
        self.queue: queue.Queue[Statement | None] = queue.Queue()
        self.query_ids = itertools.count(random.randint(1000, 9000))
        self.pid = random.randint(1000, 65000)
        #: The statement the worker runs now (read under LOCK by cancel and by faults).
        self.running: Statement | None = None
        self.thread = threading.Thread(target=self._work, name=f"redshift-{label}", daemon=True)
        self.thread.start()

    def submit(self, statement: Statement) -> None:
        """Queue a statement behind those submitted before it."""
        statement.redshift_pid = self.pid
        self.queue.put(statement)

    def cancel(self, statement: Statement) -> None:
        """CancelStatement: a statement still queued ends ABORTED now; a running one is
        interrupted and ends ABORTED when its SQL stops (the caller holds LOCK)."""
        statement.cancel_requested = True
        if statement.status in ("SUBMITTED", "PICKED") and self.running is not statement:
            statement.abort_from(0)
        else:
            self.database.interrupt()

    def stop(self, timeout: float = 10.0) -> None:
        """Abort what is queued, interrupt what runs, end the worker, drop the database."""
        while True:
            try:
                pending = self.queue.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                with LOCK:
                    if pending.status == "SUBMITTED":
                        pending.abort_from(0)
        with LOCK:
            if self.running is not None:
                self.running.cancel_requested = True
        self.database.interrupt()
        self.queue.put(None)
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.database.remove_scratch()
        else:
            self.database.close()

    def run_sql(self, sql: str, in_transaction: bool) -> Outcome:
        """Run ONE SQL statement on the database (bisonflow.local.faults intercepts it)."""
        return commands.execute(self.database, sql, in_transaction)

    # -- the worker --------------------------------------------------------------------------

    def _work(self) -> None:
        """The worker thread: one statement at a time, in the order they were submitted."""
        while True:
            statement = self.queue.get()
            if statement is None:
                return
            with LOCK:
                if statement.status != "SUBMITTED":  # cancelled while queued
                    continue
                statement.touch("PICKED")
                for sub in statement.subs:
                    sub.status = "PICKED"
                self.running = statement
            try:
                self._execute(statement)
            except BaseException as error:  # the worker must outlive any statement
                with LOCK:
                    statement.error = f"ERROR: internal emulator error: {error!r}"
                    statement.touch("FAILED")
            finally:
                with LOCK:
                    self.running = None

    def _execute(self, statement: Statement) -> None:
        """Run a statement's sub-statements in order, a batch inside BEGIN ... COMMIT, stopping
        at the first failure or at a cancel between two of them."""
        con = self.database.connection()
        with LOCK:
            statement.touch("STARTED")
        batch = statement.is_batch
        if batch:
            con.execute("BEGIN TRANSACTION")
        for n, sub in enumerate(statement.subs, start=1):
            with LOCK:
                if statement.cancel_requested:
                    self._abort(statement, n - 1, batch)
                    return
                sub.status = "STARTED"
                sub.updated_at = time.time()
                sub.redshift_query_id = next(self.query_ids)
            if not self._run_sub(statement, n, sub):
                return
        if batch:
            try:
                con.execute("COMMIT")
            except Exception as error:
                self.database.rollback()
                with LOCK:
                    statement.error = f"{error_text(error)}\n[failed at COMMIT of the batch]"
                    statement.touch("FAILED")
                return
        with LOCK:
            statement.touch("FINISHED")

    def _run_sub(self, statement: Statement, n: int, sub: SubStatement) -> bool:
        """Run sub-statement `n` (1-based) and record how it went; False if it ended the
        statement (FAILED, or ABORTED by a cancel that interrupted it)."""
        batch = statement.is_batch
        started = time.perf_counter_ns()
        try:
            sql = bind_parameters(sub.sql, statement.parameters)
            outcome = self.run_sql(sql, in_transaction=batch)
        except Exception as error:
            elapsed = time.perf_counter_ns() - started
            if batch:
                self.database.rollback()
            with LOCK:
                sub.duration_ns = elapsed
                if statement.cancel_requested and isinstance(error, duckdb.InterruptException):
                    self._abort(statement, n - 1, batch=False)
                    return False
                message = error_text(error)
                sub.error = message
                sub.status = "FAILED"
                sub.updated_at = time.time()
                statement.abort_subs_from(n)
                total = len(statement.subs)
                where = f"sub-statement {n} of {total} ({sub.id})" if batch else "statement"
                statement.error = f"{message}\n[failed {where}: {_one_line(sub.sql)}]"
                statement.touch("FAILED")
            return False
        with LOCK:
            sub.duration_ns = time.perf_counter_ns() - started
            sub.has_result_set = outcome.has_result_set
            sub.result_rows = outcome.rows
            sub.result = outcome.result
            if outcome.result is not None:
                sub.result_size = len(json.dumps(outcome.result.records))
            sub.status = "FINISHED"
            sub.updated_at = time.time()
        return True

    def _abort(self, statement: Statement, done: int, batch: bool) -> None:
        """Mark the statement ABORTED (caller holds LOCK); undo an open batch."""
        if batch:
            self.database.rollback()
        statement.abort_from(done)
