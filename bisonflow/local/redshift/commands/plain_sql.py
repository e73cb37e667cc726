"""Plain SQL, which DuckDB runs itself once transpiled (SELECT, CREATE TABLE [AS], INSERT,
...), and the statements with nothing to do on DuckDB (VACUUM, ANALYZE, GRANT, ...)."""

from __future__ import annotations

from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.encoding import result_set
from bisonflow.local.redshift.parsed_sql import NoOpStmt, SqlStmt
from bisonflow.local.redshift.records import Outcome

__all__ = ["run", "skip"]


def run(database: Database, stmt: SqlStmt, in_transaction: bool) -> Outcome:
    """A query's rows as the Data API returns them, a DML's or CREATE TABLE AS's row count,
    or nothing; external tables it may scan are listed first, as Spectrum does."""
    database.prepare_scan(stmt.duckdb_sql)
    cursor = database.connection().execute(stmt.duckdb_sql)
    if stmt.returns_rows:
        result = result_set(cursor.description or [], cursor.fetchall())
        return Outcome(True, len(result.records), result)
    if stmt.counts_rows:
        row = cursor.fetchone()
        return Outcome(rows=int(row[0]) if row and row[0] is not None else 0)
    return Outcome()


def skip(database: Database, stmt: NoOpStmt, in_transaction: bool) -> Outcome:
    """Accepted, as Redshift accepts it; nothing on DuckDB corresponds (`stmt.reason`)."""
    return Outcome()
