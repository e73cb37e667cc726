"""What the stand-in must do for ONE Redshift statement: `parse_statement` turns it into a
record of `bisonflow.local.redshift.parsed_sql`.

* ordinary SQL (SELECT, CREATE TABLE [AS], INSERT, DROP, ALTER ... RENAME, ...) becomes
  DuckDB SQL through `sqlglot.transpile(read="redshift", write="duckdb")` plus fixes for what
  sqlglot leaves Redshift-shaped (`bisonflow.local.redshift.sql_transpile`);
* statements sqlglot cannot express, because they touch S3 or the Glue catalog, are read
  into small records (`ExternalSchemaStmt`, `ExternalTableStmt`, `CopyStmt`, `UnloadStmt`)
  that the engine carries out against its S3 stand-in.
"""

from __future__ import annotations

import re

from sqlglot import exp

from bisonflow.local.redshift.copy_unload_sql import parse_copy, parse_unload
from bisonflow.local.redshift.parsed_sql import (
    DropTableStmt,
    ExternalColumn,
    ExternalSchemaStmt,
    ExternalTableStmt,
    NoOpStmt,
    SqlStmt,
    Statement,
    UnsupportedSql,
)
from bisonflow.local.redshift.sql_text import NAME, split_name, split_statements
from bisonflow.local.redshift.sql_transpile import (
    duckdb_type,
    parse_sql,
    render_name,
    table_name,
    to_duckdb_expression,
)

__all__ = ["parse_statement"]

_EXTERNAL_SCHEMA = re.compile(
    rf"^\s*CREATE\s+EXTERNAL\s+SCHEMA\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{NAME})\b",
    re.I | re.S,
)
_DROP_SCHEMA = re.compile(
    rf"^\s*DROP\s+SCHEMA\s+(?P<ie>IF\s+EXISTS\s+)?(?P<name>{NAME})(?P<rest>.*)$", re.I | re.S
)
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_NO_OPS = ("VACUUM", "ANALYZE", "GRANT", "REVOKE", "COMMENT")


def _parse_external_table(create: exp.Create) -> ExternalTableStmt:
    """CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION 's3://...' (the only kind the
    workflow writes; partitions and other formats are refused, naming them)."""
    schema_node = create.this
    if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
        raise UnsupportedSql("CREATE EXTERNAL TABLE needs a column list")
    schema, name = table_name(schema_node.this)
    if schema is None:
        raise UnsupportedSql("an external table must be named <external_schema>.<table>")
    columns = []
    for column in schema_node.expressions:
        if not isinstance(column, exp.ColumnDef) or column.args.get("kind") is None:
            raise UnsupportedSql(f"cannot read external column definition {column.sql()!r}")
        columns.append(ExternalColumn(column.name.lower(), duckdb_type(column.args["kind"])))
    location = file_format = None
    for prop in create.args.get("properties", exp.Properties(expressions=[])).expressions:
        if isinstance(prop, exp.LocationProperty):
            location = prop.this.name
        elif isinstance(prop, exp.FileFormatProperty):
            file_format = prop.this.name.upper()
        elif isinstance(prop, exp.PartitionedByProperty):
            raise UnsupportedSql("partitioned external tables are not supported by the emulator")
    if not location:
        raise UnsupportedSql("CREATE EXTERNAL TABLE needs LOCATION 's3://...'")
    if file_format != "PARQUET":
        raise UnsupportedSql(
            f"external tables STORED AS {file_format} are not supported by the emulator "
            "(only PARQUET)"
        )
    return ExternalTableStmt(schema, name, tuple(columns), location, file_format)


def parse_statement(sql: str) -> Statement:
    """What the emulator must do for ONE Redshift statement."""
    pieces = split_statements(sql)
    if len(pieces) != 1:
        raise UnsupportedSql(
            "empty statement" if not pieces else f"expected one statement, got {len(pieces)}"
        )
    text = _LEADING_COMMENTS.sub("", pieces[0])
    head = text.split(None, 1)[0].upper()
    if match := _EXTERNAL_SCHEMA.match(text):
        return ExternalSchemaStmt(split_name(match.group("name"))[1], bool(match.group("ine")))
    if head == "COPY":
        return parse_copy(text)
    if head == "UNLOAD":
        return parse_unload(text)
    if head in _NO_OPS:
        return NoOpStmt(f"{head} has no DuckDB counterpart and nothing to do locally")
    if match := _DROP_SCHEMA.match(text):
        rest = match.group("rest").upper()
        name = split_name(match.group("name"))[1]
        ie = "IF EXISTS " if match.group("ie") else ""
        cascade = " CASCADE" if "CASCADE" in rest else ""
        return SqlStmt(f"DROP SCHEMA {ie}{render_name(None, name)}{cascade}", False, False)

    expression = parse_sql(text)
    if isinstance(expression, exp.Command):
        raise UnsupportedSql(f"the local Redshift emulator cannot run {head} statements")
    if isinstance(expression, exp.Create) and any(
        isinstance(p, exp.ExternalProperty)
        for p in (expression.args.get("properties") or exp.Properties(expressions=[])).expressions
    ):
        if str(expression.args.get("kind", "")).upper() != "TABLE":
            raise UnsupportedSql("only CREATE EXTERNAL TABLE and SCHEMA are supported")
        if expression.expression is not None:
            raise UnsupportedSql("CREATE EXTERNAL TABLE AS is not supported by the emulator")
        return _parse_external_table(expression)
    if isinstance(expression, exp.Drop) and str(expression.args.get("kind", "")).upper() == "TABLE":
        tables = expression.args.get("tables") or [expression.this]
        names = tuple(table_name(t) for t in tables if isinstance(t, exp.Table))
        if not names:
            raise UnsupportedSql("cannot read the table names of DROP TABLE")
        return DropTableStmt(
            names, bool(expression.args.get("exists")), bool(expression.args.get("cascade"))
        )
    fixed = to_duckdb_expression(expression)
    returns_rows = isinstance(fixed, exp.Query | exp.Describe | exp.Show)
    counts_rows = isinstance(fixed, exp.Insert | exp.Update | exp.Delete | exp.Merge) or (
        isinstance(fixed, exp.Create) and fixed.expression is not None
    )
    return SqlStmt(fixed.sql(dialect="duckdb"), returns_rows, counts_rows)
