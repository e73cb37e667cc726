"""The stand-in's commands: one module per kind of parsed statement
(`bisonflow.local.redshift.parsed_sql`), found through DISPATCH by the record's type.

A new kind of statement is a record, a module here and one line in DISPATCH; the engine
(`bisonflow.local.redshift.engine`) never changes for it. Each command takes the database,
the record and whether a batch's transaction is open, and returns the Outcome the
statement's Data API fields are filled from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bisonflow.local.redshift import cells_memo
from bisonflow.local.redshift.commands import copy, drop_table, external, plain_sql, unload
from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.moto_s3 import EmulatorError
from bisonflow.local.redshift.parsed_sql import (
    CopyStmt,
    DropTableStmt,
    ExternalSchemaStmt,
    ExternalTableStmt,
    NoOpStmt,
    SqlStmt,
    UnloadStmt,
)
from bisonflow.local.redshift.records import Outcome
from bisonflow.local.redshift.sql_parse import parse_statement

__all__ = ["DISPATCH", "Command", "execute"]

#: A command: (database, parsed record of its kind, in a batch's transaction) -> Outcome.
Command = Callable[[Database, Any, bool], Outcome]

DISPATCH: dict[type, Command] = {
    SqlStmt: plain_sql.run,
    NoOpStmt: plain_sql.skip,
    ExternalSchemaStmt: external.create_schema,
    ExternalTableStmt: external.create_table,
    DropTableStmt: drop_table.run,
    CopyStmt: copy.run,
    UnloadStmt: unload.run,
}


def execute(database: Database, sql: str, in_transaction: bool) -> Outcome:
    """Run ONE Redshift statement on `database` by the command for its kind; a boundary
    layer's grid cells may come from `cells_memo` (speed only)."""
    return cells_memo.execute(database, sql, lambda: _dispatch(database, sql, in_transaction))


def _dispatch(database: Database, sql: str, in_transaction: bool) -> Outcome:
    parsed = parse_statement(sql)
    command = DISPATCH.get(type(parsed))
    if command is None:
        raise EmulatorError(f"unhandled statement {type(parsed).__name__}")
    return command(database, parsed, in_transaction)
