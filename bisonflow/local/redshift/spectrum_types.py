"""Redshift Spectrum's parquet type check, for the DuckDB Data API stand-in.

DuckDB reads a parquet column as whatever it is and the stand-in CASTs it to the declared
type, so an external table declaring `taxonkey INT` over GBIF's string taxon keys would
work locally (the strings are digits) and fail on AWS. Spectrum does not convert: "For a
columnar file format, such as Apache Parquet, the column type is embedded with the data. The
column type in the CREATE EXTERNAL TABLE definition must match the column type of the data
file" (Amazon Redshift Database Developer Guide, "Troubleshooting queries in Amazon Redshift
Spectrum", section "Incompatible data formats"). The same section gives the error, whose
full text SVL_S3LOG shows as

    Spectrum Scan Error. File 'https://s3bucket/location/file has an incompatible Parquet
    schema for column 's3bucket/location.col1'. Column type: VARCHAR, Parquet
    schema:\\noptional int64 l_orderkey [i:0 d:1 r:0]\\n

CREATE EXTERNAL TABLE itself succeeds (it only writes the catalog); the scan fails. The
error names a file's Parquet schema and a column, not a row: it is a property of the file
and of the columns the query reads from it, whatever the query's WHERE keeps. And Spectrum
reads only those columns: "Parquet stores data in a columnar format, so Redshift Spectrum
can eliminate unneeded columns from the scan" (the guide, "Amazon Redshift Spectrum query
performance"); "you can minimize data transfer out of Amazon S3 by selecting only the
columns that you need" ("Creating data files for queries in Amazon Redshift Spectrum").
So the check has two parts:

* `refused_columns` gives, for every declared column some part file holds in an
  incompatible type, Spectrum's error;
* `columns_read` finds, with sqlglot's scopes, which declared columns of which external
  tables a statement reads (in its SELECT list, WHERE, JOIN, GROUP BY, HAVING, ORDER BY,
  subqueries, or through `*`), so the stand-in fails a statement reading a refused column
  before it runs (`bisonflow.local.redshift.external_tables.refuse_scan`), and runs one reading only
  compatible columns.

Why before the run and not inside DuckDB's plan: the external table is a DuckDB view, and
DuckDB binds a view's whole SELECT whatever columns the query uses, so an expression failing
at bind or plan time would fail every query of the table; an expression failing when
evaluated (`failing_expression`, which the view still uses for refused columns, as a
backstop) fails only when a row reaches it, so a WHERE keeping no row hid the error (the
subset's `specieskey IS NOT NULL` over files lacking specieskey, which read as NULL).
`columns_read` errs on the strict side: a column a subquery or CTE selects, or its `*`,
counts as read even when the outer query uses fewer (Redshift may prune them; the guide
does not promise it). It can miss an unqualified column of a correlated subquery naming
the outer external table's column; the view's backstop then fails it when a row is read.

What "compatible" means here (the parquet type of the file's column, physical and logical,
for each declared Redshift type; the guide says "must match", so no widening is allowed):

* VARCHAR, CHAR, TEXT: BYTE_ARRAY (string, enum or JSON annotation, or none);
* SMALLINT, INT: INT32 (an integer annotation or none); BIGINT: INT64 (the same);
* REAL: FLOAT; DOUBLE PRECISION: DOUBLE; BOOLEAN: BOOLEAN;
* TIMESTAMP: INT96, or INT64 annotated as a timestamp; DATE: INT32 annotated as a date;
* DECIMAL: any physical type annotated as a decimal (precision and scale not compared);
* ARRAY, STRUCT, MAP: a group column; any scalar type over a group column is refused.

Not checked: other declared types (TIMESTAMPTZ, VARBYTE, GEOMETRY, ...), and columns the
files lack (Spectrum reads them as NULL, as the stand-in does).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.scope import traverse_scope

from bisonflow.local.redshift.parsed_sql import ExternalColumn

#: Declared DuckDB type (as sql_transpile renders the Redshift type, parameters dropped) ->
#: (the Redshift name the error shows, accepted (physical type, logical type) pairs; None
#: accepts any logical type of that physical type).
_TEXT = frozenset({("BYTE_ARRAY", t) for t in ("STRING", "ENUM", "JSON", "NONE")})
_INT32 = frozenset({("INT32", "INT"), ("INT32", "NONE")})
_INT64 = frozenset({("INT64", "INT"), ("INT64", "NONE")})
_DECIMAL = frozenset(
    {(p, "DECIMAL") for p in ("INT32", "INT64", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY")}
)
_ACCEPTED: dict[str, tuple[str, frozenset[tuple[str, str | None]]]] = {
    "TEXT": ("VARCHAR", _TEXT),
    "VARCHAR": ("VARCHAR", _TEXT),
    "SMALLINT": ("SMALLINT", _INT32),
    "INT": ("INT", _INT32),
    "INTEGER": ("INT", _INT32),
    "BIGINT": ("BIGINT", _INT64),
    "REAL": ("REAL", frozenset({("FLOAT", "NONE")})),
    "FLOAT": ("REAL", frozenset({("FLOAT", "NONE")})),
    "DOUBLE": ("DOUBLE PRECISION", frozenset({("DOUBLE", "NONE")})),
    "BOOLEAN": ("BOOLEAN", frozenset({("BOOLEAN", "NONE")})),
    "TIMESTAMP": ("TIMESTAMP", frozenset({("INT96", None), ("INT64", "TIMESTAMP")})),
    "DATE": ("DATE", frozenset({("INT32", "DATE")})),
    "DECIMAL": ("DECIMAL", _DECIMAL),
}


@dataclass(frozen=True)
class ParquetColumn:
    """A top-level column of a parquet file as Spectrum's error describes it."""

    name: str
    index: int  # of its first leaf among the file's leaf columns
    physical: str  # "INT32", "BYTE_ARRAY", ...; "group" for a nested column
    logical: str  # "STRING", "INT", "TIMESTAMP", ... or "NONE"
    definition: int  # max definition level of its first leaf
    repetition: int  # max repetition level of its first leaf

    @property
    def nested(self) -> bool:
        return self.physical == "group"

    def describe(self) -> str:
        """`optional int64 l_orderkey [i:0 d:1 r:0]`, as in Spectrum's error."""
        required = "required" if self.definition == 0 else "optional"
        return (
            f"{required} {self.physical.lower()} {self.name} "
            f"[i:{self.index} d:{self.definition} r:{self.repetition}]"
        )


