"""Redshift SQL to DuckDB: sqlglot's translation plus Redshift's own commands.

`parse_statement(sql)` turns ONE Redshift statement into a description the emulator in
`bisonflow.local.redshift.service` can carry out:

* ordinary SQL (SELECT, CREATE TABLE [AS], INSERT, DROP, ALTER ... RENAME, ...) becomes
  DuckDB SQL through `sqlglot.transpile(read="redshift", write="duckdb")` plus fixes for what
  sqlglot leaves Redshift-shaped (see `transpile`);
* statements sqlglot cannot express, because they touch S3 or the Glue catalog, are parsed
  here into small records (`ExternalSchemaStmt`, `ExternalTableStmt`, `CopyStmt`,
  `UnloadStmt`) that the emulator executes against its S3 stand-in.

Nothing here touches DuckDB or S3, so it is tested and reasoned about on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError
from sqlglot.tokens import TokenType

from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.sql.quoting import sql_literal

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
    "bind_parameters",
    "parse_statement",
    "render_name",
    "split_statements",
    "transpile",
]


_REDSHIFT = Dialect.get_or_raise("redshift")


class UnsupportedSql(ValueError):
    """The statement is valid Redshift, or not, but the emulator cannot run it."""


# --- statement records ----------------------------------------------------------------------


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
    file_format: str  # PARQUET, CSV, JSON or TEXT (refused: redshift_unload_rules)
    allow_overwrite: bool = False
    clean_path: bool = False
    parallel: bool = True
    header: bool = False
    delimiter: str = ","
    extension: str | None = None
    manifest: bool = False
    null_as: str | None = None
    #: Every option the statement names (FORMAT as its format), with its value or "", so
    #: `redshift_unload_rules` can refuse the combinations Redshift refuses.
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


# --- splitting and parameters ---------------------------------------------------------------


def split_statements(sql: str) -> list[str]:
    """The statements in `sql`, split at top-level semicolons (strings and comments aware).

    Pieces holding only comments or whitespace are dropped.
    """
    try:
        tokens = _REDSHIFT.tokenize(sql)
    except Exception:  # an unterminated string, say: leave it to the parser to report
        return [sql.strip()] if sql.strip() else []
    cuts = [t.start for t in tokens if t.token_type == TokenType.SEMICOLON]
    pieces, start = [], 0
    for cut in [*cuts, len(sql)]:
        pieces.append(sql[start:cut].strip())
        start = cut + 1
    return [p for p in pieces if p and _has_tokens(p)]


def _has_tokens(text: str) -> bool:
    try:
        return bool(_REDSHIFT.tokenize(text))
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


# --- sqlglot transpiling --------------------------------------------------------------------

_TEXT_TYPES = {
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.NVARCHAR,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.NCHAR,
    exp.DataType.Type.TEXT,
    exp.DataType.Type.BPCHAR,
}
_NESTED_TYPES = {
    exp.DataType.Type.ARRAY,
    exp.DataType.Type.STRUCT,
    exp.DataType.Type.MAP,
    exp.DataType.Type.SUPER,
}


def _srid_crs(srid: exp.Expression) -> exp.Expression | None:
    if isinstance(srid, exp.Literal) and not srid.is_string and srid.this.isdigit():
        return exp.Literal.string(f"EPSG:{int(srid.this)}")
    return None


def _fix_node(node: exp.Expression) -> exp.Expression:
    """One sqlglot node, Redshift semantics made explicit for DuckDB."""
    if isinstance(node, exp.Identifier):
        # Redshift folds every identifier, quoted or not, to lower case (unless
        # enable_case_sensitive_identifier is on); DuckDB keeps the spelling it is given.
        node.set("this", node.this.lower())
    elif isinstance(node, exp.Table):
        # Redshift's default schema is `public` and the database name may prefix a table;
        # DuckDB's default schema is `main` in its single catalog.
        db = node.args.get("db")
        if db is not None and db.name.lower() == "public":
            node.set("db", None)
        if node.args.get("catalog") is not None:
            node.set("catalog", None)
    elif isinstance(node, exp.DataType):
        if node.this in _TEXT_TYPES:
            # VARCHAR(MAX) / CHAR(n): DuckDB's VARCHAR is unbounded and rejects MAX.
            return exp.DataType.build("VARCHAR")
        if node.this == exp.DataType.Type.SUPER:
            return exp.DataType.build("JSON")
        if node.this == exp.DataType.Type.GEOGRAPHY:
            return exp.DataType.build("GEOMETRY", dialect="duckdb")
    elif isinstance(node, exp.Anonymous):
        name = str(node.this).upper()
        # A node this function replaces is not descended into (sqlglot's transform prunes
        # it), so the arguments are fixed here: ST_SetSRID(ST_GeometryN(...), n) needs both.
        args = [arg.transform(_fix_node) for arg in node.expressions]
        if name == "ST_SETSRID" and len(args) == 2:
            # Redshift tags a geometry with an SRID; DuckDB spatial with a CRS name.
            crs = _srid_crs(args[1])
            return exp.Anonymous(this="ST_SetCRS", expressions=[args[0], crs]) if crs else args[0]
        if name == "ST_MAKEPOINT" and len(args) == 2:
            return exp.Anonymous(this="ST_Point", expressions=list(args))
        if name == "ST_GEOMETRYN" and len(args) == 2:
            # DuckDB spatial has no ST_GeometryN; ST_Dump lists a geometry's parts, 1-based
            # like Redshift's index (a polygon's only part is itself).
            parts = exp.Anonymous(this="ST_Dump", expressions=[args[0]])
            part = exp.Anonymous(this="list_extract", expressions=[parts, args[1]])
            return exp.Anonymous(
                this="struct_extract", expressions=[part, exp.Literal.string("geom")]
            )
        if name in ("ST_GEOMFROMTEXT", "ST_GEOMFROMWKB") and len(args) == 2:
            crs = _srid_crs(args[1])
            inner = exp.Anonymous(this=name, expressions=[args[0]])
            return exp.Anonymous(this="ST_SetCRS", expressions=[inner, crs]) if crs else inner
    return node


def to_duckdb_expression(expression: exp.Expression) -> exp.Expression:
    return redshift_rules.guard(expression.transform(_fix_node))


def transpile(sql: str) -> str:
    """One Redshift statement as DuckDB SQL.

    On top of sqlglot's Redshift-to-DuckDB translation: identifiers folded to lower case;
    `public.` and database prefixes dropped; VARCHAR(MAX)/CHAR(n) -> VARCHAR; SUPER -> JSON;
    ST_SetSRID(g, n) -> ST_SetCRS(g, 'EPSG:n'); ST_MakePoint -> ST_Point;
    ST_GeometryN(g, i) -> the i-th part of ST_Dump(g);
    ST_GeomFromText(wkt, n) -> ST_SetCRS(ST_GeomFromText(wkt), 'EPSG:n'); the arguments of
    spatial functions guarded by `redshift_rules` (what Redshift refuses fails here too).
    """
    return to_duckdb_expression(_parse(sql)).sql(dialect="duckdb")


def _parse(sql: str) -> exp.Expression:
    try:
        expression = sqlglot.parse_one(sql, read="redshift")
    except ParseError as error:
        raise UnsupportedSql(f"syntax error: {error}") from None
    if expression is None:
        raise UnsupportedSql("empty statement")
    return expression


def render_name(schema: str | None, name: str) -> str:
    """A DuckDB-quoted, optionally schema-qualified name."""
    quoted = '"' + name.replace('"', '""') + '"'
    if schema:
        return '"' + schema.replace('"', '""') + '".' + quoted
    return quoted


def _table_name(table: exp.Table) -> tuple[str | None, str]:
    db = table.args.get("db")
    schema = db.name.lower() if db is not None else None
    if schema == "public":
        schema = None
    return schema, table.name.lower()


def duckdb_type(kind: exp.DataType) -> str | None:
    """DuckDB spelling of a Redshift column type; None for nested types (kept as stored)."""
    if kind.this in _NESTED_TYPES:
        return None
    return to_duckdb_expression(kind.copy()).sql(dialect="duckdb")


# --- statement parsing ----------------------------------------------------------------------

_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QNAME = rf"{_NAME}(?:\s*\.\s*{_NAME}){{0,2}}"
_STRING = r"'(?:[^']|'')*'"

_EXTERNAL_SCHEMA = re.compile(
    rf"^\s*CREATE\s+EXTERNAL\s+SCHEMA\s+(?P<ine>IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME})\b",
    re.I | re.S,
)
_DROP_SCHEMA = re.compile(
    rf"^\s*DROP\s+SCHEMA\s+(?P<ie>IF\s+EXISTS\s+)?(?P<name>{_NAME})(?P<rest>.*)$", re.I | re.S
)
_COPY = re.compile(
    rf"^\s*COPY\s+(?P<table>{_QNAME})\s*(?:\((?P<cols>[^)]*)\))?\s*FROM\s+(?P<uri>{_STRING})"
    r"(?P<rest>.*)$",
    re.I | re.S,
)
_UNLOAD = re.compile(
    rf"^\s*UNLOAD\s*\(\s*(?P<query>{_STRING})\s*\)\s*TO\s+(?P<uri>{_STRING})(?P<rest>.*)$",
    re.I | re.S,
)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[^\s'(),]+))")
_LEADING_COMMENTS = re.compile(r"^(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_NO_OPS = ("VACUUM", "ANALYZE", "GRANT", "REVOKE", "COMMENT")


def _unquote(literal: str) -> str:
    return literal[1:-1].replace("''", "'")


def _split_name(qualified: str) -> tuple[str | None, str]:
    parts = [p.strip() for p in re.findall(_NAME, qualified)]
    parts = [p[1:-1].replace('""', '"') if p.startswith('"') else p for p in parts]
    parts = [p.lower() for p in parts]
    name = parts[-1]
    schema = parts[-2] if len(parts) > 1 else None
    return (None if schema == "public" else schema), name


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip():
                raise UnsupportedSql(f"cannot read options near {text[pos : pos + 30]!r}")
            break
        pos = match.end()
        kind = match.lastgroup or "word"
        out.append((kind, match.group(kind)))
    return out


class _Options:
    """A cursor over COPY/UNLOAD option tokens: `NAME [AS] value` and bare flags."""

    def __init__(self, text: str, command: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.command = command

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek_word(self) -> str | None:
        if self.done():
            return None
        kind, value = self.tokens[self.pos]
        return value.upper() if kind == "word" else None

    def word(self) -> str:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind != "word":
            raise UnsupportedSql(f"{self.command}: expected an option name, got {value!r}")
        return value.upper()

    def value(self, name: str) -> str:
        """The option's argument after an optional AS: a string literal or a bare word."""
        if self.peek_word() == "AS":
            self.pos += 1
        if self.done():
            raise UnsupportedSql(f"{self.command}: option {name} needs a value")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return _unquote(value)
        if kind == "word":
            return value
        raise UnsupportedSql(f"{self.command}: option {name} needs a value, got {value!r}")

    def optional_value(self) -> str | None:
        if not self.done() and self.tokens[self.pos][0] == "str":
            return self.value("")
        return None


