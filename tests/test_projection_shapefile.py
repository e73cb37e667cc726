"""The maps' projection against Snyder's worked examples, and the shapefile reader against
the sample's county shapefile and the vendored census AIANNH layer (DuckDB's GDAL reader as
the independent reading)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from bisonflow.duckdb_ext import load_spatial
from bisonflow.graphics.projection import Albers
from bisonflow.graphics.shapefile import read_polygons
from bisonflow.sample.counties import load_counties, write_county_shapefile
from bisonflow.sample.geography import AIANNH_SOURCE

#: Snyder, PP 1395, p. 291-292: Albers with standard parallels 29.5/45.5 N, origin 23 N 96 W,
#: the point 35 N 75 W; sphere of radius 1, and the Clarke 1866 ellipsoid.
SNYDER_SPHERE = Albers(29.5, 45.5, 23.0, -96.0, a=1.0, e2=0.0)
SNYDER_CLARKE = Albers(29.5, 45.5, 23.0, -96.0, a=6_378_206.4, e2=0.00676866)


def test_albers_matches_snyders_sphere_example() -> None:
    x, y = SNYDER_SPHERE.forward(-75.0, 35.0)
    assert x == pytest.approx(0.2952720, abs=1e-7)
    assert y == pytest.approx(0.2416774, abs=1e-7)


def test_albers_matches_snyders_ellipsoid_example() -> None:
    x, y = SNYDER_CLARKE.forward(-75.0, 35.0)
    assert x == pytest.approx(1_885_472.7, abs=0.1)
    assert y == pytest.approx(1_535_925.0, abs=0.1)


def test_albers_known_points() -> None:
    lower48 = Albers(29.5, 45.5, 23.0, -96.0)
    x, y = lower48.forward([-96.0, -90.0, -102.0], [23.0, 40.0, 40.0])
    assert x[0] == pytest.approx(0.0, abs=1e-6) and y[0] == pytest.approx(0.0, abs=1e-6)
    assert x[1] == pytest.approx(-x[2]) and y[1] == pytest.approx(y[2])  # symmetric about lon0
    assert x[1] > 0 and y[1] > 1_800_000  # 17 degrees north of the origin: about 1,900 km
    # The Aleutians east of the antimeridian stay beside Alaska, not across the map.
    alaska = Albers(55.0, 65.0, 50.0, -154.0)
    east, _ = alaska.forward([179.0, -179.0], [52.0, 52.0])
    assert abs(east[0] - east[1]) < 200_000


def test_albers_keeps_areas() -> None:
    """Equal-area: two 1-degree cells at the same latitude, far apart in longitude, and the
    ratio of cells at two latitudes equal to the ratio of their areas on the ellipsoid."""
    proj = Albers(29.5, 45.5, 23.0, -96.0)

    def area(lon: float, lat: float) -> float:
        x, y = proj.forward([lon, lon + 1, lon + 1, lon], [lat, lat, lat + 1, lat + 1])
        return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))

    assert area(-120, 40) == pytest.approx(area(-75, 40), rel=1e-3)
    # A band's area on the ellipsoid is proportional to the difference of q (Snyder 3-12).
    q30, q31, q60, q61 = proj._q(np.sin(np.radians([30.0, 31.0, 60.0, 61.0])))
    assert area(-96, 30) / area(-96, 60) == pytest.approx((q31 - q30) / (q61 - q60), rel=1e-3)


def _duckdb_points(shp: Path, key: str) -> dict[str, int]:
    con = duckdb.connect()
    load_spatial(con)
    rows = con.execute(
        f"SELECT {key}, ST_NPoints(geom) FROM ST_Read('{shp.as_posix()}')"
    ).fetchall()
    con.close()
    return dict(rows)


def test_reader_round_trips_the_sample_counties(tmp_path: Path) -> None:
    counties = load_counties()
    shp = tmp_path / "cb_us_county.shp"
    write_county_shapefile(counties, shp, (2026, 1, 1))
    polygons = read_polygons(
        shp.read_bytes(), shp.with_suffix(".dbf").read_bytes(), ("GEOID", "STUSPS"), "county"
    )
    assert polygons.attributes["GEOID"] == counties.geoid
    assert polygons.attributes["STUSPS"] == counties.stusps
    assert max(len(r) for r in polygons.rings) > 1  # islands: Aleutians, Hawaii, Keys
    points = _duckdb_points(shp, "GEOID")
    assert {
        g: sum(map(len, r)) for g, r in zip(counties.geoid, polygons.rings, strict=True)
    } == points
    aleutians = polygons.rings[counties.geoid.index("02016")]
    assert (
        min(r[:, 0].min() for r in aleutians) < -170 and max(r[:, 0].max() for r in aleutians) > 170
    )


def test_reader_reads_multi_ring_census_polygons() -> None:
    polygons = read_polygons(
        AIANNH_SOURCE.read_bytes(),
        AIANNH_SOURCE.with_suffix(".dbf").read_bytes(),
        ("GEOID", "NAMELSAD"),
        "aiannh",
    )
    assert max(len(r) for r in polygons.rings) > 1  # multipart areas and holes
    points = _duckdb_points(AIANNH_SOURCE, "GEOID")
    assert (
        dict(
            zip(
                polygons.attributes["GEOID"],
                (sum(map(len, r)) for r in polygons.rings),
                strict=True,
            )
        )
        == points
    )


def test_reader_names_a_file_that_is_not_a_shapefile() -> None:
    with pytest.raises(ValueError, match="county: not an ESRI shapefile"):
        read_polygons(b"x" * 200, b"", ("GEOID",), "county")
