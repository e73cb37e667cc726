"""Region assignment on and near real AIANNH boundaries, and on the sample's real counties,
through the workflow's own SQL.

Points are published as a tiny GBIF snapshot in the session emulator and go through the
real `subset` and `aggregate` batches on the DuckDB Data API stand-in: grid cells, the
equality join on the cell id and the exact test in boundary cells. The expected area of
every point comes from a plain DuckDB join with the whole, uncut polygons of the real
census layer, plus facts read off the layer by hand
(shared vertices of Havasupai/Hualapai and Acoma/Laguna, the Hopi reservation inside a hole
of the Navajo Nation, a hole of Chicken Ranch Rancheria).

A sample month (real counties of every state, DC and the territories) goes through the same
batches, and its county, region and assessment counts must be the sample's facts, which the
sample derives from its own placement of points and its own reading of the matching rule.

`aggregate_records` is the harness; tests/test_riis_status.py uses it too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
import sqlglot

from bisonflow.dimensions import ASSESSMENTS
from bisonflow.duckdb_ext import load_spatial
from bisonflow.gbif.species_api import interpret_match
from bisonflow.layout import MonthLayout
from bisonflow.local.redshift import rules as redshift_rules
from bisonflow.local.redshift import sql_transpile as st
from bisonflow.local.runtime import LocalRuntime
from bisonflow.riis.columns import ANNOTATED_COLUMNS, RIIS_REGIONS
from bisonflow.riis.master_list import annotated_csv, decode, parse_riis
from bisonflow.sample import SampleManifest, generate_sample, records_table
from bisonflow.sample.geography import AIANNH_SOURCE
from bisonflow.sql.workflow_sql import MARK_COLUMNS, SqlTarget, statement_batches
from bisonflow.steps.statements import Summary, run_batches, summary

#: A snapshot month of this module's own: the session emulator is shared with other tests.
MONTH = "2031-01"
SAMPLE_MONTH = "2031-02"
WORKGROUP = "bisonflow-regions-test"
#: Offset of the points either side of a boundary edge, in degrees (about 10 cm).
NEAR = 1e-6


# --- the harness ----------------------------------------------------------------------------


def occurrence(gbifid: int, lon: float, lat: float, taxonkey: int = 1001) -> dict[str, Any]:
    """A GBIF record the subset keeps, at (lon, lat), of the given taxon."""
    return {
        "gbifid": str(gbifid),
        "countrycode": "US",
        "occurrencestatus": "PRESENT",
        "taxonrank": "SPECIES",
        "basisofrecord": "HUMAN_OBSERVATION",
        "decimallongitude": lon,
        "decimallatitude": lat,
        "taxonkey": taxonkey,
        "specieskey": taxonkey,
        "species": f"Species {taxonkey}",
    }


@dataclass(frozen=True)
class Aggregated:
    marks: dict[str, dict[str, Any]]  # gbifid -> MARK_COLUMNS
    summary: Summary
    rows: int  # rows of the marked subset table


def aggregate_records(
    runtime: LocalRuntime,
    month: str,
    workgroup: str,
    records: list[dict[str, Any]],
    riis_rows: list[dict[str, str]],
) -> Aggregated:
    """Publish the records as the month's snapshot and the RIIS rows as its annotated list,
    run the workflow's subset and aggregate SQL, and read back the marks of every record.

    Boundaries are the session's inputs: the sample's generated counties and the real
    AIANNH layer.
    """
    assert runtime.deployment is not None
    layout = MonthLayout.for_month(month)
    s3, data = runtime.clients["s3"], runtime.clients["redshift-data"]
    target = SqlTarget(
        gbif_bucket=runtime.deployment.gbif_bucket,
        bison_bucket=runtime.deployment.bucket,
        region="us-east-1",
    )
    parquet = io.BytesIO()
    pq.write_table(records_table(records, layout.snapshot), parquet)
    s3.put_object(
        Bucket=target.gbif_bucket, Key=f"{layout.gbif_prefix}000000", Body=parquet.getvalue()
    )
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=ANNOTATED_COLUMNS, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows({**dict.fromkeys(ANNOTATED_COLUMNS, ""), **row} for row in riis_rows)
    s3.put_object(
        Bucket=target.bison_bucket, Key=layout.riis_annotated_key, Body=text.getvalue().encode()
    )
    run_batches(data, statement_batches("subset", layout, target), workgroup)
    last = run_batches(data, statement_batches("aggregate", layout, target), workgroup)
    select = f"SELECT gbifid, {', '.join(MARK_COLUMNS)} FROM {layout.marks_table}"
    marks: dict[str, dict[str, Any]] = {}
    rows = 0
    for record in _records(data, run_batches(data, [[select]], workgroup)):
        rows += 1
        values = [None if f.get("isNull") else next(iter(f.values())) for f in record]
        marks[values[0]] = dict(zip(MARK_COLUMNS, values[1:], strict=True))
    return Aggregated(marks, summary(data, last), rows)


def _records(data: Any, statement_id: str) -> Iterator[list[dict[str, Any]]]:
    token = None
    while True:
        page = data.get_statement_result(Id=statement_id, **({"NextToken": token} if token else {}))
        yield from page["Records"]
        token = page.get("NextToken")
        if not token:
            return


# --- the probes -----------------------------------------------------------------------------

#: Areas whose boundaries are probed: the Navajo Nation (13,386 vertices over many grid
#: cells, with the Hopi reservation in a hole), Eklutna ANVSA (29 vertices), the Hopi
#: reservation, Chicken Ranch Rancheria (a polygon with a hole) and Turtle Mountain
#: (multi-part).
PROBED = ("2430", "6450", "1505", "0620", "4345")
EDGES_PER_AREA = 12

#: (lon, lat, expected GEOID or None, why), read off the layer.
HAND_PICKED = (
    (-110.0, 36.0, "2430", "Navajo, on a corner of four grid cells"),
    (-110.0, 36.25, "2430", "Navajo, on a grid line"),
    (-109.5, 36.5, "2430", "Navajo, on a grid corner"),
    (-110.5, 35.9, "1505", "Hopi, inside a hole of the Navajo Nation"),
    (-112.87592, 36.150679, "1440", "a vertex shared by Havasupai (1440) and Hualapai (1545)"),
    (-107.54479, 35.055023, "0010", "a vertex shared by Acoma (0010) and Laguna (1840)"),
    (-98.0, 40.0, None, "Kansas, in no area"),
)
CHICKEN_RANCH_HOLE = (-120.4522623934619, 37.928145)


@dataclass(frozen=True)
class Probe:
    kind: str  # "vertex", "left" or "right" of an edge's midpoint
    area: str
    edge: int
    lon: float
    lat: float


@pytest.fixture(scope="module")
def layer() -> Iterator[duckdb.DuckDBPyConnection]:
    """The whole, uncut census polygons in a DuckDB of the test's own."""
    con = duckdb.connect()
    load_spatial(con)
    con.execute(f"CREATE TABLE aiannh AS SELECT GEOID, geom FROM ST_Read('{AIANNH_SOURCE}')")
    yield con
    con.close()