#: COPY/UNLOAD options that only matter on AWS (credentials, region, tuning): accepted, unused.
_IGNORED_WITH_VALUE = {
    "IAM_ROLE",
    "CREDENTIALS",
    "REGION",
    "ACCESS_KEY_ID",
    "SECRET_ACCESS_KEY",
    "SESSION_TOKEN",
    "MAXERROR",
    "COMPUPDATE",
    "STATUPDATE",
    "DATEFORMAT",
    "TIMEFORMAT",
    "ENCODING",
    "MAXFILESIZE",
    "ROWGROUPSIZE",
    "KMS_KEY_ID",
}
_IGNORED_FLAGS = {
    "TRUNCATECOLUMNS",
    "TRIMBLANKS",
    "ACCEPTANYDATE",
    "ROUNDEC",
    "FILLRECORD",
    "EXPLICIT_IDS",
    "ENCRYPTED",
    "IGNOREBLANKLINES",
}


def _parse_copy(match: re.Match[str]) -> CopyStmt:
    schema, table = _split_name(match.group("table"))
    cols = match.group("cols")
    columns = None
    if cols is not None:
        columns = tuple(_split_name(c)[1] for c in cols.split(",") if c.strip())
    uri = _unquote(match.group("uri"))
    opts = _Options(match.group("rest"), "COPY")
    file_format = "TEXT"
    delimiter: str | None = None
    quote: str | None = None
    flags: dict[str, object] = {}
    while not opts.done():
        name = opts.word()
        if name == "FORMAT":
            file_format = opts.value(name).upper()
            if file_format not in ("CSV", "PARQUET", "SHAPEFILE"):
                raise UnsupportedSql(
                    f"COPY FORMAT {file_format} is not supported by the local emulator"
                )
        elif name in ("CSV", "PARQUET", "SHAPEFILE"):
            file_format = name
        elif name == "QUOTE":
            quote = opts.value(name)
        elif name == "DELIMITER":
            delimiter = opts.value(name)
        elif name == "IGNOREHEADER":
            flags["ignore_header"] = int(opts.value(name))
        elif name == "EMPTYASNULL":
            flags["empty_as_null"] = True
        elif name == "BLANKSASNULL":
            flags["blanks_as_null"] = True
        elif name == "NULL":
            flags["null_as"] = opts.value(name)
        elif name in ("GZIP", "ZSTD"):
            flags["compression"] = name.lower()
        elif name == "SIMPLIFY":
            # SIMPLIFY [AUTO] [tolerance] only shrinks geometries over Redshift's 1 MB limit.
            if opts.peek_word() == "AUTO":
                opts.pos += 1
            if re.fullmatch(r"[0-9.eE+-]+", opts.peek_word() or ""):
                opts.pos += 1
        elif name == "ACCEPTINVCHARS":
            opts.optional_value()
        elif name in _IGNORED_WITH_VALUE:
            opts.value(name)
        elif name not in _IGNORED_FLAGS:
            raise UnsupportedSql(f"COPY option {name} is not supported by the local emulator")
    # Redshift's defaults: CSV is comma-separated with double quotes; plain text is
    # pipe-delimited without quoting.
    if delimiter is None:
        delimiter = "," if file_format == "CSV" else "|"
    if quote is None:
        quote = '"' if file_format == "CSV" else ""
    return CopyStmt(
        schema=schema,
        table=table,
        columns=columns,
        uri=uri,
        file_format=file_format,
        delimiter=delimiter,
        quote=quote,
        **flags,  # type: ignore[arg-type]
    )


