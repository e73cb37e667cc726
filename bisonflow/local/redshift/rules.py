"""What Redshift refuses and DuckDB accepts, refused by the Data API stand-in as well.

The stand-in runs the workflow's Redshift SQL on DuckDB (`bisonflow.local.redshift`,
through `sql_transpile`). Where DuckDB answers a statement Redshift would fail, the laptop would
hide a defect until a monthly run on AWS; each rule here makes the stand-in fail instead,
with an error worded as Redshift's are ("ERROR: ..."). Two seams apply them:
`guard(expression)` rewrites a transpiled statement (called by
`sql_transpile.to_duckdb_expression`), and `install(con)` defines the DuckDB macros the
rewritten SQL calls (called by `database.Database` on every database it opens).

Checked now:

* Geometry collections in spatial functions. Each function in COLLECTION_REJECTED returns an
  error in Redshift when a geometry argument is a GEOMETRYCOLLECTION (ST_Union also for a
  LINESTRING or MULTILINESTRING). Source: Amazon Redshift Database Developer Guide, the
  function's page, section "Return type" ("If geom1 or geom2 is a geometry collection, then
  an error is returned"; github awsdocs/amazon-redshift-developer-guide, doc_source/
  ST_<name>-function.md at commit c91fc63, the last before the repository was archived;
  the live pages at docs.aws.amazon.com/redshift/latest/dg/ST_Covers-function.html etc. say
  the same). DuckDB spatial accepts collections in all of them. The check runs per row, as
  Redshift's does, so a statement fails only when a collection actually reaches the
  function (an ST_Intersection of a polygon and a grid square that touch along a line is
  one). The wording of Redshift's message is not documented; the stand-in's names the
  function, the argument and the type. An argument built in the statement by ST_Point,
  ST_MakePoint or ST_MakeEnvelope cannot be a collection and is not checked row by row.

Not checked (the stand-in still accepts what Redshift may refuse):

* SRID mismatches between the arguments of a spatial function (Redshift: an error; DuckDB
  refuses only two different CRSs, not a CRS against none, and the stand-in's shapefile
  columns carry no CRS where Redshift takes the SRID from the .prj).
* Other argument rules of spatial functions: empty geometries, 3D/4D inputs
  (ST_Intersection: "not a two-dimensional (2D) geometry"), GEOGRAPHY arguments, the
  1,048,447-byte limit of a GEOMETRY value ("Limitations when using spatial data").
* GEOMETRY columns in ORDER BY, GROUP BY or DISTINCT, as sort or distribution keys, or in
  UNLOAD to parquet, all refused by Redshift ("Limitations when using spatial data").
* Leader node-only functions (the guide's "Leader node-only functions": CURRENT_SCHEMA,
  HAS_TABLE_PRIVILEGE, ...) in a query that reads a table, which Redshift refuses.
* Everything else in `bisonflow.local.redshift.service`'s list of deviations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:
    import duckdb

__all__ = ["COLLECTION_REJECTED", "GUARD_MACRO", "guard", "install", "redshift_error_text"]

#: Geometry types a Redshift spatial function refuses, as DuckDB's ST_GeometryType names them.
_COLLECTION = ("GEOMETRYCOLLECTION",)
_COLLECTION_OR_LINEAR = ("GEOMETRYCOLLECTION", "LINESTRING", "MULTILINESTRING")

#: Redshift function, spelled as its documentation spells it -> (its geometry parameters, in
#: order, as the documentation names them; the geometry types it returns an error for).
#: Parameters after these (ST_DWithin's distance, ST_Buffer's radius) are left alone.
COLLECTION_REJECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "ST_Boundary": (("geom",), _COLLECTION),
    "ST_Buffer": (("geom",), _COLLECTION),
    "ST_Contains": (("geom1", "geom2"), _COLLECTION),
    "ST_ContainsProperly": (("geom1", "geom2"), _COLLECTION),
    "ST_CoveredBy": (("geom1", "geom2"), _COLLECTION),
    "ST_Covers": (("geom1", "geom2"), _COLLECTION),
    "ST_Crosses": (("geom1", "geom2"), _COLLECTION),
    "ST_Disjoint": (("geom1", "geom2"), _COLLECTION),
    "ST_Distance": (("geo1", "geo2"), _COLLECTION),
    "ST_DWithin": (("geom1", "geom2"), _COLLECTION),
    "ST_Equals": (("geom1", "geom2"), _COLLECTION),
    "ST_Intersection": (("geom1", "geom2"), _COLLECTION),
    "ST_Intersects": (("geom1", "geom2"), _COLLECTION),
    "ST_Touches": (("geom1", "geom2"), _COLLECTION),
    "ST_Union": (("geom1", "geom2"), _COLLECTION_OR_LINEAR),
    "ST_Within": (("geom1", "geom2"), _COLLECTION),
}
#: SQL names are case-insensitive: the documented spelling of each upper-cased name.
_SPELLING = {name.upper(): name for name in COLLECTION_REJECTED}

#: The DuckDB macro `guard` wraps each geometry argument in: the argument itself, or an
#: error when its type is one the function refuses. Defined by `install`.
GUARD_MACRO = "redshift_geometry_argument"

_MACRO_SQL = f"""CREATE OR REPLACE MACRO
{GUARD_MACRO}(geometry, function_name, parameter, refused) AS
CASE WHEN list_contains(refused, CAST(ST_GeometryType(geometry) AS VARCHAR))
     THEN error(function_name || ': ' || parameter || ' is a '
                || CAST(ST_GeometryType(geometry) AS VARCHAR)
                || ', which Redshift''s ' || function_name || ' does not accept')
     ELSE geometry END"""


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Define the macros guarded SQL calls in this DuckDB database (spatial loaded)."""
    con.execute(_MACRO_SQL)


