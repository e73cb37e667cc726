"""The sample's counties: the real census counties of every state, DC and the territories.

Source: the Census Bureau's cartographic boundary files of 2017 (counties and states,
generalised to 1:10,000,000), as npm's `us-atlas` 3.0.1 redistributes them
(`counties-10m.json`, TopoJSON, quantized), converted to shapefiles with the fields GEOID,
STATEFP, COUNTYFP, NAME, STUSPS in EPSG:4269 and vendored in `data/us_county_2017_10m.*`
and `data/us_state_2017_10m.*`: 3,230 counties in 56 states and territories (Falls Church,
VA, 51610, is absent: at 1:10m it has no polygon of its own). Census boundary files are
works of the US government, in the public domain. Simplified to 1:10m, neighbouring
counties do not tile the plane exactly: where simplified edges cross near a shared corner
they overlap in thin slivers (San Joaquin, Alameda and Santa Clara, CA, near -121.471,
37.482), so the sample places records only where one county alone holds the point.

The sample copies the geometry (.shp, .shx, .prj) byte for byte and writes its own .dbf in
the field layout the workflow loads, the census
cb_2021_us_county_500k layout (bisonflow.sql.boundaries.COUNTY_SHAPEFILE_FIELDS), filling the
fields us-atlas lacks from a source or a stated rule:

- AFFGEOID: "0500000US" + GEOID, the census convention (summary level 050, county).
- STATE_NAME: the state layer's NAME for the county's STATEFP.
- NAMELSAD, LSAD: `county_names` (census names with their descriptions, via addfips).
- ALAND: the polygon's area on the GRS 1980 ellipsoid in square metres, from its rings in an
  Albers equal-area conic (bisonflow.graphics.projection): the census's land area is not in any
  source shipped here, and the cartographic polygons are clipped to the shoreline, so their
  area is close to it (Harris County, TX: 4,605 km² here; census land + water 4,604 km²).
- AWATER: 0, for the same reason; the workflow reads neither.
- COUNTYNS (the GNIS/ANSI code): empty, no source shipped here; the workflow does not read it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bisonflow.graphics.projection import Albers
from bisonflow.graphics.shapefile import DbfField, Polygons, dbf_bytes, read_polygons
from bisonflow.sample import planar
from bisonflow.sample.county_names import read_names

DATA = Path(__file__).parent / "data"
COUNTY_SOURCE: Path = DATA / "us_county_2017_10m.shp"
STATE_SOURCE = DATA / "us_state_2017_10m.shp"

#: GBIF gives Puerto Rico and the island territories their own country code (ISO 3166-1),
#: so their records are not `countrycode = 'US'`; every other state and DC is US.
TERRITORY_COUNTRY = {"PR": "PR", "VI": "VI", "GU": "GU", "AS": "AS", "MP": "MP"}
#: RIIS regions by index (riis_schema.RIIS_REGIONS order) of a county's state; the
#: territories have none (-1): US-RIIS lists AK, HI and the lower 48 (with DC) only.
AK, HI, L48, NO_REGION = 0, 1, 2, -1

#: The census cb_2021_us_county_500k .dbf layout (bisonflow.sql.boundaries reads it by position).
COUNTY_DBF_FIELDS: tuple[DbfField, ...] = (
    ("STATEFP", "C", 2),
    ("COUNTYFP", "C", 3),
    ("COUNTYNS", "C", 8),
    ("AFFGEOID", "C", 14),
    ("GEOID", "C", 5),
    ("NAME", "C", 100),
    ("NAMELSAD", "C", 100),
    ("STUSPS", "C", 2),
    ("STATE_NAME", "C", 100),
    ("LSAD", "C", 2),
    ("ALAND", "N", 14),
    ("AWATER", "N", 14),
)
_COPIED = (".shp", ".shx", ".prj")
#: Equal-area everywhere (not only near its standard parallels), so one conic serves all.
_AREA_PROJECTION = Albers(29.5, 45.5, 23.0, -96.0)


@dataclass(frozen=True)
class Counties:
    """The real counties as parallel arrays, in the vendored file's order."""

    geoid: list[str]
    statefp: list[str]
    countyfp: list[str]
    name: list[str]
    namelsad: list[str]
    lsad: list[str]
    stusps: list[str]
    state_name: list[str]
    aland: np.ndarray  # int64, square metres
    region: np.ndarray  # int64: AK, HI, L48 or NO_REGION
    country: list[str]  # GBIF countrycode of records in the county
    polygons: Polygons  # the vendored rings
    layer: planar.Layer  # the same rings as segments

    def __len__(self) -> int:
        return len(self.geoid)

    @property
    def states(self) -> list[str]:
        """State and territory codes, sorted."""
        return sorted(set(self.stusps))

    def columns(self) -> dict[str, list]:
        """The .dbf columns (COUNTY_DBF_FIELDS)."""
        n = len(self)
        return {
            "STATEFP": self.statefp,
            "COUNTYFP": self.countyfp,
            "COUNTYNS": [""] * n,
            "AFFGEOID": [f"0500000US{g}" for g in self.geoid],
            "GEOID": self.geoid,
            "NAME": self.name,
            "NAMELSAD": self.namelsad,
            "STUSPS": self.stusps,
            "STATE_NAME": self.state_name,
            "LSAD": self.lsad,
            "ALAND": self.aland.tolist(),
            "AWATER": [0] * n,
        }


