"""The month's statistics as maps (PNG bytes): county richness, county share of species in
each US-RIIS tier, and state richness, on the county boundaries the aggregate step used.

BISON's users think in places, so the bars of bisonflow.graphics.figures are drawn again on the
map. Counties are the census cartographic boundary polygons (bisonflow.graphics.shapefile reads
them), drawn with matplotlib's collections on the Agg canvas (no geopandas or shapely: a few
thousand polygons need nothing more). The lower 48 states and DC are in an Albers equal-area
conic with standard parallels 29.5 and 45.5 N (Snyder, PP 1395, p. 98: the USGS's usual
parameters for the conterminous US), so a county's colour covers its real share of the map;
Alaska, Hawaii and Puerto Rico are insets below it, each in its own Albers conic (standard
parallels near its own latitudes, Snyder p. 99 gives 55/65 N for Alaska and 8/18 N for Hawaii),
Alaska shrunk and Puerto Rico enlarged so that each is legible; the insets' scales differ from
the main map's, which each inset's label says. Other territories (Guam, the Virgin Islands, ...)
are not drawn; their counts are in the tables.

A county without records this month is grey ("no records"), not the colour of zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from bisonflow.dimensions import LISTED_ASSESSMENTS
from bisonflow.graphics.figures import _ASSESSMENT_LABELS, _blank_figure, _png, _title
from bisonflow.graphics.projection import Albers
from bisonflow.graphics.shapefile import Polygons

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.path import Path

#: Lower 48 and DC: Snyder's conterminous-US Albers (origin 23 N 96 W).
LOWER48 = Albers(29.5, 45.5, 23.0, -96.0)


@dataclass(frozen=True)
class Inset:
    """A state drawn apart: its own projection, then scaled and moved below the main map."""

    label: str
    projection: Albers
    scale: float
    offset: tuple[float, float]  # metres on the main map, added after scaling
    label_at: tuple[float, float]  # where its label goes, under it


#: Placed (on the census 2017 counties) under the lower 48: Alaska south-west of California,
#: Hawaii south of Arizona and New Mexico, Puerto Rico south-east of Florida, none overlapping.
INSETS: dict[str, Inset] = {
    "AK": Inset(
        "Alaska (scale 0.35)",
        Albers(55.0, 65.0, 50.0, -154.0),
        0.35,
        (-1.65e6, 0.0),
        (-2.2e6, 0.05e6),
    ),
    "HI": Inset(
        "Hawaii", Albers(8.0, 18.0, 13.0, -157.0), 1.0, (-0.75e6, -0.7e6), (-0.9e6, -0.15e6)
    ),
    "PR": Inset(
        "Puerto Rico (scale 2)",
        Albers(17.5, 18.5, 18.0, -66.5),
        2.0,
        (1.75e6, 0.3e6),
        (1.55e6, 0.18e6),
    ),
}
#: Census STUSPS of territories other than Puerto Rico, which the maps leave out.
NOT_DRAWN = frozenset({"AS", "GU", "MP", "VI", "UM"})
NO_RECORDS = "#d9d9d9"
RICHNESS_CMAP = "viridis"
SHARE_CMAP = "YlOrRd"


@dataclass(frozen=True)
class CountyMap:
    """The drawable counties: GEOID, STUSPS and one matplotlib Path (all rings) each."""

    geoids: list[str]
    states: list[str]
    paths: list[Path]


def county_map(polygons: Polygons) -> CountyMap:
    """Project every county with rings (GEOID and STUSPS fields) into the map's layout.

    matplotlib's drawing modules are imported here, not with this module (bisonflow.graphics.figures
    says why): calc_stats reads the counties in a thread beside the month's tables, so the
    import (about 1.7 s) overlaps those reads instead of delaying the first figure."""
    import matplotlib.figure  # noqa: F401 (imported for the maps and figures drawn later)

    geoids, states, paths = [], [], []
    for geoid, state, rings in zip(
        polygons.attributes["GEOID"], polygons.attributes["STUSPS"], polygons.rings, strict=True
    ):
        if not rings or state in NOT_DRAWN:
            continue
        geoids.append(geoid)
        states.append(state)
        paths.append(_path(rings, state))
    return CountyMap(geoids, states, paths)


def place(lon: npt.ArrayLike, lat: npt.ArrayLike, state: str) -> npt.NDArray[np.float64]:
    """(n, 2) map coordinates of points of `state`: its inset's, or the lower 48's."""
    inset = INSETS.get(state)
    if inset is None:
        return np.column_stack(LOWER48.forward(lon, lat))
    x, y = inset.projection.forward(lon, lat)
    return np.column_stack((x * inset.scale + inset.offset[0], y * inset.scale + inset.offset[1]))


def _richness_map(
    counties: CountyMap, sites: list[str], richness: Mapping[str, float], label: str, title: str
) -> bytes:
    """One richness choropleth: each county coloured by the value of its site (`sites` holds,
    per county, the county's own GEOID or its state's code)."""
    fig = _blank_figure()
    ax = fig.add_axes((0.01, 0.02, 0.86, 0.9))
    values = _values(sites, richness)
    _draw(fig, ax, counties, values, _norm(values), RICHNESS_CMAP, label)
    fig.suptitle(title)
    return _png(fig)


def richness_per_county(counties: CountyMap, richness: Mapping[str, float], month: str) -> bytes:
    """Species present (PAM alpha) per county."""
    title = f"Species richness per county, GBIF snapshot {month}"
    return _richness_map(counties, counties.geoids, richness, "species present (alpha)", title)


def richness_per_state(counties: CountyMap, richness: Mapping[str, float], month: str) -> bytes:
    """Species present (PAM alpha) per state, each county in its state's colour."""
    title = f"Species richness per state, GBIF snapshot {month}"
    return _richness_map(counties, counties.states, richness, "species present in the state", title)