def _parse_unload(match: re.Match[str]) -> UnloadStmt:
    query = _unquote(match.group("query"))
    parsed = _parse(query)
    if not isinstance(parsed, exp.Query):
        raise UnsupportedSql("UNLOAD needs a SELECT query")
    uri = _unquote(match.group("uri"))
    opts = _Options(match.group("rest"), "UNLOAD")
    settings: dict[str, object] = {"file_format": "TEXT"}
    given: dict[str, str] = {}
    settings["options"] = given
    while not opts.done():
        name = opts.word()
        given[name] = ""
        if name == "FORMAT":
            fmt = opts.value(name).upper()
            if fmt not in ("CSV", "PARQUET", "JSON"):
                raise UnsupportedSql(f"UNLOAD FORMAT {fmt} is not supported by the local emulator")
            settings["file_format"] = given[name] = fmt
        elif name in ("CSV", "PARQUET", "JSON"):
            settings["file_format"] = given["FORMAT"] = name
            del given[name]
        elif name == "ALLOWOVERWRITE":
            settings["allow_overwrite"] = True
        elif name == "CLEANPATH":
            settings["clean_path"] = True
        elif name == "PARALLEL":
            flag = (
                opts.value(name).upper()
                if opts.peek_word() in ("ON", "OFF", "TRUE", "FALSE")
                else "ON"
            )
            settings["parallel"] = flag in ("ON", "TRUE")
        elif name == "HEADER":
            settings["header"] = True
        elif name == "MANIFEST":
            settings["manifest"] = True
            if opts.peek_word() == "VERBOSE":
                raise UnsupportedSql("UNLOAD MANIFEST VERBOSE is not supported by the emulator")
        elif name == "DELIMITER":
            settings["delimiter"] = given[name] = opts.value(name)
        elif name == "EXTENSION":
            settings["extension"] = given[name] = opts.value(name).lstrip(".")
        elif name == "NULL":
            settings["null_as"] = given[name] = opts.value(name)
        elif name == "FIXEDWIDTH":
            given[name] = opts.value(name)  # refused later, by rule or as not emulated
        elif name in ("ADDQUOTES", "ESCAPE", "GZIP", "BZIP2", "ZSTD"):
            continue  # likewise: redshift_unload_rules
        elif name in _IGNORED_WITH_VALUE:
            given[name] = opts.value(name)
        elif name in _IGNORED_FLAGS:
            continue
        else:
            raise UnsupportedSql(f"UNLOAD option {name} is not supported by the local emulator")
    return UnloadStmt(
        query_duckdb=to_duckdb_expression(parsed).sql(dialect="duckdb"),
        uri=uri,
        **settings,  # type: ignore[arg-type]
    )


