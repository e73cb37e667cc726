"""Redshift SQL as DuckDB SQL: sqlglot's translation plus the fixes for what it leaves
Redshift-shaped (`transpile` lists them), and DuckDB's spelling of names and column types.
Nothing here touches DuckDB or S3."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift.parsed_sql import UnsupportedSql

__all__ = [
    "duckdb_type",
    "parse_sql",
    "render_name",
    "table_name",
    "to_duckdb_expression",
    "transpile",
]

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
    """The CRS name DuckDB spatial takes for an integer SRID literal ('EPSG:<n>')."""
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
    """The tree with Redshift's semantics made explicit for DuckDB and the arguments Redshift
    refuses guarded (`rules`); shared by `transpile` and UNLOAD's query."""
    return redshift_rules.guard(expression.transform(_fix_node))


def transpile(sql: str) -> str:
    """One Redshift statement as DuckDB SQL.

    On top of sqlglot's Redshift-to-DuckDB translation: identifiers folded to lower case;
    `public.` and database prefixes dropped; VARCHAR(MAX)/CHAR(n) -> VARCHAR; SUPER -> JSON;
    ST_SetSRID(g, n) -> ST_SetCRS(g, 'EPSG:n'); ST_MakePoint -> ST_Point;
    ST_GeometryN(g, i) -> the i-th part of ST_Dump(g);
    ST_GeomFromText(wkt, n) -> ST_SetCRS(ST_GeomFromText(wkt), 'EPSG:n'); the arguments of
    spatial functions guarded by `rules` (what Redshift refuses fails here too).
    """
    return to_duckdb_expression(parse_sql(sql)).sql(dialect="duckdb")


def parse_sql(sql: str) -> exp.Expression:
    """One Redshift statement as sqlglot's tree; a syntax error is UnsupportedSql."""
    try:
        expression = sqlglot.parse_one(sql, read="redshift")
    except ParseError as error:
        raise UnsupportedSql(f"syntax error: {error}") from None
    if not isinstance(expression, exp.Expression):  # None: nothing but comments
        raise UnsupportedSql("empty statement")
    return expression


def render_name(schema: str | None, name: str) -> str:
    """A DuckDB-quoted, optionally schema-qualified name."""
    quoted = '"' + name.replace('"', '""') + '"'
    if schema:
        return '"' + schema.replace('"', '""') + '".' + quoted
    return quoted


def table_name(table: exp.Table) -> tuple[str | None, str]:
    """(schema, name) of a table reference, `public` read as no schema."""
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