def _probes(layer: duckdb.DuckDBPyConnection) -> list[Probe]:
    """Vertices of each probed area's first exterior ring, and points NEAR either side of
    the middle of the edge that starts at each of them."""
    probes = []
    for area in PROBED:
        ring = layer.execute(
            """
            WITH r AS (
                SELECT ST_ExteriorRing(ST_Dump(geom)[1].geom) AS ring FROM aiannh WHERE GEOID = ?
            ),
            v AS (
                SELECT ring, CAST(UNNEST(generate_series(1, ST_NPoints(ring))) AS INTEGER) AS i
                FROM r
            )
            SELECT ST_X(ST_PointN(ring, i)), ST_Y(ST_PointN(ring, i)) FROM v ORDER BY i
            """,
            [area],
        ).fetchall()
        step = max(1, (len(ring) - 1) // EDGES_PER_AREA)
        for edge, i in enumerate(range(0, len(ring) - 1, step)):
            (x0, y0), (x1, y1) = ring[i], ring[i + 1]
            length = ((x1 - x0) ** 2 + (y1 - y0) ** 2) ** 0.5
            mx, my, nx, ny = (x0 + x1) / 2, (y0 + y1) / 2, (y0 - y1) / length, (x1 - x0) / length
            probes.append(Probe("vertex", area, edge, x0, y0))
            probes.append(Probe("left", area, edge, mx - NEAR * nx, my - NEAR * ny))
            probes.append(Probe("right", area, edge, mx + NEAR * nx, my + NEAR * ny))
    return probes


def _covering(layer: duckdb.DuckDBPyConnection, lon: float, lat: float) -> str | None:
    (geoid,) = layer.execute(
        "SELECT MIN(GEOID) FROM aiannh WHERE ST_Covers(geom, ST_Point(?, ?))", [lon, lat]
    ).fetchone()
    return geoid


@pytest.fixture(scope="module")
def probed(
    runtime: LocalRuntime, layer: duckdb.DuckDBPyConnection
) -> tuple[list[Probe], Aggregated]:
    probes = _probes(layer)
    points = [(p.lon, p.lat) for p in probes] + [(x, y) for x, y, *_ in HAND_PICKED]
    points.append(CHICKEN_RANCH_HOLE)
    records = [occurrence(10_000 + i, lon, lat) for i, (lon, lat) in enumerate(points)]
    riis = [{"locality": "L48", "scientificName": "Felis catus", "gbif_res_taxonkey": "1001"}]
    return probes, aggregate_records(runtime, MONTH, WORKGROUP, records, riis)


def _area(aggregated: Aggregated, index: int) -> str | None:
    return aggregated.marks[str(10_000 + index)]["aiannh_geoid"]


def test_points_on_and_near_real_boundaries_get_the_area_covering_them(
    probed: tuple[list[Probe], Aggregated], layer: duckdb.DuckDBPyConnection
) -> None:
    probes, aggregated = probed
    assert {p.area for p in probes} == set(PROBED) and len(probes) >= 100
    for i, probe in enumerate(probes):
        assert _area(aggregated, i) == _covering(layer, probe.lon, probe.lat), probe
    # A vertex is on its area's boundary, which ST_Covers includes.
    vertices = [(i, p) for i, p in enumerate(probes) if p.kind == "vertex"]
    assert all(_area(aggregated, i) is not None for i, _ in vertices)
    assert sum(_area(aggregated, i) == p.area for i, p in vertices) >= 0.9 * len(vertices)
    # Of the two points NEAR an edge, one is inside its area and the other is not.
    sides: dict[tuple[str, int], set[bool]] = {}
    for i, probe in enumerate(probes):
        if probe.kind != "vertex":
            sides.setdefault((probe.area, probe.edge), set()).add(
                _area(aggregated, i) == probe.area
            )
    split = sum(found == {True, False} for found in sides.values())
    assert split >= 0.9 * len(sides), f"{split} of {len(sides)} edges split"


def test_grid_lines_holes_and_shared_vertices(probed: tuple[list[Probe], Aggregated]) -> None:
    probes, aggregated = probed
    for n, (*_, expected, why) in enumerate(HAND_PICKED):
        assert _area(aggregated, len(probes) + n) == expected, why
    hole = _area(aggregated, len(probes) + len(HAND_PICKED))
    assert hole != "0620", "a point in a hole of Chicken Ranch Rancheria is not in it"
    assert aggregated.rows == len(probes) + len(HAND_PICKED) + 1, "no record counted twice"
    named = {m["aiannh_geoid"]: m["aiannh_name"] for m in aggregated.marks.values()}
    assert named["1505"] == "Hopi Reservation and Off-Reservation Trust Land"
    assert named["6450"] == "Eklutna ANVSA"
    assert aggregated.summary["sites"]["aiannh"] == len(set(named) - {None})


def test_points_meet_boundaries_by_an_equality_join_on_the_cell_id() -> None:
    """The hits query joins points to boundary cells by equality on the cell id, the join
    Redshift can hash (it has no spatial index, so a join on ST_Covers alone would be a
    nested loop over every point and every boundary); the stand-in plans it as a HASH_JOIN
    on `cell`, and no join of the plan is a nested loop or a spatial join. The polygons
    join last, each once: their table is the build side of the join on `geoid`, whose
    probe side is the join of the points and the cells (as an inner join the planner
    joined the cells to the polygons first, a copy of a polygon in each of its cells)."""
    layout = MonthLayout.for_month(MONTH)
    target = SqlTarget(gbif_bucket="gbif-open-data-us-east-1", bison_bucket="bison-bucket")
    hits = [
        sql
        for sql in statement_batches("aggregate", layout, target)[3]
        if sql.startswith(f"CREATE TABLE {layout.subset_table}_aiannh_hits")
    ]
    joins = [
        (join.args["on"].left.name, join.args["on"].right.name)
        for join in sqlglot.parse_one(hits[0], read="redshift").find_all(sqlglot.exp.Join)
        if isinstance(join.args.get("on"), sqlglot.exp.EQ)
    ]
    assert ("cell", "cell") in joins, joins
    create = sqlglot.parse_one(st.transpile(hits[0]), read="duckdb")
    con = duckdb.connect()
    load_spatial(con)
    redshift_rules.install(con)
    con.execute(
        f"CREATE TABLE {layout.subset_table}_points AS SELECT range / 1000 AS lon, "
        "1.0 AS lat FROM range(1000)"
    )
    con.execute(
        f"CREATE TABLE {layout.aiannh_table} AS SELECT '0001' AS geoid, 'Area' AS namelsad, "
        "ST_MakeEnvelope(0, 0, 2, 2) AS shape"
    )
    con.execute(
        f"CREATE TABLE {layout.aiannh_table}_cells AS SELECT '0001' AS geoid, "
        "CAST(range AS BIGINT) AS cell, range % 2 = 0 AS inside FROM range(100)"
    )
    query = create.expression.sql("duckdb")
    (tree,) = json.loads(con.execute(f"EXPLAIN (FORMAT json) {query}").fetchall()[0][1])
    con.close()
    operators = {node["name"] for node in _plan_nodes(tree)}
    joins = {
        node["extra_info"].get("Conditions"): node
        for node in _plan_nodes(tree)
        if node["name"].endswith("JOIN")
    }
    assert joins["cell = cell"]["name"] == "HASH_JOIN", tree
    for slow in ("NESTED_LOOP_JOIN", "BLOCKWISE_NL_JOIN", "PIECEWISE_MERGE_JOIN", "SPATIAL_JOIN"):
        assert slow not in operators, tree
    probe, build = joins["geoid = geoid"]["children"]
    assert "cell = cell" in {n["extra_info"].get("Conditions") for n in _plan_nodes(probe)}, tree
    scans = [n["extra_info"].get("Table") for n in _plan_nodes(build) if n["name"] == "SEQ_SCAN"]
    assert scans == [f"memory.main.{layout.aiannh_table}"], tree


def _plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every operator of a DuckDB JSON plan (EXPLAIN (FORMAT json)), depth first."""
    yield node
    for child in node["children"]:
        yield from _plan_nodes(child)


def test_a_boundary_across_the_antimeridian_lists_only_the_cells_of_its_islands() -> None:
    """Aleutians West (AK) has islands on both sides of 180 degrees, so its bounding box is
    359 degrees wide; cells come from each polygon's own box, so such a county lists the
    cells of its islands (2 x 2 squares each here), not of a band around the Earth, and a
    square covered by one island is `inside`."""
    layout = MonthLayout.for_month(MONTH)
    target = SqlTarget(gbif_bucket="gbif-open-data-us-east-1", bison_bucket="bison-bucket")
    load = statement_batches("aggregate", layout, target)[1]
    cells_statement = next(sql for sql in load if "_cells AS" in sql)
    con = duckdb.connect()
    load_spatial(con)
    redshift_rules.install(con)
    islands = "MULTIPOLYGON(((179.5 52, 179.75 52, 179.75 52.25, 179.5 52.25, 179.5 52)),"
    islands += "((-179.75 52, -179.5 52, -179.5 52.25, -179.75 52.25, -179.75 52)))"
    con.execute(
        f"CREATE TABLE {layout.county_table} AS SELECT '02016' AS geoid, "
        f"ST_GeomFromText('{islands}') AS shape"
    )
    con.execute(st.transpile(cells_statement))
    cells = con.execute(
        f"SELECT COUNT(*), COUNT(*) FILTER (WHERE inside) FROM {layout.county_table}_cells"
    ).fetchone()
    con.close()
    # Each island covers 2 x 2 cells of 1/8 degree; its east and north edges lie on the
    # next column's and row's squares, which (closed) it meets: 3 x 3 cells per island.
    # One box around both islands would have listed 2,877 x 3 candidate squares.
    assert cells == (2 * 9, 2 * 4), cells


# --- a sample month on the real counties ----------------------------------------------------


def _annotated_rows(sample: SampleManifest) -> list[dict[str, str]]:
    """The sample's list as annotate_riis writes it, each name judged from the sample's
    species-match answers."""
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    parsed = parse_riis(decode(sample.riis_csv.read_bytes()))
    matches = {r.query: interpret_match(table[r.query.name], r.query) for r in parsed.records}
    return list(csv.DictReader(io.StringIO(annotated_csv(parsed.records, matches))))


def test_a_sample_month_gets_the_sample_facts(runtime: LocalRuntime, tmp_path: Path) -> None:
    """Every kept record in the county the sample placed it in (per-county counts equal),
    its RIIS region and its tier as the sample's own oracle (bisonflow.sample.listings)
    says, over 3,230 real counties whose 1:10m edges overlap in slivers."""
    sample = generate_sample(tmp_path, records=6_000, seed=5)
    records = pq.read_table(sample.snapshot_dir).to_pylist()
    aggregated = aggregate_records(
        runtime, SAMPLE_MONTH, WORKGROUP, records, _annotated_rows(sample)
    )
    expected = sample.expected
    by_county: dict[str, int] = {}
    for mark in aggregated.marks.values():
        by_county[mark["geoid"]] = by_county.get(mark["geoid"], 0) + 1
    assert by_county == expected["valid_by_county"]
    assert aggregated.rows == expected["us_valid_records"]
    counts = aggregated.summary
    assert counts["occurrences_by_assessment"] == {
        a: expected["valid_by_assessment"][a]
        for a in ASSESSMENTS
        if expected["valid_by_assessment"][a]
    }
    assert counts["occurrences_by_region"] == {
        r: expected["valid_by_region"][r] for r in RIIS_REGIONS if expected["valid_by_region"][r]
    }
    assert counts["sites"]["county"] == len(expected["valid_by_county"])
    assert counts["sites"]["state"] == len(expected["valid_by_state"])
    assert counts["sites"]["aiannh"] == len(expected["valid_by_aiannh"])
