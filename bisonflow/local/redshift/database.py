"""One DuckDB database standing in for one Redshift database (workgroup or cluster, database):
the connection, its scratch folder and its external-table catalog, which every command
(`bisonflow.local.redshift.commands`) works on.

Apart from the worker thread that runs statements (`bisonflow.local.redshift.engine`) so a
command needs nothing but this: what the SQL reads and writes, not who queued it.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
import uuid
from pathlib import Path

import duckdb

from bisonflow.duckdb_ext import load_spatial
from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift.external_tables import ExternalTable, refuse_scan
from bisonflow.local.redshift.moto_s3 import MotoS3
from bisonflow.local.redshift.spectrum_types import TableKey
from bisonflow.local.redshift.sql_transpile import render_name

__all__ = ["Database"]

#: Databases' scratch folders (cached external-table parts), removed at interpreter exit.
_SCRATCH_FOLDERS: list[Path] = []


@atexit.register
def _remove_scratch() -> None:
    for path in _SCRATCH_FOLDERS:
        shutil.rmtree(path, ignore_errors=True)


class Database:
    """A DuckDB database in memory, on moto's S3 (`s3`), with Spectrum's external catalog."""

    def __init__(self, s3: MotoS3) -> None:
        self.s3 = s3
        self.scratch = Path(tempfile.mkdtemp(prefix="bisonflow-redshift-"))
        _SCRATCH_FOLDERS.append(self.scratch)
        self.external_schemas: set[str] = set()
        self.external_tables: dict[TableKey, ExternalTable] = {}
        self._con: duckdb.DuckDBPyConnection | None = None

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The database's connection, opened on first use with what Redshift's SQL needs."""
        if self._con is None:
            con = duckdb.connect(":memory:")
            # Redshift promises no row order without ORDER BY either; letting DuckDB drop
            # it lets CREATE TABLE AS write in parallel (a third off the subset's wall time).
            con.execute("SET preserve_insertion_order = false")
            load_spatial(con)
            redshift_rules.install(con)
            self._con = con
        return self._con

    def workdir(self, kind: str) -> Path:
        """A new folder in the scratch folder, for the local copies one command needs."""
        path = self.scratch / f"{kind}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def columns(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        """(name, DuckDB type) of each column of a table, in order."""
        rows = self.connection().execute(f"DESCRIBE {render_name(schema, table)}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def prepare_scan(self, query: str) -> None:
        """Before a statement that may read external tables runs (a query, an UNLOAD):
        Spectrum lists an external table's files when a query scans it, not at CREATE, and
        refuses a file's schema when it opens it, whichever rows pass the WHERE."""
        con = self.connection()
        for table in self.external_tables.values():
            table.refresh(con, self.s3)
        refuse_scan(query, self.external_tables)

    def rollback(self) -> None:
        """Undo an open transaction; an external table's view rebuilt in it is undone too."""
        with contextlib.suppress(duckdb.Error):
            self.connection().execute("ROLLBACK")
        for table in self.external_tables.values():
            table.stale()

    def interrupt(self) -> None:
        """Stop what runs on the connection now (CancelStatement, a stop)."""
        if self._con is not None:
            self._con.interrupt()

    def close(self) -> None:
        """Close the connection and remove the scratch folder."""
        if self._con is not None:
            self._con.close()
            self._con = None
        self.remove_scratch()

    def remove_scratch(self) -> None:
        """Remove the scratch folder only: a connection a worker still uses stays open."""
        shutil.rmtree(self.scratch, ignore_errors=True)
