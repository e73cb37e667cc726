"""Sample geography: generated rectangular counties, and the real census AIANNH areas.

Each sample state is its real lon/lat bounding box (trimmed so no two boxes overlap) cut
into a jittered grid of counties. Rectangles keep the point-in-county test exact: a point
drawn strictly inside one cell, away from its edges, is inside that county and no other,
which is what the region-assignment step is tested against. The shapefile carries the
fields of the Census cartographic boundary file cb_2021_us_county_500k (which the seed
system loads into Redshift) in EPSG:4269, as that file does.

American Indian / Alaska Native / Native Hawaiian areas are not generated: the real 2021
census layer ships with the package (`AiannhLayer`). The layer has no state field, so an
area belongs to the sample state whose box holds a point on its surface; a state box is a
bounding box, so a few areas of neighbouring states count as the box's state (the Oklahoma
OTSAs north of the Red River inside the Texas box, for instance), as every point drawn in
the box already does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from bisonflow.duckdb_ext import load_spatial


@dataclass(frozen=True)
class State:
    fips: str
    stusps: str
    name: str
    #: (west, south, east, north) in degrees
    bbox: tuple[float, float, float, float]
    #: county grid: columns (west-east) x rows (south-north)
    grid: tuple[int, int]
    #: share of US occurrence records drawn in this state
    weight: float


#: AK, HI and seven lower-48 states that touch none of the others, so boxes never overlap.
#: Alaska's box leaves out the Aleutians west of 168 W so it does not cross the antimeridian.
STATES: tuple[State, ...] = (
    State("02", "AK", "Alaska", (-168.0, 54.6, -141.0, 71.3), (4, 3), 0.04),
    State("06", "CA", "California", (-124.4, 32.6, -114.2, 42.0), (5, 6), 0.22),
    State("08", "CO", "Colorado", (-109.05, 37.0, -102.05, 41.0), (4, 3), 0.07),
    State("12", "FL", "Florida", (-87.6, 24.6, -80.05, 31.0), (4, 4), 0.12),
    State("15", "HI", "Hawaii", (-160.3, 18.9, -154.8, 22.3), (3, 2), 0.06),
    State("27", "MN", "Minnesota", (-97.2, 43.5, -89.5, 49.3), (4, 4), 0.07),
    State("36", "NY", "New York", (-79.75, 40.5, -71.9, 45.0), (4, 3), 0.12),
    State("48", "TX", "Texas", (-106.6, 25.9, -93.55, 36.5), (6, 5), 0.18),
    State("53", "WA", "Washington", (-124.7, 45.6, -117.0, 49.0), (5, 3), 0.12),
)

#: Common real county names, handed out in order within each state (starting at an offset).
COUNTY_NAMES: tuple[str, ...] = (
    "Adams", "Baker", "Benton", "Boone", "Carroll", "Clark", "Clay", "Crawford", "Douglas",
    "Franklin", "Fulton", "Grant", "Greene", "Hamilton", "Hancock", "Jackson", "Jefferson",
    "Johnson", "Lake", "Lawrence", "Lee", "Lincoln", "Logan", "Madison", "Marion", "Marshall",
    "Monroe", "Montgomery", "Morgan", "Perry", "Pike", "Polk", "Putnam", "Scott", "Shelby",
    "Union", "Warren", "Washington", "Wayne", "Wilson",
)  # fmt: skip

#: Census LSAD codes: Alaska has boroughs, the other sample states counties.
_LSAD = {"AK": ("04", "Borough")}
_DEFAULT_LSAD = ("06", "County")

#: Fraction of a county's width/height kept clear of its edges when placing points.
POINT_MARGIN = 0.02
_EARTH_RADIUS_M = 6_371_008.8
_WATER_SHARE = 0.03


@dataclass(frozen=True)
class Counties:
    """All generated counties as parallel arrays (index = county number across states)."""

    state_index: np.ndarray  # int, index into STATES
    xmin: np.ndarray
    ymin: np.ndarray
    xmax: np.ndarray
    ymax: np.ndarray
    countyfp: list[str]
    countyns: list[str]
    name: list[str]
    namelsad: list[str]
    lsad: list[str]
    aland: np.ndarray  # int64, square metres
    awater: np.ndarray

    def __len__(self) -> int:
        return len(self.countyfp)

    @property
    def geoid(self) -> list[str]:
        return [STATES[s].fips + c for s, c in zip(self.state_index, self.countyfp, strict=True)]

    def sample_points(
        self, rng: np.random.Generator, county: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(lon, lat) strictly inside each given county, POINT_MARGIN away from its edges.

        Rounded to 5 decimals (about a metre), as many GBIF coordinates are; the margin is
        thousands of times larger, so rounding cannot push a point onto a border.
        """
        u = rng.uniform(POINT_MARGIN, 1.0 - POINT_MARGIN, size=county.size)
        v = rng.uniform(POINT_MARGIN, 1.0 - POINT_MARGIN, size=county.size)
        x0, x1 = self.xmin[county], self.xmax[county]
        y0, y1 = self.ymin[county], self.ymax[county]
        return np.round(x0 + u * (x1 - x0), 5), np.round(y0 + v * (y1 - y0), 5)


