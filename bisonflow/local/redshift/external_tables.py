"""External tables of the DuckDB Data API stand-in, read in place as Redshift Spectrum reads them.

Spectrum does not load an external table: "you can efficiently query and retrieve structured
and semistructured data from files in Amazon S3 without having to load the data into Amazon
Redshift tables ... most of the data remains in Amazon S3" (Amazon Redshift Database
Developer Guide, "Querying external data using Amazon Redshift Spectrum"). CREATE EXTERNAL
TABLE only writes the catalog; for a LOCATION naming a folder, "Redshift Spectrum scans the
files in the specified bucket or folder and any subfolders. Redshift Spectrum ignores hidden
files and files that begin with a period or underscore" (CREATE EXTERNAL TABLE, Parameters,
LOCATION), and "a period, underscore, or hash mark ( . , _, or #) or end with a tilde (~)"
("Creating external tables for Redshift Spectrum"). INSERT (external table) writes new files
into the location for later queries to read. So what a query sees is the folder's files when
it runs: a file put after CREATE EXTERNAL TABLE is read, a deleted one is not, and a folder
with no files is an empty table (the guide names no error for it; the scan has nothing to
read).

The stand-in therefore mounts nothing: `mount` makes a view with the declared columns and no
rows, and `refresh`, which the engine calls before every statement that may read a table,
lists the location in moto's S3 (in-process, cheap) and, only when the listing changed,
fetches the new or replaced objects (by ETag) into this table's cache folder once, removes the
cached copies of deleted ones, and rebuilds the view over DuckDB's `read_parquet` of exactly
the listed files. DuckDB then scans those files at query time, as Spectrum scans S3; nothing is
copied into the database. (The copies on local disk are the price of reading moto in-process;
`bisonflow.local.redshift.moto_s3` says why the stand-in does not use httpfs.)

Columns are matched by name, case-insensitively; a column the files lack reads as NULL; a
declared type the files do not hold fails the queries reading the column with Spectrum's
error (`bisonflow.local.redshift.spectrum_types`), checked against the files listed at that refresh,
so a part added later in another type is refused by the next query, as Spectrum's scan would.
The refusal is eager (`refuse_scan`, before the statement runs): Spectrum's error is about
a file's schema, not its rows, so a statement reading a refused column fails even when its
WHERE keeps no row, which the view's failing expression alone let through.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import duckdb

from bisonflow.local.redshift import spectrum_types
from bisonflow.local.redshift.moto_s3 import EmulatorError, split_s3_uri
from bisonflow.local.redshift.parsed_sql import ExternalColumn, ExternalTableStmt
from bisonflow.local.redshift.sql_transpile import render_name
from bisonflow.sql.quoting import sql_literal

__all__ = ["ExternalTable", "ObjectStore", "is_hidden", "refuse_scan"]

_HIDDEN = re.compile(r"(^|/)[._#][^/]*$|~$")


def is_hidden(key: str) -> bool:
    """Whether Spectrum skips the object: its name starts with . _ or #, or ends with ~."""
    return bool(_HIDDEN.search(key))


class ObjectStore(Protocol):
    """What an external table needs of S3 (`bisonflow.local.redshift.moto_s3.MotoS3` has it)."""

    region: str

    def versions(self, bucket: str, prefix: str) -> list[tuple[str, str]]: ...

    def download(self, bucket: str, key: str, path: Path) -> Path: ...


def _as_declared(value: str, column: ExternalColumn) -> str:
    """`value` (a SQL expression) in the column's declared type; a nested column (array,
    struct, map, SUPER) is passed through as the files hold it."""
    return value if column.duckdb_type is None else f"CAST({value} AS {column.duckdb_type})"


