"""The sample's geography and biota: the real counties of every state, DC and the territories,
each record in exactly one county by an independent point-in-polygon test (DuckDB spatial),
the county facts and AIANNH areas, species ranges contiguous on the map, Alaska's and
Hawaii's own species, long-tailed counts, the county names us-atlas lacks, the dBASE writer."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import duckdb
import numpy as np
import pytest
import test_sample

from bisonflow.dimensions import PRESUMED_NATIVE
from bisonflow.duckdb_ext import load_spatial
from bisonflow.graphics.shapefile import dbf_bytes, read_polygons
from bisonflow.sample import SampleManifest
from bisonflow.sample.counties import AK, HI, L48, NO_REGION, Counties
from bisonflow.sample.county_names import description, lsad_code, read_names
from bisonflow.sample.geography import POINT_MARGIN, pools
from bisonflow.sample.ranges import build_ranges, county_centres
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES

#: The sample and its tables, as tests/test_sample.py makes them (one sample per module).
sample = test_sample.sample
con = test_sample.con
DEGREES = test_sample.DEGREES
TERRITORIES = test_sample.TERRITORIES


@pytest.fixture(scope="module")
def placed(sample: SampleManifest) -> duckdb.DuckDBPyConnection:
    """Kept records with their county's GEOID and RIIS region, found by DuckDB spatial."""
    con = duckdb.connect()
    load_spatial(con)
    parts = (sample.snapshot_dir / "*").as_posix()
    con.execute(
        f"""
        CREATE TABLE placed AS
        SELECT v.specieskey, c.GEOID AS geoid,
               CASE WHEN c.STUSPS IN ('AK', 'HI') THEN c.STUSPS ELSE 'L48' END AS region
        FROM read_parquet('{parts}') AS v
        JOIN ST_Read('{sample.county_shapefile.as_posix()}') AS c
          ON ST_Contains(c.geom, ST_Point(v.decimallongitude, v.decimallatitude))
        WHERE {DEFAULT_SUBSET_RULES.where_sql()}
        """
    )
    yield con
    con.close()


def test_the_real_counties_and_their_regions() -> None:
    counties = pools().geography.counties
    assert len(counties) == 3230 and len(counties.states) == 56
    assert "51610" not in counties.geoid  # Falls Church: no polygon at 1:10m
    region = dict(zip(counties.stusps, counties.region.tolist(), strict=True))
    assert (region["AK"], region["HI"], region["DC"], region["TX"]) == (AK, HI, L48, L48)
    assert {s for s, r in region.items() if r == NO_REGION} == {"PR", "VI", "GU", "AS", "MP"}
    assert sum(r == L48 for r in region.values()) == 49  # 48 states and DC
    assert set(counties.country) == {"US", "PR", "VI", "GU", "AS", "MP"}


def test_every_county_has_a_pool_and_aiannh_areas_have_points() -> None:
    places = pools()
    counts = places.county.counts()
    assert counts.min() >= 16 and counts.size == 3230
    assert np.all(np.diff(places.county.county) >= 0)  # grouped by county
    assert 600 <= np.unique(places.aiannh.area).size <= 704
    assert np.all(places.aiannh.area >= 0)
    share = np.mean(places.county.area >= 0)  # county points that fall in an area anyway
    assert 0.01 < share < 0.1


def _neighbours(counties: Counties) -> list[set[int]]:
    """Counties sharing a vertex: us-atlas' counties come from one topology, so neighbours
    share the end points of the arcs between them."""
    layer = counties.layer
    owner = layer.polygon_of_segment()
    keys = np.round(layer.x0, 6) * 1e7 + np.round(layer.y0, 6)
    order = np.lexsort((owner, keys))
    keys, owner = keys[order], owner[order]
    out: list[set[int]] = [set() for _ in range(len(counties))]
    start = 0
    for end in np.flatnonzero(np.diff(keys) != 0).tolist() + [keys.size - 1]:
        group = set(owner[start : end + 1].tolist())
        for c in group:
            out[c] |= group - {c}
        start = end + 1
    return out


