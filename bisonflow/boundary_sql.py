"""The aggregate step's boundary SQL: load the county and AIANNH layers, find each point's area.

`bisonflow.redshift_sql` assembles the aggregate step's batches and calls this module for
batches 2 and 3 (`load_boundaries`) and for the hits tables of batch 4 (`hits_sql`), which
its `_mark_sql` joins. Real Redshift dialect, run unchanged by the DuckDB stand-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, MonthLayout
from bisonflow.sql_text import quote_ident, sql_literal

if TYPE_CHECKING:
    from bisonflow.redshift_sql import SqlTarget

#: SRID of the Census boundary files (NAD83). Redshift takes a shapefile's SRID from its .prj;
#: GBIF coordinates are WGS84, which differs from NAD83 by about a metre, far below county
#: scale, so points are tagged with the boundaries' SRID rather than transformed.
BOUNDARY_SRID = 4269

#: Attribute fields of the Census cartographic boundary county file (cb_YYYY_us_county_500k),
#: in the file's field order. COPY ... FORMAT SHAPEFILE loads by position: the geometry first,
#: then these fields in this order, so the table below must match the file exactly.
COUNTY_SHAPEFILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("statefp", "VARCHAR(2)"),
    ("countyfp", "VARCHAR(3)"),
    ("countyns", "VARCHAR(8)"),
    ("affgeoid", "VARCHAR(16)"),
    ("geoid", "VARCHAR(5)"),
    ("name", "VARCHAR(100)"),
    ("namelsad", "VARCHAR(100)"),
    ("stusps", "VARCHAR(2)"),
    ("state_name", "VARCHAR(100)"),
    ("lsad", "VARCHAR(2)"),
    ("aland", "BIGINT"),
    ("awater", "BIGINT"),
)

#: Attribute fields of the Census cartographic boundary file of American Indian / Alaska
#: Native / Native Hawaiian areas (cb_YYYY_us_aiannh_500k), in the file's field order.
AIANNH_SHAPEFILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("aiannhce", "VARCHAR(4)"),
    ("aiannhns", "VARCHAR(8)"),
    ("affgeoid", "VARCHAR(16)"),
    ("geoid", "VARCHAR(8)"),
    ("name", "VARCHAR(100)"),
    ("namelsad", "VARCHAR(100)"),
    ("lsad", "VARCHAR(2)"),
    ("aland", "BIGINT"),
    ("awater", "BIGINT"),
)

#: Edge of the square grid cells the boundaries are cut into before points are matched to
#: them, in degrees. Cutting bounds the vertices a point is tested against: a reservation
#: with 13,000 vertices becomes pieces of a few hundred, and a point far inside a big
#: borough meets only the piece of its own cell. 0.5 degrees measured fastest on the real
#: AIANNH layer (0.25 makes more pieces than it saves vertices; 0.1 is slower to build).
TILE_DEGREES = 0.5
#: Grid cells a boundary may span along one axis: 1,000 half-degree cells is 500 degrees.
_TILE_STEPS_DIGITS = 3


@dataclass(frozen=True)
class Boundaries:
    """One boundary layer: its shapefile, its table and the table of its grid pieces."""

    name: str  # "county" or "aiannh"
    shapefile_key: str
    fields: tuple[tuple[str, str], ...]
    table: str

    @property
    def tiles(self) -> str:
        return f"{self.table}_tiles"


def boundary_layers(layout: MonthLayout) -> tuple[Boundaries, Boundaries]:
    """The month's county and AIANNH layers."""
    return (
        Boundaries("county", COUNTY_SHAPEFILE_KEY, COUNTY_SHAPEFILE_FIELDS, layout.county_table),
        Boundaries("aiannh", AIANNH_SHAPEFILE_KEY, AIANNH_SHAPEFILE_FIELDS, layout.aiannh_table),
    )


def hits_table(layout: MonthLayout, boundaries: Boundaries) -> str:
    """The work table of (gbifid, geoid) pairs `hits_sql` builds for one layer."""
    return f"{layout.subset_table}_{boundaries.name}_hits"


def load_boundaries(boundaries: Boundaries, target: SqlTarget) -> list[str]:
    """Load a boundary shapefile, then cut it into grid pieces (one transaction)."""
    uri = f"s3://{target.bison_bucket}/{boundaries.shapefile_key}"
    defs = ",\n".join(f"    {quote_ident(name)} {kind}" for name, kind in boundaries.fields)
    return [
        f"DROP TABLE IF EXISTS {boundaries.table}",
        f"CREATE TABLE {boundaries.table} (\n    shape GEOMETRY,\n{defs}\n)",
        # SIMPLIFY AUTO only simplifies polygons too large for one GEOMETRY value (1 MB).
        f"COPY {boundaries.table}\nFROM {sql_literal(uri)}\n{target.iam_role_clause}\n"
        f"FORMAT SHAPEFILE SIMPLIFY AUTO\nREGION {sql_literal(target.region)}",
        f"DROP TABLE IF EXISTS {boundaries.tiles}",
        _tiles_sql(boundaries),
    ]