def _cuts(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """n+1 grid lines from lo to hi, interior ones jittered so counties differ in size."""
    even = np.linspace(lo, hi, n + 1)
    step = (hi - lo) / n
    jitter = rng.uniform(-0.25, 0.25, size=n + 1) * step
    jitter[0] = jitter[-1] = 0.0
    return np.round(even + jitter, 4)


def _area_m2(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray) -> np.ndarray:
    """Area of lon/lat rectangles on a sphere: R^2 * dlon * (sin lat1 - sin lat0)."""
    dlon = np.radians(x1 - x0)
    band = np.sin(np.radians(y1)) - np.sin(np.radians(y0))
    return _EARTH_RADIUS_M**2 * dlon * band


def build_counties(rng: np.random.Generator) -> Counties:
    """Cut every state box into its grid; county FIPS codes are odd numbers, as Census's are."""
    cols: dict[str, list] = {k: [] for k in ("s", "x0", "y0", "x1", "y1")}
    countyfp: list[str] = []
    name: list[str] = []
    namelsad: list[str] = []
    lsad: list[str] = []
    for s, state in enumerate(STATES):
        west, south, east, north = state.bbox
        nx, ny = state.grid
        xs, ys = _cuts(rng, west, east, nx), _cuts(rng, south, north, ny)
        code, kind = _LSAD.get(state.stusps, _DEFAULT_LSAD)
        number = 0
        for row in reversed(range(ny)):  # north to south, west to east, like reading a map
            for col in range(nx):
                cols["s"].append(s)
                cols["x0"].append(xs[col])
                cols["x1"].append(xs[col + 1])
                cols["y0"].append(ys[row])
                cols["y1"].append(ys[row + 1])
                county_name = COUNTY_NAMES[(7 * s + number) % len(COUNTY_NAMES)]
                countyfp.append(f"{2 * number + 1:03d}")
                name.append(county_name)
                namelsad.append(f"{county_name} {kind}")
                lsad.append(code)
                number += 1
    n = len(countyfp)
    x0, y0 = np.array(cols["x0"]), np.array(cols["y0"])
    x1, y1 = np.array(cols["x1"]), np.array(cols["y1"])
    area = _area_m2(x0, y0, x1, y1)
    awater = np.round(area * _WATER_SHARE * rng.uniform(0.2, 1.8, size=n)).astype(np.int64)
    aland = np.round(area).astype(np.int64) - awater
    ns = rng.choice(np.arange(100_000, 2_700_000), size=n, replace=False)
    return Counties(
        state_index=np.array(cols["s"], dtype=np.int64),
        xmin=x0,
        ymin=y0,
        xmax=x1,
        ymax=y1,
        countyfp=countyfp,
        countyns=[f"{v:08d}" for v in ns],
        name=name,
        namelsad=namelsad,
        lsad=lsad,
        aland=aland,
        awater=awater,
    )


def county_table(counties: Counties) -> pa.Table:
    """Attribute table in cb_2021_us_county_500k field order, plus the box corners."""
    states = [STATES[s] for s in counties.state_index]
    geoid = counties.geoid
    return pa.table(
        {
            "STATEFP": [s.fips for s in states],
            "COUNTYFP": counties.countyfp,
            "COUNTYNS": counties.countyns,
            "AFFGEOID": [f"0500000US{g}" for g in geoid],
            "GEOID": geoid,
            "NAME": counties.name,
            "NAMELSAD": counties.namelsad,
            "STUSPS": [s.stusps for s in states],
            "STATE_NAME": [s.name for s in states],
            "LSAD": counties.lsad,
            "ALAND": pa.array(counties.aland, pa.int64()),
            "AWATER": pa.array(counties.awater, pa.int64()),
            "xmin": counties.xmin,
            "ymin": counties.ymin,
            "xmax": counties.xmax,
            "ymax": counties.ymax,
        }
    )


SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def write_county_shapefile(counties: Counties, shp: Path, stamp: tuple[int, int, int]) -> None:
    """Write the counties as an ESRI shapefile (EPSG:4269) with DuckDB spatial's GDAL writer.

    `stamp` (year, month, day) replaces the "last update" date GDAL writes into the .dbf
    header, which would otherwise be today's date and make the bytes differ from day to day.
    """
    shp.parent.mkdir(parents=True, exist_ok=True)
    for suffix in SHAPEFILE_PARTS:
        shp.with_suffix(suffix).unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        load_spatial(con)
        con.register("county_attrs", county_table(counties))
        con.execute(
            """
            CREATE TABLE county AS
            SELECT STATEFP, COUNTYFP, COUNTYNS, AFFGEOID, GEOID, NAME, NAMELSAD, STUSPS,
                   STATE_NAME, LSAD, ALAND, AWATER,
                   ST_MakeEnvelope(xmin, ymin, xmax, ymax) AS geom
            FROM county_attrs
            """
        )
        path = shp.as_posix().replace("'", "''")
        con.execute(
            f"COPY county TO '{path}' (FORMAT GDAL, DRIVER 'ESRI Shapefile', "
            "SRS 'EPSG:4269', LAYER_CREATION_OPTIONS 'ENCODING=UTF-8')"
        )
    finally:
        con.close()
    _stamp_dbf(shp.with_suffix(".dbf"), stamp)


def _stamp_dbf(dbf: Path, stamp: tuple[int, int, int]) -> None:
    """dBASE header bytes 1-3 are the last-update date as (year - 1900, month, day)."""
    year, month, day = stamp
    with dbf.open("r+b") as fh:
        fh.seek(1)
        fh.write(bytes((year - 1900, month, day)))


def states_used() -> list[str]:
    return sorted(s.stusps for s in STATES)


def regions_of_states() -> np.ndarray:
    """RIIS region code index per STATES entry: 0 = AK, 1 = HI, 2 = L48."""
    return np.array([{"AK": 0, "HI": 1}.get(s.stusps, 2) for s in STATES], dtype=np.int64)


# --- AIANNH areas -----------------------------------------------------------------------------

#: The real 2021 census cartographic boundary layer of American Indian / Alaska Native /
#: Native Hawaiian areas (704 polygons, EPSG:4269), shipped with the package: unlike the
#: counties it is not generated, so region assignment is exercised on real boundaries.
AIANNH_SOURCE = Path(__file__).parent / "data" / "cb_2021_us_aiannh_500k.shp"
#: Points drawn for an area keep this far (degrees, about 10 m) from its boundary and from
#: every county edge, so rounding to 5 decimals (about 1 m) cannot move them across one.
AIANNH_POINT_MARGIN = 1e-4
#: Candidate points drawn per area, and at most how many of those inside it are kept.
_POOL_CANDIDATES = 64
_POOL_POINTS = 16


@dataclass(frozen=True)
class AiannhPool:
    """Points strictly inside AIANNH areas of the sample states, each inside one county.

    Per point: its area (index into AiannhLayer.geoid), county (index into Counties),
    state (index into STATES), coordinates and a selection weight (square root of the
    area's size, shared among its points), so large reservations get more records than
    rancherias without the largest taking them all.
    """

    area: np.ndarray
    county: np.ndarray
    state: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    weight: np.ndarray


class AiannhLayer:
    """The shipped census AIANNH layer, opened once in an in-memory DuckDB."""

    def __init__(self, shapefile: Path = AIANNH_SOURCE) -> None:
        self.con = duckdb.connect()
        # One thread: the joins here are small, and a second thread only doubled their CPU.
        self.con.execute("SET threads = 1")
        load_spatial(self.con)
        path = shapefile.as_posix().replace("'", "''")
        self.con.execute(
            f"""
            CREATE TABLE aiannh AS
            SELECT row_number() OVER (ORDER BY GEOID) - 1 AS idx, GEOID AS geoid,
                   NAMELSAD AS name, geom, ST_XMin(geom) AS x0, ST_YMin(geom) AS y0,
                   ST_XMax(geom) AS x1, ST_YMax(geom) AS y1, ST_Area(geom) AS area,
                   ST_X(ST_PointOnSurface(geom)) AS px, ST_Y(ST_PointOnSurface(geom)) AS py
            FROM ST_Read('{path}')
            ORDER BY geoid
            """
        )
        rows = self.con.execute(
            "SELECT geoid, name, x0, y0, x1, y1, area, px, py FROM aiannh ORDER BY idx"
        ).fetchall()
        self.geoid: list[str] = [r[0] for r in rows]
        self.name: list[str] = [r[1] for r in rows]
        self._boxes = np.array([r[2:6] for r in rows], dtype=np.float64)
        self._area = np.array([r[6] for r in rows], dtype=np.float64)
        self._inner = np.array([r[7:9] for r in rows], dtype=np.float64)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> AiannhLayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index of the area covering each point (boundary included), -1 for none.

        The point-in-polygon rule of the workflow (ST_Covers, lowest GEOID on a shared
        line), evaluated here on the whole polygons: the workflow cuts them into grid
        pieces first, so agreeing with this is a check of that cutting.
        """
        points = pa.table({"i": np.arange(lon.size, dtype=np.int64), "lon": lon, "lat": lat})
        self.con.register("points", points)
        try:
            hits = self.con.execute(
                """
                SELECT p.i, MIN(a.idx) FROM points AS p
                JOIN aiannh AS a ON ST_Covers(a.geom, ST_Point(p.lon, p.lat))
                GROUP BY p.i
                """
            ).fetchnumpy()
        finally:
            self.con.unregister("points")
        out = np.full(lon.size, -1, dtype=np.int64)
        out[hits["i"]] = hits["min(a.idx)"]
        return out

    def pool(self, rng: np.random.Generator, counties: Counties) -> AiannhPool:
        """Up to _POOL_POINTS points in each area whose inner point lies in a sample state."""
        areas, states = [], []
        for s, state in enumerate(STATES):
            west, south, east, north = state.bbox
            x, y = self._inner[:, 0], self._inner[:, 1]
            inside = np.flatnonzero((x > west) & (x < east) & (y > south) & (y < north))
            areas.extend(inside.tolist())
            states.extend([s] * inside.size)
        area = np.repeat(np.array(areas, dtype=np.int64), _POOL_CANDIDATES)
        state = np.repeat(np.array(states, dtype=np.int64), _POOL_CANDIDATES)
        bbox = np.array([STATES[s].bbox for s in range(len(STATES))])[state]
        x0 = np.maximum(self._boxes[area, 0], bbox[:, 0])
        y0 = np.maximum(self._boxes[area, 1], bbox[:, 1])
        x1 = np.minimum(self._boxes[area, 2], bbox[:, 2])
        y1 = np.minimum(self._boxes[area, 3], bbox[:, 3])
        lon = np.round(rng.uniform(x0, x1), 5)
        lat = np.round(rng.uniform(y0, y1), 5)
        county = _county_of(counties, lon, lat, AIANNH_POINT_MARGIN)
        keep = (county >= 0) & (counties.state_index[np.maximum(county, 0)] == state)
        keep[keep] = self._well_inside(area[keep], lon[keep], lat[keep])
        chosen = np.flatnonzero(keep)
        # At most _POOL_POINTS per area, the first drawn: rank each point within its area.
        order = np.argsort(area[chosen], kind="stable")
        grouped = area[chosen][order]
        rank = np.empty(chosen.size, dtype=np.int64)
        rank[order] = np.arange(chosen.size) - np.searchsorted(grouped, grouped)
        chosen = chosen[rank < _POOL_POINTS]
        per_area = np.bincount(area[chosen], minlength=len(self.geoid))
        weight = np.sqrt(self._area[area[chosen]]) / per_area[area[chosen]]
        return AiannhPool(
            area=area[chosen],
            county=county[chosen],
            state=state[chosen],
            lon=lon[chosen],
            lat=lat[chosen],
            weight=weight,
        )

    def _well_inside(self, area: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Whether each point lies inside its own area, AIANNH_POINT_MARGIN from its edge."""
        points = pa.table(
            {"i": np.arange(lon.size, dtype=np.int64), "area": area, "lon": lon, "lat": lat}
        )
        self.con.register("candidates", points)
        try:
            inside: Any = self.con.execute(
                f"""
                SELECT c.i FROM candidates AS c JOIN aiannh AS a ON a.idx = c.area
                WHERE ST_Contains(a.geom, ST_Point(c.lon, c.lat))
                  AND ST_Distance(ST_Boundary(a.geom), ST_Point(c.lon, c.lat))
                      > {AIANNH_POINT_MARGIN}
                """
            ).fetchnumpy()["i"]
        finally:
            self.con.unregister("candidates")
        out = np.zeros(lon.size, dtype=bool)
        out[inside] = True
        return out


def _county_of(counties: Counties, lon: np.ndarray, lat: np.ndarray, margin: float) -> np.ndarray:
    """Index of the county box holding each point at least `margin` inside, else -1."""
    inside = (
        (lon[:, None] > counties.xmin[None, :] + margin)
        & (lon[:, None] < counties.xmax[None, :] - margin)
        & (lat[:, None] > counties.ymin[None, :] + margin)
        & (lat[:, None] < counties.ymax[None, :] - margin)
    )
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