def _largest_component(counties: set[int], neighbours: list[set[int]]) -> int:
    best, seen = 0, set()
    for first in counties:
        if first in seen:
            continue
        component, stack = {first}, [first]
        while stack:
            for v in neighbours[stack.pop()] & counties:
                if v not in component:
                    component.add(v)
                    stack.append(v)
        seen |= component
        best = max(best, len(component))
    return best


def test_species_ranges_are_contiguous_on_the_map() -> None:
    """In the lower 48 a range is one connected set of neighbouring counties (but for the odd
    island or lake shore); random sets of the same sizes are not."""
    places = pools()
    counties = places.geography.counties
    centres = county_centres(counties, places.county.lon, places.county.lat, places.county.county)
    keys = np.arange(10_000, 10_400)
    ranges = build_ranges(np.random.default_rng(3), counties, centres, keys, {})
    neighbours = _neighbours(counties)
    assert sum(map(len, neighbours)) / len(counties) > 5  # about six neighbours each
    rng = np.random.default_rng(4)
    lower48 = np.flatnonzero(counties.region == L48)
    ranged, scattered = [], []
    for s in range(keys.size):
        chosen = ranges.county[ranges.offsets[s] : ranges.offsets[s + 1]]
        in_l48 = {int(c) for c in chosen if counties.region[c] == L48}
        if len(in_l48) < 3:
            continue
        ranged.append(_largest_component(in_l48, neighbours) / len(in_l48))
        random = {int(c) for c in rng.choice(lower48, size=len(in_l48), replace=False)}
        scattered.append(_largest_component(random, neighbours) / len(random))
    assert len(ranged) > 100
    assert np.mean(np.array(ranged) >= 0.95) >= 0.9, np.percentile(ranged, [5, 50])
    assert np.mean(np.array(scattered) >= 0.95) < 0.5


def test_alaska_and_hawaii_have_species_of_their_own(
    sample: SampleManifest, placed: duckdb.DuckDBPyConnection
) -> None:
    """Species no US-RIIS listing marks (the natives) in Hawaii are nowhere else; most of
    Alaska's are Alaska's alone (a few boreal ones reach the lower 48). Listed, introduced
    species are what the regions share."""
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    listed = {
        str(table[name]["speciesKey"])
        for name, key in sample.expected["riis_resolved"].items()
        if key is not None and "speciesKey" in table[name]
    }
    species = {
        region: {k for (k,) in placed.execute(
            "SELECT DISTINCT specieskey FROM placed WHERE region = ?", [region]
        ).fetchall()}
        for region in ("AK", "HI", "L48")
    }  # fmt: skip
    alaska, hawaii = species["AK"] - listed, species["HI"] - listed
    assert len(alaska) >= 30 and len(hawaii) >= 30
    assert not hawaii & species["L48"] and not hawaii & species["AK"]
    assert len(alaska & species["L48"]) / len(alaska) < 0.5
    assert species["AK"] & species["L48"] & listed  # introduced species are shared


