"""Where sample records lie: points well inside the real counties and AIANNH areas.

The counties are the real census ones (`counties.py`); the American Indian / Alaska Native /
Native Hawaiian areas are the real 2021 census layer shipped with the package. Records are
never placed by testing each against the polygons: per county a pool of points is drawn
once (`SampleGeography.county_pool`), each inside its county and no other (the 1:10m
simplification left slivers where neighbours overlap) and POINT_MARGIN away from every
county and AIANNH edge, so the county and AIANNH area the workflow
finds for a record are exactly the ones the sample says, whatever a boundary rule does; the
AIANNH area of a point is found once per pool point, not per record. A quarter of a million
records, or the benchmark's ten million, then cost one `take`. Points are tested with
`planar` (numpy), not DuckDB, which the tests use as the independent check.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bisonflow.graphics.shapefile import read_polygons
from bisonflow.sample import planar
from bisonflow.sample.counties import Counties, load_counties, write_county_shapefile

#: The real 2021 census cartographic boundary layer of American Indian / Alaska Native /
#: Native Hawaiian areas (704 polygons, EPSG:4269), shipped with the package.
AIANNH_SOURCE = Path(__file__).parent / "data" / "cb_2021_us_aiannh_500k.shp"
#: Pool points keep this far (degrees, about 10 m; 4 m east-west in northern Alaska) from
#: every county and AIANNH edge, so rounding to 5 decimals (about 1 m), as many GBIF
#: coordinates are, cannot move them across one.
POINT_MARGIN = 1e-4
#: Points per county pool, and candidates drawn per point expected to land inside.
COUNTY_POINTS = 32
_OVERDRAW = 1.6
#: The pools are part of the geography, like the polygons: drawn once per process with a
#: seed of their own, the same for every sample seed (records still pick among them by the
#: sample's seed), so a test session that makes many samples draws them once.
POOL_SEED = 2017
#: Candidate points drawn per AIANNH area, and at most how many of those are kept.
_AIANNH_CANDIDATES = 64
_AIANNH_POINTS = 16


@dataclass(frozen=True)
class PointPool:
    """Points grouped by county: those of county c are [offsets[c], offsets[c + 1]).

    `area` is the AIANNH area (index into SampleGeography.aiannh_geoid) holding the point,
    -1 for none (where areas overlap, the lowest GEOID, as the workflow decides ties).
    """

    county: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    area: np.ndarray
    offsets: np.ndarray

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


class SampleGeography:
    """The vendored counties and the AIANNH layer, read once."""

    def __init__(self) -> None:
        self.counties: Counties = load_counties()
        self.county_layer = self.counties.layer
        aiannh = read_polygons(
            AIANNH_SOURCE.read_bytes(),
            AIANNH_SOURCE.with_suffix(".dbf").read_bytes(),
            ("GEOID",),
            AIANNH_SOURCE.name,
        )
        order = np.argsort(aiannh.attributes["GEOID"], kind="stable")  # lowest GEOID first
        self.aiannh_geoid: list[str] = [aiannh.attributes["GEOID"][i] for i in order]
        self.aiannh_layer = planar.layer([aiannh.rings[i] for i in order])

    def write_county_shapefile(self, shp: Path, stamp: tuple[int, int, int]) -> None:
        write_county_shapefile(self.counties, shp, stamp)

    def county_pool(self, rng: np.random.Generator, per_county: int = COUNTY_POINTS) -> PointPool:
        """Up to `per_county` points in every county: candidates are drawn in the box of
        each ring (so the Aleutians either side of the antimeridian, and islands, get
        theirs), as many as the ring's share of the county's area asks for."""
        layer = self.county_layer
        box = layer.ring_boxes()
        ring_area = np.abs(_signed(layer))
        county = layer.ring_polygon
        box_area = np.maximum((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]), 1e-12)
        total = np.bincount(county, weights=ring_area, minlength=len(self.counties))
        share = ring_area / total[county]
        draws = np.ceil(per_county * _OVERDRAW * share * box_area / np.maximum(ring_area, 1e-12))
        draws = np.clip(draws, 2, 50 * per_county).astype(np.int64)
        ring = np.repeat(np.arange(county.size), draws)
        lon = np.round(rng.uniform(box[ring, 0], box[ring, 2]), 5)
        lat = np.round(rng.uniform(box[ring, 1], box[ring, 3]), 5)
        ok = planar.well_inside(self.county_layer, county[ring], lon, lat, POINT_MARGIN)
        # Simplified to 1:10m, neighbouring counties overlap in slivers where simplified
        # edges cross: a point must be in its county alone, and far from every edge.
        _, holders, near = planar.locate(self.county_layer, lon[ok], lat[ok], POINT_MARGIN)
        ok[ok] = (holders == 1) & ~near
        keep = _first_per_group(county[ring], ok, per_county)
        # Points near an AIANNH edge are dropped: a county keeps a few fewer than asked.
        area, _, near = planar.locate(self.aiannh_layer, lon[keep], lat[keep], POINT_MARGIN)
        area_of = np.full(lon.size, -1, dtype=np.int64)
        area_of[keep] = area
        keep = keep[~near]
        return _pool(county[ring][keep], lon[keep], lat[keep], area_of[keep], len(self.counties))

    def aiannh_pool(self, rng: np.random.Generator) -> PointPool:
        """Up to _AIANNH_POINTS points in each AIANNH area, each well inside the area (the
        lowest-GEOID area holding it) and well inside one county alone. A record moved into
        an area takes one of its county's points, so a large reservation spanning many
        counties gets records in each."""
        n = len(self.aiannh_geoid)
        box = self.aiannh_layer.box
        area = np.repeat(np.arange(n), _AIANNH_CANDIDATES)
        lon = np.round(rng.uniform(box[area, 0], box[area, 2]), 5)
        lat = np.round(rng.uniform(box[area, 1], box[area, 3]), 5)
        found, _, near = planar.locate(self.aiannh_layer, lon, lat, POINT_MARGIN)
        ok = (found == area) & ~near
        county, holders, near = planar.locate(self.county_layer, lon[ok], lat[ok], POINT_MARGIN)
        county_of = np.full(lon.size, -1, dtype=np.int64)
        county_of[ok] = np.where(near | (holders != 1), -1, county)
        keep = _first_per_group(area, county_of >= 0, _AIANNH_POINTS)
        area, county, lon, lat = area[keep], county_of[keep], lon[keep], lat[keep]
        return _pool(county, lon, lat, area, len(self.counties))


def _signed(layer: planar.Layer) -> np.ndarray:
    """Each ring's area with the sign of a shapefile ring: exterior rings (clockwise) add,
    holes subtract; in square degrees."""
    cross = layer.x1 * layer.y0 - layer.x0 * layer.y1
    return 0.5 * np.add.reduceat(cross, layer.ring_starts[:-1])


def _pool(
    county: np.ndarray, lon: np.ndarray, lat: np.ndarray, area: np.ndarray, counties: int
) -> PointPool:
    """Points sorted by county (then position), with each county's offsets."""
    order = np.lexsort((lat, lon, county))
    counts = np.bincount(county, minlength=counties)
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return PointPool(county[order], lon[order], lat[order], area[order], offsets)


def _first_per_group(group: np.ndarray, ok: np.ndarray, limit: int) -> np.ndarray:
    """Indices of the first `limit` entries with ok = True of each group, in drawn order."""
    chosen = np.flatnonzero(ok)
    order = np.argsort(group[chosen], kind="stable")
    grouped = group[chosen][order]
    rank = np.empty(chosen.size, dtype=np.int64)
    rank[order] = np.arange(chosen.size) - np.searchsorted(grouped, grouped)
    return chosen[rank < limit]


@dataclass(frozen=True)
class Pools:
    geography: SampleGeography
    county: PointPool
    aiannh: PointPool


@functools.cache
def pools() -> Pools:
    """The vendored geography and its point pools (POOL_SEED)."""
    geography = SampleGeography()
    county_rng, aiannh_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(POOL_SEED).spawn(2)
    )
    return Pools(geography, geography.county_pool(county_rng), geography.aiannh_pool(aiannh_rng))
