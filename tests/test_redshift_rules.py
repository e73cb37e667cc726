"""The Data API stand-in refuses what Redshift refuses: `bisonflow.local.redshift.rules`.

Each rule is a sentence of the Amazon Redshift Database Developer Guide (cited in the module
docstring). Most tests run the rules on DuckDB as the stand-in does (the statement through
`sql_transpile`, the macros from `redshift_rules.install`); the last ones go through the
Data API of the session's emulator: the aggregate step's old grid pieces fail there as they
would on Redshift, and its grid cells do not.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from redshift_data_api import rows, rsd_fixture, run  # noqa: F401 (rsd_fixture: `rsd`)

from bisonflow.duckdb_ext import load_spatial
from bisonflow.layout import COUNTY_SHAPEFILE_KEY
from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift import sql_transpile as st
from bisonflow.local.redshift.engine import error_text
from bisonflow.sql.boundaries import (
    CELL_DEGREES,
    CELL_ID_STRIDE,
    Boundaries,
    cells_sql,
    hits_sql,
    points_sql,
)

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
    return error_text(failure.value)


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


# --- point in polygon: what Redshift refuses ------------------------------------------------

#: A county whose northern edge runs along the 41st parallel, a grid line, for a stretch, and
#: which crosses that line further east: the grid square north of the step holds an area of
#: the county AND a line of its edge. (Census boundaries follow whole-degree parallels and
#: meridians for hundreds of miles, e.g. the Colorado, Wyoming and Kansas state lines.)
STEPPED_COUNTY = (
    "POLYGON((-106 40.2, -104 40.2, -104 41.3, -104.75 41.3, -104.75 41, -106 41, -106 40.2))"
)
#: (gbifid, lon, lat, GEOID of the county covering it or None, whether the county covers
#: the point's whole grid square)
STEPPED_POINTS = (
    ("1", -104.6, 41.2, "08001", True),  # north of the line, in the part that crosses it
    ("2", -104.9, 41.0, "08001", False),  # on the edge along the line: covered
    ("3", -104.8, 41.2, None, False),  # north of the stretch along the line: outside
    ("4", -105.2, 40.7, "08001", True),  # deep inside
    ("5", -104.75, 41.3, "08001", False),  # a vertex
    ("6", -104.6, 41.2, "08001", True),  # record 1's point again: located once
)


def _stepped_layer(rsd: Any, name: str) -> tuple[Boundaries, str]:
    """A one-county boundary table and a subset table of STEPPED_POINTS on the stand-in."""
    layer = Boundaries(name, COUNTY_SHAPEFILE_KEY, (("geoid", "VARCHAR(5)"),), f"{name}_layer")
    subset = f"{name}_subset"
    points = ", ".join(f"('{g}', {x}, {y})" for g, x, y, *_ in STEPPED_POINTS)
    run(
        rsd,
        f"DROP TABLE IF EXISTS {layer.table}",
        f"CREATE TABLE {layer.table} (shape GEOMETRY, geoid VARCHAR(5))",
        f"INSERT INTO {layer.table} VALUES (ST_GeomFromText('{STEPPED_COUNTY}'), '08001')",
        f"DROP TABLE IF EXISTS {subset}",
        f"CREATE TABLE {subset} (gbifid VARCHAR(20), decimallongitude DOUBLE PRECISION, "
        "decimallatitude DOUBLE PRECISION)",
        f"INSERT INTO {subset} VALUES {points}",
    )
    return layer, subset


def _grid_pieces_sql(layer: Boundaries, subset: str) -> tuple[str, str]:
    """The aggregate step's point in polygon before grid cells (commit 5a5a61a,
    boundary_sql._tiles_sql and hits_sql), over the squares of this layer's bounding box:
    every boundary cut into half-degree pieces with ST_Intersection, points joined to the
    pieces with ST_Covers."""
    squares = " UNION ALL ".join(
        f"SELECT {x} AS cx, {y} AS cy" for x in range(-212, -208) for y in range(80, 83)
    )
    tiles = f"""CREATE TABLE {layer.table}_tiles AS
WITH squares AS ({squares}),
cells AS (
    SELECT b.geoid, ST_SetSRID(b.shape, 4269) AS shape,
           ST_SetSRID(ST_MakeEnvelope(q.cx * 0.5, q.cy * 0.5, (q.cx + 1) * 0.5,
                                      (q.cy + 1) * 0.5), 4269) AS cell
    FROM {layer.table} AS b CROSS JOIN squares AS q
)
SELECT geoid, ST_Intersection(shape, cell) AS piece FROM cells WHERE ST_Intersects(shape, cell)"""
    hits = f"""SELECT s.gbifid, t.geoid
FROM {subset} AS s
JOIN {layer.table}_tiles AS t
  ON ST_Covers(t.piece, ST_SetSRID(ST_Point(s.decimallongitude, s.decimallatitude), 4269))"""
    return tiles, hits


def test_grid_pieces_made_by_st_intersection_fail_as_on_redshift(rsd: Any) -> None:
    """The old pieces: ST_Intersection of the stepped county and the square north of its
    step is a GEOMETRYCOLLECTION, and Redshift's ST_Covers "returns an error" for one
    (Amazon Redshift Database Developer Guide, ST_Covers, Return type). The stand-in used
    to answer; it now fails the statement with that refusal."""
    layer, subset = _stepped_layer(rsd, "pieces")
    tiles, hits = _grid_pieces_sql(layer, subset)
    run(rsd, f"DROP TABLE IF EXISTS {layer.table}_tiles", tiles)
    kinds = rows(rsd, f"SELECT DISTINCT ST_GeometryType(piece) FROM {layer.table}_tiles")
    assert ("GEOMETRYCOLLECTION",) in kinds
    failed = run(rsd, hits, expect="FAILED")
    assert failed["Error"].startswith(
        "ERROR: ST_Covers: geom1 is a GEOMETRYCOLLECTION, which Redshift's ST_Covers "
        "does not accept"
    ), failed["Error"]


def test_grid_cells_find_every_point_of_the_stepped_county(rsd: Any) -> None:
    """The workflow's cells and hits SQL on the same county: no collection is made or
    tested, and every point gets the county covering it (edges and vertices included)."""
    layer, subset = _stepped_layer(rsd, "cells")
    hits, points = f"{layer.table}_hits", f"{layer.table}_points"
    run(
        rsd,
        f"DROP TABLE IF EXISTS {layer.cells}",
        cells_sql(layer),
        f"DROP TABLE IF EXISTS {points}",
        points_sql(subset, points),
        f"DROP TABLE IF EXISTS {hits}",
        hits_sql(points, layer, hits),
    )
    inside = dict(rows(rsd, f"SELECT cell, inside FROM {layer.cells}"))
    for _, lon, lat, _, whole in STEPPED_POINTS:
        cell = math.floor(lon / CELL_DEGREES) * CELL_ID_STRIDE + math.floor(lat / CELL_DEGREES)
        # Every point's square meets the county (point 3's along the step's edge), and only
        # the squares it covers whole skip the exact test.
        assert inside[cell] is whole, (lon, lat)
    found = rows(rsd, f"SELECT lon, lat, geoid FROM {hits} ORDER BY lon, lat")
    # One row per distinct point, not per record: records 1 and 6 share theirs.
    assert found == sorted({(x, y, geoid) for _, x, y, geoid, _ in STEPPED_POINTS if geoid})
