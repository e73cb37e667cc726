"""CREATE EXTERNAL SCHEMA and CREATE EXTERNAL TABLE: Spectrum's catalog, on DuckDB a schema
and a view per table over the files its location holds
(`bisonflow.local.redshift.external_tables` says how they are read).

Redshift runs external DDL outside transactions only (Redshift Database Developer Guide,
CREATE EXTERNAL TABLE, Usage notes: not inside BEGIN ... END), so a batch, which the Data
API runs as one transaction, fails on one here as it does there.
"""

from __future__ import annotations

from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.external_tables import ExternalTable
from bisonflow.local.redshift.moto_s3 import EmulatorError, split_s3_uri
from bisonflow.local.redshift.parsed_sql import ExternalSchemaStmt, ExternalTableStmt
from bisonflow.local.redshift.records import Outcome
from bisonflow.local.redshift.sql_transpile import render_name

__all__ = ["create_schema", "create_table", "refuse_in_transaction"]


def refuse_in_transaction(in_transaction: bool, what: str) -> None:
    """External DDL fails inside a batch's transaction, as on Redshift."""
    if in_transaction:
        raise EmulatorError(f"{what} cannot run inside a transaction block")


def create_schema(database: Database, stmt: ExternalSchemaStmt, in_transaction: bool) -> Outcome:
    """A plain DuckDB schema, remembered as external so DROP TABLE in it drops views."""
    refuse_in_transaction(in_transaction, "CREATE EXTERNAL SCHEMA")
    ine = "IF NOT EXISTS " if stmt.if_not_exists else ""
    database.connection().execute(f"CREATE SCHEMA {ine}{render_name(None, stmt.name)}")
    database.external_schemas.add(stmt.name)
    return Outcome()


def create_table(database: Database, stmt: ExternalTableStmt, in_transaction: bool) -> Outcome:
    """Only the catalog entry, as on Redshift: the files are read by later queries."""
    refuse_in_transaction(in_transaction, "CREATE EXTERNAL TABLE")
    con = database.connection()
    if stmt.schema not in database.external_schemas:
        raise EmulatorError(
            f'external schema "{stmt.schema}" does not exist '
            "(CREATE EXTERNAL SCHEMA must come first)"
        )
    key = (stmt.schema, stmt.name)
    exists = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE schema_name = ? AND view_name = ?", key
    ).fetchone()
    if key in database.external_tables or (exists and exists[0]):
        raise EmulatorError(f'relation "{stmt.schema}.{stmt.name}" already exists')
    split_s3_uri(stmt.location)  # a malformed LOCATION fails CREATE EXTERNAL TABLE
    table = ExternalTable(
        stmt, database.workdir(f"external-{stmt.schema}.{stmt.name}"), database.s3.region
    )
    table.mount(con)
    database.external_tables[key] = table
    return Outcome()