def listed_share_per_county(
    counties: CountyMap, shares: Mapping[str, Mapping[str, float]], month: str
) -> bytes:
    """Four panels on one colour scale: the share of a county's species listed in US-RIIS for
    its region in any tier, then in each tier (established, invasive, widespread invasive).
    `shares`: assessment -> GEOID -> share of the county's species. One scale, so a tier's
    panel reads as its part of the first panel."""
    from matplotlib.colors import Normalize

    fig = _blank_figure()
    per_tier = {a: _values(counties.geoids, shares.get(a, {})) for a in LISTED_ASSESSMENTS}
    panels = {"all listed tiers": np.sum(list(per_tier.values()), axis=0)}
    panels |= {_ASSESSMENT_LABELS[a]: v for a, v in per_tier.items()}
    top = np.nanmax(panels["all listed tiers"], initial=0.0)
    norm = Normalize(0.0, top if top > 0 else 1.0)
    boxes = [(0.0, 0.49), (0.43, 0.49), (0.0, 0.02), (0.43, 0.02)]
    axes = [fig.add_axes((x, y, 0.43, 0.42)) for x, y in boxes]
    for ax, (title, values) in zip(axes, panels.items(), strict=True):
        mappable = _draw(fig, ax, counties, values, norm, SHARE_CMAP, None)
        _title(ax, title, fontsize=11)
    bar = fig.colorbar(mappable, cax=fig.add_axes((0.9, 0.1, 0.02, 0.75)))
    bar.set_label("share of the county's species listed in US-RIIS for its region")
    fig.suptitle(f"Species listed in US-RIIS per county, by tier, GBIF snapshot {month}")
    return _png(fig)


def _path(rings: list[npt.NDArray[np.float64]], state: str) -> Path:
    """One path of all of a county's rings; holes stay holes (nonzero winding: the shapefile's
    outer rings are clockwise, its holes counter-clockwise)."""
    from matplotlib.path import Path

    vertices, codes = [], []
    for ring in rings:
        vertices.append(place(ring[:, 0], ring[:, 1], state))
        ring_codes = np.full(len(ring), Path.LINETO, dtype=Path.code_type)
        ring_codes[0] = Path.MOVETO
        codes.append(ring_codes)
    return Path(np.concatenate(vertices), np.concatenate(codes))


def _values(keys: list[str], by_key: Mapping[str, float]) -> npt.NDArray[np.float64]:
    """Each drawn county's value, NaN where there is none (no records)."""
    return np.array([by_key.get(k, np.nan) for k in keys], dtype=np.float64)


def _norm(values: npt.NDArray[np.float64]) -> Normalize:
    from matplotlib.colors import Normalize

    top = np.nanmax(values, initial=0.0) if values.size else 0.0
    return Normalize(0.0, top if top > 0 else 1.0)


def _draw(
    fig: Figure,
    ax: Axes,
    counties: CountyMap,
    values: npt.NDArray[np.float64],
    norm: Normalize,
    cmap: str,
    label: str | None,
) -> PathCollection:
    """Counties coloured by `values` (grey where NaN), inset labels, a colour bar if labelled."""
    from matplotlib import colormaps
    from matplotlib.collections import PathCollection

    colours = colormaps[cmap].with_extremes(bad=NO_RECORDS)
    # The paths as they are: a PathPatch per county (a PatchCollection) drew the same pixels
    # but made 3,219 artists per panel first, 40-65% of a map's time (the share map has four).
    patches = PathCollection(counties.paths, cmap=colours, norm=norm, linewidths=0.2)
    patches.set_array(np.ma.masked_invalid(values))
    patches.set_edgecolor("face")  # no outlines: at this size they would grey small counties
    ax.add_collection(patches, autolim=False)  # the limits are fixed below
    ax.set_xlim(-2.5e6, 2.4e6)
    ax.set_ylim(-0.2e6, 3.25e6)
    ax.set_aspect("equal")
    ax.set_axis_off()
    for state, inset in INSETS.items():
        if state in counties.states:
            ax.text(*inset.label_at, inset.label, fontsize=8)
    ax.text(0.0, 0.0, "grey: no records", fontsize=8, transform=ax.transAxes)
    if label is not None:
        bar = fig.colorbar(patches, cax=fig.add_axes((0.9, 0.1, 0.02, 0.75)))
        bar.set_label(label)
    return patches
