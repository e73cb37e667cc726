"""Quoting for SQL text: the Redshift SQL the workflow builds (`bisonflow.sql`) and the
DuckDB SQL the Data API stand-in writes (`bisonflow.local.redshift`).

A module of its own so that every SQL module quotes the same way without importing each
other: workflow_sql assembles the steps and imports boundaries, which must not import it
back; the stand-in must not import the workflow's SQL to quote its own. Redshift and DuckDB
write a string literal the same way (single quotes, an inner quote doubled), so one function
serves both.
"""

from __future__ import annotations

#: Words Redshift reserves (or that read as keywords) among the column names used here.
_RESERVED = frozenset({"order", "class", "name", "default", "table", "user", "group"})


def quote_ident(name: str) -> str:
    """The column name, double-quoted when Redshift would read it as a keyword."""
    return f'"{name}"' if name in _RESERVED else name


def sql_literal(value: str) -> str:
    """A Redshift string literal: single quotes, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