@dataclass
class ExternalTable:
    """One CREATE EXTERNAL TABLE ... STORED AS PARQUET: its definition, its view and the
    cached copies of the parts the view reads now."""

    stmt: ExternalTableStmt
    folder: Path
    region: str  # the error names a part by its https URL in this region
    #: (key, ETag) of the parts the view reads; None when the view must be rebuilt.
    reads: tuple[tuple[str, str], ...] | None = field(default=None)
    #: Declared column -> Spectrum's error, for the columns those parts hold in another type.
    refused: dict[str, str] = field(default_factory=dict)
    #: Why the location could not be read at the last refresh (every scan fails), or None.
    unreadable: str | None = field(default=None)

    @property
    def view(self) -> str:
        return render_name(self.stmt.schema, self.stmt.name)

    def _location(self) -> tuple[str, str]:
        bucket, prefix = split_s3_uri(self.stmt.location)
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return bucket, prefix

    def mount(self, con: duckdb.DuckDBPyConnection) -> None:
        """CREATE EXTERNAL TABLE: the declared columns over no file yet; nothing is read."""
        con.execute(f"CREATE VIEW {self.view} AS {self._select(con, {})[0]}")
        self.reads, self.refused, self.unreadable = None, {}, None

    def stale(self) -> None:
        """The view may not be what `reads` says (a rolled-back batch rebuilt it)."""
        self.reads = None

    def refresh(self, con: duckdb.DuckDBPyConnection, s3: ObjectStore) -> None:
        """Point the view at the files the location holds now (only if that changed).

        A location that cannot be read (its bucket deleted, a part that is not parquet) fails
        the queries that scan this table, and only those, as on Spectrum: the view then
        raises the error when scanned, and the next statement lists the location again."""
        try:
            bucket, prefix = self._location()
            listed = s3.versions(bucket, prefix)
            parts = tuple((k, etag) for k, etag in listed if not is_hidden(k))
            if parts == self.reads:
                return
            files = {key: self._cached(s3, bucket, key, etag) for key, etag in parts}
            select, refused = self._select(con, files)
        except EmulatorError as error:
            self.unreadable = f"{self.stmt.schema}.{self.stmt.name}: {error}"
            failing = f"error({sql_literal(self.unreadable)})"
            con.execute(
                f"CREATE OR REPLACE VIEW {self.view} AS {self._typed_nulls()} "
                f"FROM range(1) WHERE {failing} IS NULL"
            )
            self.reads, self.refused = None, {}
            return
        for old in self.folder.glob("*"):
            if old not in files.values():
                old.unlink()
        con.execute(f"CREATE OR REPLACE VIEW {self.view} AS {select}")
        self.reads, self.refused, self.unreadable = parts, refused, None

    def drop(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"DROP VIEW IF EXISTS {self.view}")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _cached(self, s3: ObjectStore, bucket: str, key: str, etag: str) -> Path:
        """The part's local copy, fetched once per (key, ETag)."""
        digest = hashlib.sha256(f"{bucket}/{key}\0{etag}".encode()).hexdigest()[:20]
        safe = re.sub(r"[^\w.-]", "_", key.rsplit("/", 1)[-1])
        path = self.folder / f"{digest}_{safe}"
        return path if path.is_file() else s3.download(bucket, key, path)

    def _typed_nulls(self) -> str:
        """SELECT of a NULL in each declared column's type (the view's shape without files)."""
        typed = [
            _as_declared("NULL", c) + f" AS {render_name(None, c.name)}" for c in self.stmt.columns
        ]
        return "SELECT " + ", ".join(typed)

    def _select(
        self, con: duckdb.DuckDBPyConnection, files: Mapping[str, Path]
    ) -> tuple[str, dict[str, str]]:
        """SELECT of the declared columns over `files` (S3 key -> local copy), key order, and
        the refused columns (-> Spectrum's error). A refused column of the SELECT raises the
        error if a row of it is ever evaluated: a backstop behind `refuse_scan`."""
        columns = self.stmt.columns
        if not files:  # an empty location is an empty table
            return f"{self._typed_nulls()} WHERE false", {}
        source = (
            "read_parquet(["
            + ", ".join(sql_literal(files[k].as_posix()) for k in sorted(files))
            + "], union_by_name = true)"
        )
        try:
            found = {
                str(r[0]).lower(): str(r[0])
                for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            }
        except duckdb.Error as error:
            raise EmulatorError(
                f"cannot read parquet under {self.stmt.location}: {error}"
            ) from None
        refused = spectrum_types.refused_columns(columns, self.stmt.location, self.region, files)
        selects = []
        for column in columns:
            if column.name in found:
                expr = _as_declared(render_name(None, found[column.name]), column)
            else:  # Spectrum reads a column missing from the files as NULL
                expr = _as_declared("NULL", column)
            if column.name in refused:
                expr = spectrum_types.failing_expression(refused[column.name], column.duckdb_type)
            selects.append(f"{expr} AS {render_name(None, column.name)}")
        return "SELECT " + ", ".join(selects) + f" FROM {source}", refused


def refuse_scan(sql: str, tables: Mapping[spectrum_types.TableKey, ExternalTable]) -> None:
    """Fail `sql` (DuckDB SQL) as Spectrum does if it scans one of `tables` whose location
    could not be read, or reads a column of one that a part holds in another type.

    Checked before the statement runs, from the columns it names (`spectrum_types.
    columns_read`), not from the rows it reaches: Spectrum's error is about a file's Parquet
    schema for a column the query reads ("Troubleshooting queries in Amazon Redshift
    Spectrum", "Incompatible data formats"), so `WHERE specieskey IS NOT NULL` over files
    lacking specieskey, which keeps no row, still fails on a refused column it reads. The
    first refused column in declared order is named. While refresh() found nothing wrong
    with any table, this costs nothing: the statement is not parsed again.
    """
    failing = {key: t for key, t in tables.items() if t.refused or t.unreadable}
    if not failing:
        return
    declared = {key: [c.name for c in t.stmt.columns] for key, t in failing.items()}
    for key, read in spectrum_types.columns_read(sql, declared).items():
        table = failing[key]
        if table.unreadable is not None:
            raise EmulatorError(table.unreadable)
        for column in table.stmt.columns:
            if column.name in read and column.name in table.refused:
                raise EmulatorError(table.refused[column.name])