def _tiles_sql(boundaries: Boundaries) -> str:
    """CREATE TABLE <tiles> AS every boundary cut along a TILE_DEGREES grid: (geoid, piece).

    A point is covered by a boundary exactly when it is covered by one of the boundary's
    pieces, because the pieces are the boundary intersected with closed grid cells that
    together cover the plane: a point on a cell line lies in the pieces on both sides, and
    the deduplication of `hits_sql` keeps one. Cells are numbered from the boundary's
    bounding box; `steps` counts 0..999 with a cross join of digits, which Redshift and
    DuckDB both run (Redshift's generate_series runs on the leader node only).
    """
    size = TILE_DEGREES
    digits = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
    steps = " + ".join(
        f"d{n}.d * {10 ** (_TILE_STEPS_DIGITS - 1 - n)}" for n in range(_TILE_STEPS_DIGITS)
    )
    crossed = " CROSS JOIN ".join(f"digits AS d{n}" for n in range(_TILE_STEPS_DIGITS))
    shape = f"ST_SetSRID(b.shape, {BOUNDARY_SRID})"
    cell = (
        f"ST_SetSRID(ST_MakeEnvelope((g.x0 + nx.i) * {size}, (g.y0 + ny.i) * {size}, "
        f"(g.x0 + nx.i + 1) * {size}, (g.y0 + ny.i + 1) * {size}), {BOUNDARY_SRID})"
    )
    return f"""CREATE TABLE {boundaries.tiles} AS
WITH digits AS ({digits}),
steps AS (SELECT {steps} AS i FROM {crossed}),
gridded AS (
    SELECT b.geoid, {shape} AS shape,
           CAST(FLOOR(ST_XMin(b.shape) / {size}) AS INTEGER) AS x0,
           CAST(FLOOR(ST_YMin(b.shape) / {size}) AS INTEGER) AS y0,
           CAST(FLOOR(ST_XMax(b.shape) / {size}) AS INTEGER) AS x1,
           CAST(FLOOR(ST_YMax(b.shape) / {size}) AS INTEGER) AS y1
    FROM {boundaries.table} AS b
),
cells AS (
    SELECT g.geoid, g.shape, {cell} AS cell
    FROM gridded AS g
    JOIN steps AS nx ON nx.i <= g.x1 - g.x0
    JOIN steps AS ny ON ny.i <= g.y1 - g.y0
)
SELECT geoid, ST_Intersection(shape, cell) AS piece
FROM cells
WHERE ST_Intersects(shape, cell)"""


def hits_sql(subset: str, boundaries: Boundaries, hits: str) -> str:
    """CREATE TABLE <hits> AS (gbifid, geoid): the one boundary covering each record's point.

    ST_Covers rather than ST_Contains so a point exactly on a boundary still gets one: GBIF
    coordinates are often rounded to whole or tenth degrees, and many state lines run along
    such meridians and parallels. A point on a line shared by two boundaries (or in an
    overlap of imperfect polygons) matches both; the lowest GEOID wins, so no record is
    counted twice. Only records that hit something are listed, so the window sorts the hits,
    not the whole subset. DuckDB plans the join as SPATIAL_JOIN over an R-tree of the pieces.
    Redshift has no spatial index and joins by nested loop; should that be too slow there,
    the grid offers an equi-join: keeping each piece's cell numbers (cx, cy) and adding
    `t.cx = FLOOR(lon / TILE_DEGREES)` and the same for y lets it hash-join, at the price of
    DuckDB planning a hash join too (measured on the sample: about 2x faster for counties when
    whole cells skip ST_Covers, 1.3x slower for AIANNH areas).
    """
    point = f"ST_SetSRID(ST_Point(s.decimallongitude, s.decimallatitude), {BOUNDARY_SRID})"
    return f"""CREATE TABLE {hits} AS
SELECT gbifid, geoid
FROM (
    SELECT s.gbifid, t.geoid,
           ROW_NUMBER() OVER (PARTITION BY s.gbifid ORDER BY t.geoid) AS pick
    FROM {subset} AS s
    JOIN {boundaries.tiles} AS t ON ST_Covers(t.piece, {point})
) AS covered
WHERE pick = 1"""