def _read(shp: Path, fields: tuple[str, ...]) -> Polygons:
    encoding = shp.with_suffix(".cpg").read_text("ascii").strip()
    return read_polygons(
        shp.read_bytes(), shp.with_suffix(".dbf").read_bytes(), fields, shp.name, encoding
    )


def load_counties() -> Counties:
    """The vendored counties with the fields us-atlas lacks filled in (module docstring)."""
    layer = _read(COUNTY_SOURCE, ("GEOID", "STATEFP", "COUNTYFP", "NAME", "STUSPS"))
    states = _read(STATE_SOURCE, ("STATEFP", "NAME")).attributes
    state_name = dict(zip(states["STATEFP"], states["NAME"], strict=True))
    names = read_names()
    a = layer.attributes
    segments = planar.layer(layer.rings)
    return Counties(
        geoid=a["GEOID"],
        statefp=a["STATEFP"],
        countyfp=a["COUNTYFP"],
        name=a["NAME"],
        namelsad=[names[g][0] for g in a["GEOID"]],
        lsad=[names[g][1] for g in a["GEOID"]],
        stusps=a["STUSPS"],
        state_name=[state_name[s] for s in a["STATEFP"]],
        aland=np.round(_area_m2(segments)).astype(np.int64),
        region=np.array([_region(s) for s in a["STUSPS"]], dtype=np.int64),
        country=[TERRITORY_COUNTRY.get(s, "US") for s in a["STUSPS"]],
        polygons=layer,
        layer=segments,
    )


def _region(stusps: str) -> int:
    if stusps in TERRITORY_COUNTRY:
        return NO_REGION
    return {"AK": AK, "HI": HI}.get(stusps, L48)


def _area_m2(layer: planar.Layer) -> np.ndarray:
    """Each polygon's area: shoelace over its projected segments, exterior rings (clockwise
    in a shapefile) adding, holes (counter-clockwise) taking away."""
    x0, y0 = _AREA_PROJECTION.forward(layer.x0, layer.y0)
    x1, y1 = _AREA_PROJECTION.forward(layer.x1, layer.y1)
    twice = np.bincount(layer.polygon_of_segment(), weights=x1 * y0 - x0 * y1, minlength=len(layer))
    return np.abs(0.5 * twice)


def write_county_shapefile(counties: Counties, shp: Path, stamp: tuple[int, int, int]) -> None:
    """The vendored geometry, copied, with a .dbf in the census layout (UTF-8, as the .cpg
    says). `stamp` (year, month, day) is the .dbf's last-update date, so the bytes depend
    only on the arguments."""
    shp.parent.mkdir(parents=True, exist_ok=True)
    for suffix in _COPIED:
        shutil.copyfile(COUNTY_SOURCE.with_suffix(suffix), shp.with_suffix(suffix))
    shp.with_suffix(".dbf").write_bytes(dbf_bytes(COUNTY_DBF_FIELDS, counties.columns(), stamp))
    shp.with_suffix(".cpg").write_text("UTF-8", "ascii")