def _function_name(node: exp.Expression) -> str | None:
    """A call's documented Redshift spelling if it is in COLLECTION_REJECTED, else None.
    sqlglot parses most ST_ functions as Anonymous calls, ST_Distance as its own class."""
    if isinstance(node, exp.Anonymous):
        return _SPELLING.get(str(node.this).upper())
    if isinstance(node, exp.Func):
        return _SPELLING.get(node.sql_name().upper())
    return None


#: Constructors whose result is a POINT, LINESTRING or POLYGON, never a collection
#: (ST_Point, ST_MakePoint; ST_MakeEnvelope: "GEOMETRY of subtype POINT, LINESTRING, or
#: POLYGON"), so the per-row check is skipped for them where only collections are refused;
#: ST_SetCRS (Redshift's ST_SetSRID) keeps its argument's type.
_NEVER_COLLECTIONS = frozenset({"ST_POINT", "ST_MAKEPOINT", "ST_MAKEENVELOPE"})


def _never_a_collection(argument: exp.Expression) -> bool:
    while isinstance(argument, exp.Func):
        name = argument.this if isinstance(argument, exp.Anonymous) else argument.sql_name()
        name = str(name).upper()
        if name in _NEVER_COLLECTIONS:
            return True
        if name != "ST_SETCRS":
            return False
        argument = argument.expressions[0] if isinstance(argument, exp.Anonymous) else argument.this
    return False


def _guard_call(node: exp.Expression) -> exp.Expression:
    name = _function_name(node)
    if name is None:
        return node
    parameters, refused = COLLECTION_REJECTED[name]
    # Where each argument sits in the node, in call order.
    if isinstance(node, exp.Anonymous):
        slots: list[tuple[str, int | None]] = [
            ("expressions", i) for i in range(len(node.expressions))
        ]
    else:
        slots = [(key, None) for key in node.arg_types if node.args.get(key) is not None]
    for parameter, (key, index) in zip(parameters, slots, strict=False):
        argument = node.args[key] if index is None else node.args[key][index]
        if refused == _COLLECTION and _never_a_collection(argument):
            continue
        wrapped = exp.Anonymous(
            this=GUARD_MACRO,
            expressions=[
                argument.copy(),
                exp.Literal.string(name),
                exp.Literal.string(parameter),
                exp.Array(expressions=[exp.Literal.string(t) for t in refused]),
            ],
        )
        if index is None:
            node.set(key, wrapped)
        else:
            arguments = list(node.args[key])
            arguments[index] = wrapped
            node.set(key, arguments)
    return node


def guard(expression: exp.Expression) -> exp.Expression:
    """The statement with every geometry argument of a COLLECTION_REJECTED function
    wrapped in GUARD_MACRO, so a refused type fails the statement as on Redshift."""
    return expression.transform(_guard_call)


def redshift_error_text(text: str) -> str:
    """A rule's error as Redshift words errors: DuckDB's class prefix dropped."""
    prefix = "Invalid Input Error: "
    if text.startswith(prefix) and any(
        text.startswith(prefix + n + ":") for n in COLLECTION_REJECTED
    ):
        return text[len(prefix) :]
    return text