def parquet_columns(path: Path) -> dict[str, ParquetColumn]:
    """The file's top-level columns by lower-case name (Spectrum matches names so)."""
    schema = pq.ParquetFile(path).schema
    columns: dict[str, ParquetColumn] = {}
    for index in range(len(schema)):
        leaf = schema.column(index)
        top = leaf.path.split(".", 1)[0]
        if top.lower() in columns:
            continue
        nested = leaf.path != top or leaf.max_repetition_level > 0
        columns[top.lower()] = ParquetColumn(
            name=top,
            index=index,
            physical="group" if nested else leaf.physical_type,
            logical="NONE" if nested else str(leaf.logical_type.type).upper(),
            definition=leaf.max_definition_level,
            repetition=leaf.max_repetition_level,
        )
    return columns


def incompatibility(
    column: ExternalColumn, found: ParquetColumn, file_url: str, location: str
) -> str | None:
    """Spectrum's error for the declared column over the file's column, or None if they
    are compatible (or the declared type is one this module does not check)."""
    if column.duckdb_type is None:  # a nested declared type
        if found.nested:
            return None
        declared = "nested type"
    else:
        base = re.split(r"[\s(]", column.duckdb_type.strip().upper(), maxsplit=1)[0]
        if base not in _ACCEPTED:
            return None
        declared, accepted = _ACCEPTED[base]
        if not found.nested and (
            (found.physical, found.logical) in accepted or (found.physical, None) in accepted
        ):
            return None
    return (
        f"Spectrum Scan Error. File '{file_url}' has an incompatible Parquet schema for "
        f"column '{location.rstrip('/')}.{column.name}'. Column type: {declared}, "
        f"Parquet schema:\\n{found.describe()}"
    )


def refused_columns(
    columns: Sequence[ExternalColumn], location: str, region: str, parts: Mapping[str, Path]
) -> dict[str, str]:
    """Declared column -> Spectrum's error, for each column some part holds in an
    incompatible type (the first such part, in key order, is named).

    `location` is the table's s3://bucket/prefix/, `parts` maps each part's S3 key to its
    local copy; the error names a part by its https URL, as Spectrum does.
    """
    bucket = location.removeprefix("s3://").split("/", 1)[0]
    refused: dict[str, str] = {}
    for key in sorted(parts):
        found = parquet_columns(parts[key])
        url = f"https://s3.{region}.amazonaws.com/{bucket}/{key}"
        for column in columns:
            if column.name in refused or column.name not in found:
                continue
            message = incompatibility(column, found[column.name], url, location)
            if message is not None:
                refused[column.name] = message
    return refused


def failing_expression(message: str, duckdb_type: str | None) -> str:
    """A DuckDB expression of the column's type raising `message` when evaluated."""
    failing = f"error('{message.replace(chr(39), chr(39) * 2)}')"
    return failing if duckdb_type is None else f"CAST({failing} AS {duckdb_type})"


TableKey = tuple[str, str]  # (external schema, table), lower case


def columns_read(
    duckdb_sql: str, declared: Mapping[TableKey, Sequence[str]]
) -> dict[TableKey, set[str]]:
    """Each of the `declared` external tables the statement scans -> the declared columns
    it reads there (empty for `count(*)`, which scans the files but reads no column).

    A column is the table's when qualified by its alias, or unqualified in a SELECT whose
    FROM/JOIN has the table and the table declares the name (were it another source's too,
    Redshift would refuse it as ambiguous). SQL sqlglot cannot read gives no tables: DuckDB
    then refuses it with its own error.
    """
    try:
        scopes = traverse_scope(sqlglot.parse_one(duckdb_sql, read="duckdb"))
    except SqlglotError:
        return {}
    read: dict[TableKey, set[str]] = {}
    for scope in scopes:
        tables: dict[str, TableKey] = {}  # alias in this SELECT's FROM/JOIN -> table
        for alias, (_, source) in scope.selected_sources.items():
            if isinstance(source, exp.Table):
                key = (source.db.lower(), source.name.lower())
                if key in declared:
                    tables[alias.lower()] = key
                    read.setdefault(key, set())
        for column in scope.columns:
            for key in _owners(column.table, tables):
                if column.name.lower() in declared[key]:
                    read[key].add(column.name.lower())
        if not isinstance(scope.expression, exp.Select):
            continue
        for projection in scope.expression.expressions:  # SELECT *, SELECT t.*
            qualified = isinstance(projection, exp.Column)
            star = projection.this if qualified else projection
            if not isinstance(star, exp.Star):
                continue
            excluded = {c.name.lower() for c in star.args.get("except_") or []}
            for key in _owners(projection.table if qualified else "", tables):
                read[key].update(c for c in declared[key] if c not in excluded)
    return read


def _owners(qualifier: str, tables: Mapping[str, TableKey]) -> list[TableKey]:
    """The tables a column (or star) qualified by `qualifier` ("" for none) may be of."""
    if not qualifier:
        return list(tables.values())
    key = tables.get(qualifier.lower())
    return [] if key is None else [key]
