"""What `bisonflow.local.redshift.sql_parse.parse_statement` makes of one Redshift statement:
one frozen record per command kind, which the engine hands to that kind's command
(`bisonflow.local.redshift.commands`). Records, not SQL, so the commands never parse text and
the parser never touches DuckDB or S3: each side is tested and reasoned about on its own."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CopyStmt",
    "DropTableStmt",
    "ExternalColumn",
    "ExternalSchemaStmt",
    "ExternalTableStmt",
    "NoOpStmt",
    "SqlStmt",
    "Statement",
    "UnloadStmt",
    "UnsupportedSql",
]


class UnsupportedSql(ValueError):
    """The statement is valid Redshift, or not, but the emulator cannot run it."""


@dataclass(frozen=True)
class SqlStmt:
    """Plain SQL, already DuckDB dialect."""

    duckdb_sql: str
    returns_rows: bool  # a query: the Data API has a result set to fetch
    counts_rows: bool  # DML or CREATE TABLE AS: DuckDB reports the affected row count


@dataclass(frozen=True)
class NoOpStmt:
    """Accepted and ignored (VACUUM, ANALYZE, GRANT, ...): nothing to do on DuckDB."""

    reason: str


@dataclass(frozen=True)
class ExternalSchemaStmt:
    """CREATE EXTERNAL SCHEMA: on DuckDB a plain schema that holds external-table views."""

    name: str
    if_not_exists: bool


@dataclass(frozen=True)
class ExternalColumn:
    """One declared column of an external table, as the view over its files casts it."""

    name: str  # lower case, as Redshift folds identifiers
    #: DuckDB type to CAST the parquet column to; None for nested types (array, struct, map,
    #: SUPER), which are passed through as the file holds them.
    duckdb_type: str | None


@dataclass(frozen=True)
class ExternalTableStmt:
    """CREATE EXTERNAL TABLE ... STORED AS PARQUET LOCATION 's3://bucket/prefix/'."""

    schema: str
    name: str
    columns: tuple[ExternalColumn, ...]
    location: str
    file_format: str


@dataclass(frozen=True)
class DropTableStmt:
    """DROP TABLE: the emulator decides whether each name is a table or an external table."""

    tables: tuple[tuple[str | None, str], ...]
    if_exists: bool
    cascade: bool


@dataclass(frozen=True)
class CopyStmt:
    """COPY table [(columns)] FROM 's3://...' with the options the emulator honours."""

    schema: str | None
    table: str
    columns: tuple[str, ...] | None
    uri: str
    file_format: str  # CSV, TEXT, PARQUET or SHAPEFILE
    delimiter: str = ","
    quote: str = '"'
    ignore_header: int = 0
    empty_as_null: bool = False
    blanks_as_null: bool = False
    null_as: str | None = None
    compression: str | None = None


@dataclass(frozen=True)
class UnloadStmt:
    """UNLOAD ('query') TO 's3://bucket/prefix' with the options the emulator honours."""

    query_duckdb: str
    uri: str
    file_format: str  # PARQUET, CSV, JSON or TEXT (refused: unload_rules)
    allow_overwrite: bool = False
    clean_path: bool = False
    parallel: bool = True
    header: bool = False
    delimiter: str = ","
    extension: str | None = None
    manifest: bool = False
    null_as: str | None = None
    #: Every option the statement names (FORMAT as its format), with its value or "", so
    #: `bisonflow.local.redshift.unload_rules` can refuse the combinations Redshift refuses.
    options: dict[str, str] = field(default_factory=dict)


Statement = (
    SqlStmt
    | NoOpStmt
    | ExternalSchemaStmt
    | ExternalTableStmt
    | DropTableStmt
    | CopyStmt
    | UnloadStmt
)
