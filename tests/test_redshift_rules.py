"""The Data API stand-in refuses what Redshift refuses: `bisonflow.local.redshift_rules`.

Each rule is a sentence of the Amazon Redshift Database Developer Guide (cited in the module
docstring). These tests run the rules on DuckDB as the stand-in does (the statement through
`sql_transpile`, the macros from `redshift_rules.install`); tests/test_redshift_duckdb.py
shows the same refusal through the Data API.
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from bisonflow.duckdb_ext import load_spatial
from bisonflow.local import redshift_duckdb as rd
from bisonflow.local import redshift_rules
from bisonflow.local import sql_transpile as st

SQUARE = "ST_GeomFromText('POLYGON((0 0, 2 0, 2 2, 0 2, 0 0))')"
#: What ST_Intersection makes of a polygon and a grid square it crosses and also touches
#: along the square's edge: an area and a line.
COLLECTION = (
    "ST_GeomFromText('GEOMETRYCOLLECTION(POLYGON((0 1, 1 1, 1 2, 0 1)), LINESTRING(1 1, 2 1))')"
)
LINE = "ST_GeomFromText('LINESTRING(0 0, 1 1)')"
#: Arguments after the geometries, where the function has them.
TRAILING = {"ST_DWithin": ", 1.0", "ST_Buffer": ", 1.0"}


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """A database as the stand-in opens one: spatial loaded, the rules' macros installed."""
    connection = duckdb.connect()
    load_spatial(connection)
    redshift_rules.install(connection)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def plain() -> Iterator[duckdb.DuckDBPyConnection]:
    """DuckDB spatial alone, without the rules."""
    connection = duckdb.connect()
    load_spatial(connection)
    yield connection
    connection.close()


def _call(name: str, arguments: list[str], spelled: str | None = None) -> str:
    """SELECT name(arguments), the name spelled as given (SQL names ignore case)."""
    return f"SELECT {spelled or name}({', '.join(arguments)}{TRAILING.get(name, '')})"


def _error(con: duckdb.DuckDBPyConnection, redshift_sql: str) -> str:
    """The stand-in's error text for the statement ("ERROR: ..."), which must fail."""
    with pytest.raises(duckdb.Error) as failure:
        con.execute(st.transpile(redshift_sql)).fetchall()
    return rd._error_text(failure.value)


@pytest.mark.parametrize("name", sorted(redshift_rules.COLLECTION_REJECTED))
def test_a_geometry_collection_argument_fails_as_on_redshift(
    con: duckdb.DuckDBPyConnection, plain: duckdb.DuckDBPyConnection, name: str
) -> None:
    """ "If geom1 or geom2 is a geometry collection, then an error is returned" (each
    function's page, Return type); DuckDB alone answers every one of these calls."""
    parameters, _ = redshift_rules.COLLECTION_REJECTED[name]
    fine = [SQUARE] * len(parameters)
    assert con.execute(st.transpile(_call(name, fine))).fetchall()
    with_collection = [COLLECTION, *fine[1:]]
    assert plain.execute(_call(name, with_collection)).fetchall(), "DuckDB accepts it"
    for position, parameter in enumerate(parameters):
        arguments = list(fine)
        arguments[position] = COLLECTION.lower()  # SQL names are case-insensitive
        call = _call(name, arguments, spelled=name.upper() if position else None)
        assert _error(con, call) == (
            f"ERROR: {name}: {parameter} is a GEOMETRYCOLLECTION, "
            f"which Redshift's {name} does not accept"
        )


def test_st_union_also_refuses_lines(con: duckdb.DuckDBPyConnection) -> None:
    """ST_Union: "If geom1 or geom2 is a geometry collection, linestring, or
    multilinestring, then an error is returned"; the predicates take lines."""
    assert "is a LINESTRING" in _error(con, _call("ST_Union", [SQUARE, LINE]))
    assert con.execute(st.transpile(_call("ST_Covers", [SQUARE, LINE]))).fetchone() == (True,)


def test_null_and_non_collection_arguments_pass_unchanged(con: duckdb.DuckDBPyConnection) -> None:
    """A NULL argument gives NULL, as Redshift documents; the guard changes no answer."""
    null = "CAST(NULL AS GEOMETRY)"
    assert con.execute(st.transpile(_call("ST_Covers", [null, SQUARE]))).fetchone() == (None,)
    point = "ST_Point(2, 1)"  # on the square's edge: covered, not contained
    assert con.execute(st.transpile(_call("ST_Covers", [SQUARE, point]))).fetchone() == (True,)
    assert con.execute(st.transpile(_call("ST_Contains", [SQUARE, point]))).fetchone() == (False,)


def test_a_collection_elsewhere_in_a_statement_is_allowed(con: duckdb.DuckDBPyConnection) -> None:
    """Only the listed functions refuse collections: Redshift's ST_GeometryType, ST_Envelope
    (whose documented example takes a GEOMETRYCOLLECTION) and ST_XMin take one."""
    sql = f"SELECT ST_XMin({COLLECTION}), ST_YMax(ST_Envelope({COLLECTION}))"
    assert con.execute(st.transpile(sql)).fetchone() == (0.0, 2.0)


def test_other_errors_keep_duckdb_wording() -> None:
    """Only the rules' own messages lose DuckDB's class prefix."""
    text = "Invalid Input Error: something else"
    assert redshift_rules.redshift_error_text(text) == text


def test_constructed_points_are_not_checked_row_by_row() -> None:
    """A point or envelope built in the statement is never a collection, so only the other
    argument is checked (the check on every point cost the hits query a quarter of its
    time); ST_Union, which also refuses lines, checks an envelope (a degenerate one is a
    LINESTRING in Redshift)."""
    guard = redshift_rules.GUARD_MACRO.upper()
    covers = st.transpile("SELECT ST_Covers(shape, ST_SetSRID(ST_Point(x, y), 4269)) FROM t")
    assert covers.upper().count(guard) == 1 and f"{guard}(SHAPE," in covers.upper()
    union = st.transpile("SELECT ST_Union(shape, ST_MakeEnvelope(0, 0, 1, 0)) FROM t")
    assert union.upper().count(guard) == 2
