"""DROP TABLE, whose names may be tables or external tables: one statement can hold both,
and only Spectrum's need the catalog (and refuse a transaction, as external DDL does)."""

from __future__ import annotations

from bisonflow.local.redshift.commands.external import refuse_in_transaction
from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.moto_s3 import EmulatorError
from bisonflow.local.redshift.parsed_sql import DropTableStmt
from bisonflow.local.redshift.records import Outcome
from bisonflow.local.redshift.sql_transpile import render_name

__all__ = ["run"]


def run(database: Database, stmt: DropTableStmt, in_transaction: bool) -> Outcome:
    """Drop each named table; an external one loses its view and its cached parts."""
    con = database.connection()
    for schema, name in stmt.tables:
        ie = "IF EXISTS " if stmt.if_exists else ""
        if schema is not None and schema in database.external_schemas:
            refuse_in_transaction(in_transaction, "DROP EXTERNAL TABLE")
            table = database.external_tables.pop((schema, name), None)
            if table is None and not stmt.if_exists:
                raise EmulatorError(f'external table "{schema}.{name}" does not exist')
            if table is not None:
                table.drop(con)
            continue
        cascade = " CASCADE" if stmt.cascade else ""
        con.execute(f"DROP TABLE {ie}{render_name(schema, name)}{cascade}")
    return Outcome()
