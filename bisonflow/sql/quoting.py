"""Quoting for the Redshift SQL text the workflow builds (redshift_sql, boundary_sql).

A module of its own so that both SQL modules quote the same way without importing each
other: redshift_sql assembles the steps and imports boundary_sql, which must not import it
back.
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
