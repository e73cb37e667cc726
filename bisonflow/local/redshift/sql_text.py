"""Redshift SQL text read without a parser: where one statement ends, the Data API's
`:name` parameters, and the names and string literals COPY and UNLOAD are read with.

Splitting uses sqlglot's Redshift tokenizer, so a semicolon inside a string or a comment
does not end a statement (the Data API runs one statement per ExecuteStatement, one per
entry of BatchExecuteStatement's Sqls)."""

from __future__ import annotations

import re

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import TokenType

from bisonflow.local.redshift.parsed_sql import UnsupportedSql
from bisonflow.sql.quoting import sql_literal

__all__ = [
    "NAME",
    "STRING",
    "bind_parameters",
    "split_name",
    "split_statements",
    "unquote",
]

REDSHIFT = Dialect.get_or_raise("redshift")

#: A Redshift identifier, bare or double-quoted.
NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
#: A Redshift string literal (inner quotes doubled).
STRING = r"'(?:[^']|'')*'"


def split_statements(sql: str) -> list[str]:
    """The statements in `sql`, split at top-level semicolons (strings and comments aware).

    Pieces holding only comments or whitespace are dropped.
    """
    try:
        tokens = REDSHIFT.tokenize(sql)
    except Exception:  # an unterminated string, say: leave it to the parser to report
        return [sql.strip()] if sql.strip() else []
    cuts = [t.start for t in tokens if t.token_type == TokenType.SEMICOLON]
    pieces, start = [], 0
    for cut in [*cuts, len(sql)]:
        pieces.append(sql[start:cut].strip())
        start = cut + 1
    return [p for p in pieces if p and _has_tokens(p)]


def _has_tokens(text: str) -> bool:
    """Whether a piece holds more than comments and whitespace."""
    try:
        return bool(REDSHIFT.tokenize(text))
    except Exception:
        return True


_PARAM = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|::|:([A-Za-z_]\w*)", re.S
)


def bind_parameters(sql: str, parameters: list[dict[str, str]] | None) -> str:
    """Substitute the Data API's named parameters (`:name`) with string literals.

    The Data API sends every value as text and Redshift casts it where it is used; a quoted
    literal behaves the same way on DuckDB. Placeholders inside strings, quoted names and
    comments, and `::` casts, are left alone.
    """
    if not parameters:
        return sql
    values = {p["name"]: p.get("value", "") for p in parameters}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in values:
            raise UnsupportedSql(f"parameter :{name} has no value in Parameters")
        return sql_literal(str(values[name]))

    return _PARAM.sub(replace, sql)


def unquote(literal: str) -> str:
    """The text of a Redshift string literal."""
    return literal[1:-1].replace("''", "'")


def split_name(qualified: str) -> tuple[str | None, str]:
    """(schema, name) of a possibly qualified name, folded to lower case as Redshift folds
    identifiers; `public`, Redshift's default schema, reads as no schema."""
    parts = [p.strip() for p in re.findall(NAME, qualified)]
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p for p in parts]
    parts = [p.lower() for p in parts]
    name = parts[-1]
    schema = parts[-2] if len(parts) > 1 else None
    return (None if schema == "public" else schema), name