def test_counts_per_county_and_species_are_long_tailed(
    placed: duckdb.DuckDBPyConnection,
) -> None:
    for key in ("geoid", "specieskey"):
        counts = np.sort(
            [n for (n,) in placed.execute(f"SELECT count(*) FROM placed GROUP BY {key}").fetchall()]
        )[::-1]
        top = counts[: counts.size // 10].sum() / counts.sum()
        assert top > 0.4, (key, top)  # the top tenth holds over 40% of the records
        assert np.median(counts) < counts.mean() / 2, key


def test_county_names_come_with_their_census_description() -> None:
    names = read_names()
    assert len(names) == 3230
    assert names["51760"] == ("Richmond city", "25")
    assert names["51159"] == ("Richmond County", "06")
    assert names["02110"] == ("Juneau City and Borough", "03")
    assert names["02290"] == ("Yukon-Koyukuk Census Area", "05")
    assert names["02020"] == ("Anchorage Municipality", "12")
    assert names["22059"] == ("LaSalle Parish", "15")
    assert names["32510"] == ("Carson City", "00")
    # addfips' aliases lose to the name that is the census NAME plus a description.
    assert description("Kings", ["Kings County", "Brooklyn Borough"]) == "County"
    assert description("Kusilvak", ["Kusilvak Census Area", "Wade Hampton Census Area"]) == (
        "Census Area"
    )
    assert description("Rincón", ["Rincon Municipio"]) == "Municipio"
    assert (lsad_code("City and Borough"), lsad_code("Borough"), lsad_code("")) == (
        "03",
        "04",
        "00",
    )
    with pytest.raises(ValueError, match="no name for 'Nowhere'"):
        description("Nowhere", ["Somewhere County"])


def test_dbf_writer_round_trips_through_the_reader_and_refuses_overflow(tmp_path: Path) -> None:
    fields = (("GEOID", "C", 5), ("NAME", "C", 20), ("ALAND", "N", 14))
    columns = {"GEOID": ["72117", "01001"], "NAME": ["Rincón", "Autauga"], "ALAND": [12, 3]}
    dbf = dbf_bytes(fields, columns, (2026, 11, 1))
    assert dbf[1:4] == bytes((126, 11, 1)) and dbf[-1:] == b"\x1a"
    read = read_polygons(_two_squares(), dbf, ("GEOID", "NAME", "ALAND"), "t")
    assert read.attributes == {
        "GEOID": ["72117", "01001"],
        "NAME": ["Rincón", "Autauga"],
        "ALAND": ["12", "3"],
    }
    path = tmp_path / "t.dbf"
    path.write_bytes(dbf)
    path.with_suffix(".cpg").write_text("UTF-8")
    con = duckdb.connect()
    load_spatial(con)  # GDAL, an independent reader
    rows = con.execute(f"SELECT GEOID, NAME, ALAND FROM ST_Read('{path}')").fetchall()
    assert rows == [("72117", "Rincón", 12), ("01001", "Autauga", 3)]
    with pytest.raises(ValueError, match="NAME value 'x{21}' is wider than 20 bytes"):
        dbf_bytes(fields, {**columns, "NAME": ["x" * 21, "y"]}, (2026, 11, 1))


def _two_squares() -> bytes:
    """A .shp of two unit squares, written by hand from the ESRI description."""
    ring = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 0.0)]
    content = struct.pack("<i4d2ii", 5, 0, 0, 1, 1, 1, len(ring), 0) + b"".join(
        struct.pack("<2d", *p) for p in ring
    )
    records = b"".join(struct.pack(">2i", i + 1, len(content) // 2) + content for i in range(2))
    header = struct.pack(">7i", 9994, 0, 0, 0, 0, 0, (100 + len(records)) // 2)
    header += struct.pack("<2i4d4d", 1000, 5, 0, 0, 1, 1, 0, 0, 0, 0)
    return header + records


def test_every_state_dc_and_the_territories_have_real_counties_and_records(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    """All 56 states and territories of the census layer; the 50 states and DC have kept
    records; Puerto Rico and the island territories have records under their own GBIF
    country code, which the subset drops."""
    assert len(sample.expected["states"]) == 56 and sample.expected["counties"] == 3230
    kept = set(sample.expected["valid_by_state"])
    assert kept == set(sample.expected["states"]) - set(TERRITORIES)
    by_country = dict(
        con.execute(
            """
            SELECT o.countrycode, count(*) FROM occ o JOIN county c
              ON ST_Contains(c.geom, ST_Point(o.decimallongitude, o.decimallatitude))
            WHERE c.STUSPS IN ('PR', 'VI', 'GU', 'AS', 'MP')
            GROUP BY 1
            """
        ).fetchall()
    )
    assert set(by_country) == set(TERRITORIES), by_country
    for code, n in by_country.items():
        assert n == sample.expected["non_us_by_country"][code] > 0
    (mismatched,) = con.execute(
        """
        SELECT count(*) FROM occ o JOIN county c
          ON ST_Contains(c.geom, ST_Point(o.decimallongitude, o.decimallatitude))
        WHERE o.countrycode <> CASE WHEN c.STUSPS IN ('PR', 'VI', 'GU', 'AS', 'MP')
                                    THEN c.STUSPS ELSE 'US' END
        """
    ).fetchone()
    assert mismatched == 0
    non_us = sum(sample.expected["non_us_by_country"].values())
    assert non_us == sample.expected["dropped"]["non_us_country"]


def test_every_point_is_in_exactly_one_county_of_its_state(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    """DuckDB spatial (GEOS), independent of the sample's own numpy test, finds each record
    in one county, of the record's state, POINT_MARGIN from the county's edges."""
    rows = con.execute(
        """
        SELECT o.gbifid, count(c.GEOID) AS n, bool_and(c.STATE_NAME = o.stateprovince),
               min(ST_Distance(ST_Boundary(c.geom), ST_Point(o.decimallongitude,
                                                             o.decimallatitude)))
        FROM occ o LEFT JOIN county c
          ON ST_Intersects(c.geom, ST_Point(o.decimallongitude, o.decimallatitude))
        WHERE o.decimallatitude IS NOT NULL AND o.countrycode NOT IN ('CA', 'MX')
        GROUP BY o.gbifid
        """
    ).fetchall()
    (placed,) = con.execute(
        "SELECT count(*) FROM occ WHERE decimallatitude IS NOT NULL "
        "AND countrycode NOT IN ('CA', 'MX')"
    ).fetchone()
    assert len(rows) == placed >= sample.expected["us_valid_records"]
    assert all(n == 1 and same for _, n, same, _ in rows)
    assert min(d for *_, d in rows) > POINT_MARGIN


def test_records_abroad_lie_in_no_county(con: duckdb.DuckDBPyConnection) -> None:
    (inside, abroad) = con.execute(
        """
        SELECT count(c.GEOID), count(*) FROM occ o LEFT JOIN county c
          ON ST_Intersects(c.geom, ST_Point(o.decimallongitude, o.decimallatitude))
        WHERE o.countrycode IN ('CA', 'MX')
        """
    ).fetchone()
    assert inside == 0 and abroad > 0


def test_shapefile_has_census_county_fields(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    columns = [name for name, *_ in con.execute("DESCRIBE county").fetchall()]
    assert columns == [
        "OGC_FID",
        "STATEFP",
        "COUNTYFP",
        "COUNTYNS",
        "AFFGEOID",
        "GEOID",
        "NAME",
        "NAMELSAD",
        "STUSPS",
        "STATE_NAME",
        "LSAD",
        "ALAND",
        "AWATER",
        "geom",
    ]
    rows = con.execute(
        "SELECT STATEFP, COUNTYFP, GEOID, AFFGEOID, STUSPS, ALAND, AWATER FROM county"
    ).fetchall()
    assert len(rows) == sample.expected["counties"]
    assert sorted({r[4] for r in rows}) == sample.expected["states"]
    assert {"AK", "HI"} <= {r[4] for r in rows}
    for statefp, countyfp, geoid, affgeoid, _, aland, awater in rows:
        assert geoid == statefp + countyfp and affgeoid == "0500000US" + geoid
        assert aland > 0 and awater >= 0
    assert ("02", "AK") in {(r[0], r[4]) for r in rows}
    named = dict(
        con.execute("SELECT GEOID, (NAME, NAMELSAD, LSAD, STATE_NAME) FROM county").fetchall()
    )
    assert named["24510"] == ("Baltimore", "Baltimore city", "25", "Maryland")
    assert named["02013"] == ("Aleutians East", "Aleutians East Borough", "04", "Alaska")
    assert named["72113"] == ("Ponce", "Ponce Municipio", "13", "Puerto Rico")
    assert named["22071"] == ("Orleans", "Orleans Parish", "15", "Louisiana")
    assert named["72117"][:2] == ("Rincón", "Rincón Municipio")  # UTF-8, as the .cpg says
    assert named["11001"] == ("District of Columbia", "District of Columbia", "00",
                              "District of Columbia")  # fmt: skip
    assert all(n[1].startswith(n[0]) for n in named.values())
    (harris,) = con.execute("SELECT ALAND FROM county WHERE GEOID = '48201'").fetchone()
    assert 4.55e9 < harris < 4.65e9  # census land + water: 4.60e9 m2
    assert "North_American_1983" in sample.county_shapefile.with_suffix(".prj").read_text()
    (crs,) = con.execute("SELECT DISTINCT ST_CRS(geom) FROM county").fetchone()
    assert "4269" in str(crs)


def test_expected_aiannh_counts_match_a_join_with_the_real_layer(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    """Records per AIANNH area, and every sample state has records in some area."""
    rows = con.execute(
        """
        WITH placed AS (
            SELECT v.gbifid, MIN(a.GEOID) AS geoid
            FROM valid v JOIN aiannh a
              ON ST_Covers(a.geom, ST_Point(v.decimallongitude, v.decimallatitude))
            GROUP BY v.gbifid
        )
        SELECT p.geoid, c.STUSPS, count(*)
        FROM placed p JOIN valid v USING (gbifid) JOIN county c
          ON ST_Contains(c.geom, ST_Point(v.decimallongitude, v.decimallatitude))
        GROUP BY ALL
        """
    ).fetchall()
    by_area: dict[str, int] = {}
    for geoid, _, n in rows:
        by_area[geoid] = by_area.get(geoid, 0) + n
    assert by_area == sample.expected["valid_by_aiannh"]
    assert sum(by_area.values()) == sample.expected["valid_in_aiannh"]
    states = {state for _, state, _ in rows}
    assert {"AK", "HI", "AZ", "NM", "OK", "WA"} <= states and len(states) >= 20, states
    share = sample.expected["valid_in_aiannh"] / sample.expected["us_valid_records"]
    assert 0.05 <= share <= 0.15, share
    assert 300 <= sample.expected["aiannh_areas_with_points"] <= 704


def test_aiannh_layer_is_the_real_census_file(con: duckdb.DuckDBPyConnection) -> None:
    fields = [r[0] for r in con.execute("DESCRIBE aiannh").fetchall()]
    assert fields[1:] == [
        "AIANNHCE", "AIANNHNS", "AFFGEOID", "GEOID", "NAME", "NAMELSAD", "LSAD", "ALAND",
        "AWATER", "geom",
    ]  # fmt: skip
    (n, distinct, four) = con.execute(
        "SELECT count(*), count(DISTINCT GEOID), bool_and(length(GEOID) = 4) FROM aiannh"
    ).fetchone()
    assert (n, distinct, four) == (704, 704, True)


def test_expected_counts_per_county_and_assessment_add_up(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    by_county = dict(
        con.execute(
            """
            SELECT c.GEOID, count(*) FROM valid v JOIN county c
              ON ST_Contains(c.geom, ST_Point(v.decimallongitude, v.decimallatitude))
            GROUP BY 1
            """
        ).fetchall()
    )
    assert by_county == sample.expected["valid_by_county"]
    by_assessment = sample.expected["valid_by_assessment"]
    degrees = sample.expected["assessment_counts"]
    assert by_assessment == {  # BISON's tiers, one per degree (riis_schema)
        "established": degrees[DEGREES[0]],
        "invasive": degrees[DEGREES[1]],
        "widespread invasive": degrees[DEGREES[2]],
        PRESUMED_NATIVE: degrees[PRESUMED_NATIVE],
    }
    assert sum(by_assessment.values()) == sample.expected["us_valid_records"]
