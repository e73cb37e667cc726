"""Speed only: the grid cells of a boundary layer computed once per process, not once per run.

The aggregate step lists the cells each boundary meets (`bisonflow.sql.boundaries.cells_sql`),
2-3 CPU-s of DuckDB spatial per run, and every local run of the test suite loads the same
shapefiles. A statement whose text is word for word `cells_sql` of one of the workflow's
boundary layers (of any month) is keyed by the layer and a fingerprint of what the query reads
(each boundary's geoid and the WKB of its shape, in order); a key met before is answered by a
CREATE TABLE AS over the rows kept from its first computation, inside the same transaction,
so a rollback leaves no table and an error or a cancel behaves as the query's would. Any other
statement, or a boundary table the fingerprint cannot read safely, runs as it always did.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from bisonflow.layout import MonthError, MonthLayout
from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.records import Outcome
from bisonflow.local.redshift.sql_transpile import render_name, table_name
from bisonflow.sql.boundaries import Boundaries, boundary_layers, cells_sql

__all__ = ["MAX_ENTRIES", "CellsMemoStats", "execute", "forget", "stats"]

#: Kept results (a month's two layers, a few months at once); the oldest used goes first.
MAX_ENTRIES = 6

_CREATE = "CREATE TABLE "
_AS = " AS"
_KEY_LAYOUT = MonthLayout.for_month("2000-01")
#: `MonthLayout.datestamp`'s length: the end of a boundary table's name.
_DATESTAMP_LENGTH = len(_KEY_LAYOUT.datestamp)
#: What a layer's cells statement is keyed by: its text for one fixed month. The statements
#: of a layer's months differ only in the table names, which the rows do not hold, and the
#: suite's runs each take a month of their own.
_KEY_TEXT = {layer.name: cells_sql(layer) for layer in boundary_layers(_KEY_LAYOUT)}


@dataclass
class CellsMemoStats:
    """How the memo answered the cells statements of this process (read by its test)."""

    computed: int = 0  # the spatial query made the table and its rows were kept
    served: int = 0  # the table was made from rows kept before


@dataclass(frozen=True)
class _Kept:
    columns: tuple[tuple[str, str], ...]  # (name, DuckDB type) as the query made them
    rows: Any  # pyarrow.Table


_STATS = CellsMemoStats()
_KEPT: OrderedDict[tuple[str, str], _Kept] = OrderedDict()
_LOCK = threading.Lock()


def stats() -> CellsMemoStats:
    """A copy of the counts so far."""
    with _LOCK:
        return CellsMemoStats(_STATS.computed, _STATS.served)


def forget() -> None:
    """Drop every kept result, so a test starts from a memo that has seen nothing."""
    with _LOCK:
        _KEPT.clear()


def execute(database: Database, sql: str, run: Callable[[], Outcome]) -> Outcome:
    """Run one Redshift statement: `run()` unless it is a boundary layer's cells statement
    whose result for the boundary table's current content is kept."""
    layer = _layer_of(sql)
    if layer is None:
        return run()
    con = database.connection()
    fingerprint = _fingerprint(con, _duckdb_name(layer.table))
    if fingerprint is None:
        return run()
    key = (_KEY_TEXT[layer.name], fingerprint)
    with _LOCK:
        kept = _KEPT.get(key)
        if kept is not None:
            _KEPT.move_to_end(key)
    cells = render_name(*_duckdb_name(layer.cells))
    if kept is not None:
        outcome = _create(con, cells, kept)
        with _LOCK:
            _STATS.served += 1
        return outcome
    outcome = run()
    kept = _Kept(
        tuple((str(r[0]), str(r[1])) for r in con.execute(f"DESCRIBE {cells}").fetchall()),
        con.execute(f"SELECT * FROM {cells}").to_arrow_table(),
    )
    with _LOCK:
        _KEPT[key] = kept
        _KEPT.move_to_end(key)
        while len(_KEPT) > MAX_ENTRIES:
            _KEPT.popitem(last=False)
        _STATS.computed += 1
    return outcome


def _layer_of(sql: str) -> Boundaries | None:
    """The boundary layer (of any month) whose `cells_sql` is exactly `sql`, if one is."""
    head, newline, _ = sql.partition("\n")
    if not newline or not head.startswith(_CREATE) or not head.endswith(_AS):
        return None
    cells = head[len(_CREATE) : -len(_AS)]
    try:
        layout = MonthLayout.from_datestamp(cells.removesuffix("_cells")[-_DATESTAMP_LENGTH:])
    except MonthError:
        return None
    return next(
        (b for b in boundary_layers(layout) if b.cells == cells and cells_sql(b) == sql), None
    )


def _duckdb_name(name: str) -> tuple[str | None, str]:
    """(schema, table) of a layer's table as the transpiled statement names it."""
    return table_name(exp.to_table(name, dialect="redshift"))


def _fingerprint(con: duckdb.DuckDBPyConnection, table: tuple[str | None, str]) -> str | None:
    """md5 over the boundaries' (geoid, md5 of the shape's WKB) in order: all the cells query
    reads (a geoid led by its length, so no two tables' rows run together alike). None unless
    `table` is a base table with those columns, so the fingerprint never fails (a failed
    query would end the batch's open transaction)."""
    readable = con.execute(
        "SELECT count(*) FROM duckdb_columns() AS c "
        "JOIN duckdb_tables() AS t USING (database_name, schema_name, table_name) "
        "WHERE c.database_name = current_database() "
        "AND c.schema_name = coalesce(?, current_schema()) AND c.table_name = ? "
        "AND (c.column_name = 'geoid' "
        "OR (c.column_name = 'shape' AND c.data_type LIKE 'GEOMETRY%'))",
        list(table),
    ).fetchone()
    if readable is None or readable[0] != 2:
        return None
    row = con.execute(
        "WITH b AS (SELECT coalesce(length(CAST(geoid AS VARCHAR)) || ':' "
        "|| CAST(geoid AS VARCHAR), 'n') AS g, "
        f"coalesce(md5(ST_AsWKB(shape)), 'n') AS s FROM {render_name(*table)}) "
        "SELECT md5(coalesce(string_agg(g || ':' || s, '|' ORDER BY g, s), '')) FROM b"
    ).fetchone()
    return None if row is None else str(row[0])


def _create(con: duckdb.DuckDBPyConnection, cells: str, kept: _Kept) -> Outcome:
    """CREATE TABLE <cells> AS the kept rows, each column cast back to the type the query
    gave it; the row count, as the query's CREATE TABLE AS reports it."""
    view = f"cells_memo_{uuid.uuid4().hex}"
    select = ", ".join(
        f"CAST({render_name(None, name)} AS {kind}) AS {render_name(None, name)}"
        for name, kind in kept.columns
    )
    con.register(view, kept.rows)
    try:
        row = con.execute(f"CREATE TABLE {cells} AS SELECT {select} FROM {view}").fetchone()
    finally:
        con.unregister(view)
    return Outcome(rows=int(row[0]) if row and row[0] is not None else 0)