def _parse_external_table(create: exp.Create) -> ExternalTableStmt:
    schema_node = create.this
    if not isinstance(schema_node, exp.Schema) or not isinstance(schema_node.this, exp.Table):
        raise UnsupportedSql("CREATE EXTERNAL TABLE needs a column list")
    schema, name = _table_name(schema_node.this)
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
        return ExternalSchemaStmt(_split_name(match.group("name"))[1], bool(match.group("ine")))
    if head == "COPY":
        match = _COPY.match(text)
        if not match:
            raise UnsupportedSql("cannot read COPY: expected COPY table [(cols)] FROM 's3://...'")
        return _parse_copy(match)
    if head == "UNLOAD":
        match = _UNLOAD.match(text)
        if not match:
            raise UnsupportedSql("cannot read UNLOAD: expected UNLOAD ('query') TO 's3://...'")
        return _parse_unload(match)
    if head in _NO_OPS:
        return NoOpStmt(f"{head} has no DuckDB counterpart and nothing to do locally")
    if match := _DROP_SCHEMA.match(text):
        rest = match.group("rest").upper()
        name = _split_name(match.group("name"))[1]
        ie = "IF EXISTS " if match.group("ie") else ""
        cascade = " CASCADE" if "CASCADE" in rest else ""
        return SqlStmt(f"DROP SCHEMA {ie}{render_name(None, name)}{cascade}", False, False)

    expression = _parse(text)
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
        names = tuple(_table_name(t) for t in tables if isinstance(t, exp.Table))
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
