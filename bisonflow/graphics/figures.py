"""The month's statistics as pictures (PNG bytes), for people who would rather look than read.

Figures are drawn on matplotlib's Agg canvas through `matplotlib.figure.Figure`, never
pyplot: no display, no global figure state, so rendering is safe inside a task or a test.
Every figure has the same pixel size, axis labels, and the month in its title.

The county x species heatmap image is made from the sparse PAM by counting presences into a
fixed grid of pixels, so a national matrix (hundreds of millions of cells) is never densified:
the work is one pass over the stored cells and the image is at most a million numbers.

matplotlib is imported where a figure is drawn, not with this module: it takes about 1.7 s,
and calc_stats imports this module for its share arithmetic too, so a task that fails
before drawing (a bad spec, a missing table) never pays for it (bisonflow.graphics.maps.county_map
imports it early, in the thread that reads the counties).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from bisonflow.dimensions import (
    ASSESSMENTS,
    COUNTY,
    ESTABLISHED,
    INVASIVE,
    LISTED_ASSESSMENTS,
    MEASURES,
    PRESUMED_NATIVE,
    WIDESPREAD_INVASIVE,
    assessment_column,
)
from bisonflow.riis.columns import ASSESSMENT_OF_DEGREE
from bisonflow.stats.changes import Changes
from bisonflow.stats.pam import Pam, range_sizes, richness

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Width and height of every figure, in pixels.
FIGURE_SIZE_PX = (1400, 800)
DPI = 100
#: Fixed margins (fractions of the figure) instead of a layout engine, which measures every
#: tick label and took about half of each figure's rendering time: room for rotated state
#: codes, six-digit tick labels, axis labels and the legend below.
_MARGINS = {"left": 0.06, "right": 0.985, "top": 0.95, "bottom": 0.1}
#: Counties drawn in the new-this-month figure (changes_figure), most changes first.
FIGURE_COUNTIES = 30
#: Upper bound of the heatmap image's grid (rows = sites, columns = species).
HEATMAP_GRID = (600, 1200)

#: One colour per assessment, the listed tiers darker the more severe (a sequential red ramp
#: a reader orders without the legend), presumed native a contrasting green.
ASSESSMENT_COLOURS = {
    WIDESPREAD_INVASIVE: "#67000d",
    INVASIVE: "#d7301f",
    ESTABLISHED: "#fdae61",
    PRESUMED_NATIVE: "#7fb77e",
}
#: Legend labels: a tier is named by its degreeOfEstablishment, category letter included.
_ASSESSMENT_LABELS = {a: d for d, a in ASSESSMENT_OF_DEGREE.items()} | {
    PRESUMED_NATIVE: "presumed native (not listed)"
}
#: Stacking order, bottom up: the most severe tier on the axis, presumed native on top.
_STACK_ORDER = (*reversed(LISTED_ASSESSMENTS), PRESUMED_NATIVE)


def richness_per_state(states: pa.Array, alpha: npt.ArrayLike, month: str) -> bytes:
    """Bar chart of species richness (PAM alpha) per state, richest first."""
    labels, values = _labels(states), np.asarray(alpha, dtype=np.int64)
    order = np.argsort(-values, kind="stable")
    fig, ax = _figure()
    if len(values):
        _bars(ax, values[order], np.zeros(len(values)), "#2e86ab")
        _category_ticks(ax, [labels[i] for i in order])
    else:
        _no_data(ax)
    ax.set_xlabel("state")
    ax.set_ylabel("species present (alpha)")
    _title(ax, f"Species richness per state, GBIF snapshot {month}")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def riis_share_per_state(state_counts: pa.Table, site_column: str, month: str) -> bytes:
    """Two stacked bar charts per state: the share of occurrences and of species in each
    US-RIIS tier for the state's region (widespread invasive, invasive, established) and
    presumed native, states with the largest listed share of occurrences first.

    `state_counts` is the `<dim>_counts` table: the site column and each assessment's
    dimensions.assessment_column measures; duplicate rows of a state are summed, rows
    without a state left out.
    """
    from matplotlib.patches import Patch

    labels, shares = riis_shares(state_counts, site_column)
    fig = _blank_figure()
    axes = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(**_MARGINS | {"bottom": 0.15}, hspace=0.06)  # the legend below
    listed_share = np.sum([shares["occ_count"][a] for a in LISTED_ASSESSMENTS], axis=0)
    order = np.argsort(-listed_share, kind="stable")
    for ax, what, noun in zip(axes, MEASURES, ("occurrences", "species"), strict=True):
        bottom = np.zeros(len(labels))
        for assessment in _STACK_ORDER:
            share = shares[what][assessment][order]
            _bars(ax, share, bottom, ASSESSMENT_COLOURS[assessment])
            bottom = bottom + share
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"share of {noun}")
        ax.grid(axis="y", alpha=0.3)
        if not len(labels):
            _no_data(ax)
    _category_ticks(axes[1], [labels[i] for i in order])
    axes[1].set_xlabel("state (largest share of listed occurrences first)")
    fig.suptitle(f"Share listed in US-RIIS per state, by tier, GBIF snapshot {month}")
    tiers = [
        Patch(facecolor=ASSESSMENT_COLOURS[a], label=_ASSESSMENT_LABELS[a]) for a in _STACK_ORDER
    ]
    fig.legend(handles=tiers, loc="lower center", ncols=len(ASSESSMENTS))
    return _png(fig)


def pam_heatmap(pam: Pam, month: str, dimension: str = "county") -> bytes:
    """The site x species PAM as an image: sites by richness (richest at the top), species by
    range size (widest on the left), each pixel the share of its cells with a presence."""
    from matplotlib.colors import PowerNorm

    fig, ax = _figure(bottom=0.07, right=0.94)  # room for the colour bar's labels
    grid = binned_presence(pam, *HEATMAP_GRID)
    if pam.nnz:
        image = ax.imshow(
            grid,
            aspect="auto",
            interpolation="nearest",
            cmap="viridis",
            norm=PowerNorm(gamma=0.5, vmin=0.0, vmax=max(float(grid.max()), 1e-9)),
            extent=(0, pam.num_species, pam.num_sites, 0),
        )
        fig.colorbar(
            image,
            ax=ax,
            fraction=0.03,
            pad=0.01,
            label="share of cells with a presence (sqrt scale)",
        )
    else:
        _no_data(ax)
    ax.set_xlabel(f"{pam.num_species:,} species, by range size (widest first)")
    ax.set_ylabel(f"{pam.num_sites:,} sites ({dimension}), by richness (richest first)")
    _title(
        ax,
        f"Presence-absence matrix, {dimension} x species ({pam.nnz:,} presences), "
        f"GBIF snapshot {month}",
    )
    return _png(fig)


def binned_presence(pam: Pam, max_rows: int, max_cols: int) -> npt.NDArray[np.float64]:
    """The ordered PAM reduced to at most max_rows x max_cols pixels: each pixel is the share
    of the cells it covers that hold a presence. One pass over the stored cells."""
    n, s = pam.num_sites, pam.num_species
    height, width = min(n, max_rows), min(s, max_cols)
    if height == 0 or width == 0:
        return np.zeros((height, width))
    row_rank = _rank_descending(richness(pam))
    col_rank = _rank_descending(range_sizes(pam))
    row_pixel = row_rank * height // n  # rank -> pixel row, monotone, every pixel used
    col_pixel = col_rank * width // s
    cell_rows = np.repeat(row_pixel, np.diff(pam.matrix.indptr))
    cells = cell_rows * width + col_pixel[pam.matrix.indices]
    presences = np.bincount(cells, minlength=height * width).reshape(height, width)
    covered = np.outer(
        np.bincount(row_pixel, minlength=height), np.bincount(col_pixel, minlength=width)
    )
    return presences / covered


def _rank_descending(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Position of each element when sorted largest first (ties keep label order)."""
    order = np.argsort(-values, kind="stable")
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    return rank


def riis_shares(
    state_counts: pa.Table, site_column: str
) -> tuple[list[str], dict[str, dict[str, npt.NDArray[np.float64]]]]:
    """(states, {"occ_count" | "species_count": {assessment: share per state}}): each
    assessment's part of the sum over all assessments, 0 for a state without any. Duplicate
    rows of a state are summed, rows without a state left out, missing counts taken as 0.
    A species with two assessments in a site (a subspecies listed apart) counts in each
    assessment's species_count, so species shares are of (species, assessment) pairs and
    still add up to 1."""
    sites = state_counts[site_column]
    if pa.types.is_dictionary(sites.type):  # chunks may have different dictionaries
        sites = pc.cast(sites, sites.type.value_type)
    located = state_counts.set_column(
        state_counts.schema.get_field_index(site_column), site_column, sites
    ).filter(pc.is_valid(sites))
    counts = located.group_by(site_column, use_threads=False).aggregate(
        [(assessment_column(a, what), "sum") for a in ASSESSMENTS for what in MEASURES]
    )
    shares = {}
    for what in MEASURES:
        parts = {a: _as_float(counts[f"{assessment_column(a, what)}_sum"]) for a in ASSESSMENTS}
        total = np.sum(list(parts.values()), axis=0)
        safe = np.where(total > 0, total, 1.0)
        shares[what] = {a: np.where(total > 0, p / safe, 0.0) for a, p in parts.items()}
    return _labels(counts[site_column]), shares


def listed_species_shares(counts: pa.Table, site_column: str) -> dict[str, dict[str, float]]:
    """Listed tier -> site -> the tier's share of the site's species (`riis_shares`), for
    the county map.

    A site without any assessed record has no share: its records lie in a territory no RIIS
    list assesses (no riis_region, no assessment), and a share of 0 would draw it as a site
    where nothing is listed. It is left out, so the map leaves it grey."""
    sites, shares = riis_shares(counts, site_column)
    parts = shares["species_count"]
    assessed = np.sum([parts[a] for a in ASSESSMENTS], axis=0) > 0
    return {
        a: {s: float(v) for s, v, keep in zip(sites, parts[a], assessed, strict=True) if keep}
        for a in LISTED_ASSESSMENTS
    }


def _as_float(column: pa.ChunkedArray) -> npt.NDArray[np.float64]:
    """Integers as floats, nulls (NaN after conversion) as 0."""
    return np.nan_to_num(column.to_numpy(zero_copy_only=False).astype(np.float64))


def _labels(values: pa.Array | pa.ChunkedArray) -> list[str]:
    return [str(v) for v in values.to_pylist()]


def _figure(**margins: float) -> tuple[Figure, Axes]:
    """A figure with one axes inside _MARGINS (updated by `margins`)."""
    fig = _blank_figure()
    fig.subplots_adjust(**_MARGINS | margins)
    return fig, fig.subplots()


def _blank_figure() -> Figure:
    """An empty figure of FIGURE_SIZE_PX, on the Agg canvas (savefig's PNG default)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(FIGURE_SIZE_PX[0] / DPI, FIGURE_SIZE_PX[1] / DPI), dpi=DPI)


def _category_ticks(ax: Axes, labels: list[str]) -> None:
    ax.set_xticks(np.arange(len(labels)), labels, rotation=90 if len(labels) > 20 else 0)
    ax.set_xlim(-0.6, len(labels) - 0.4)


def _bars(ax: Axes, heights: npt.NDArray, bottoms: npt.NDArray, colour: str) -> None:
    """Bars of width 0.8 centred on 0, 1, 2, ... as one PolyCollection: what `ax.bar` draws,
    without its Rectangle patch per bar, whose data-limit update made the stacked figure's
    ~450 bars most of its drawing time. Like `ax.bar`, the value axis starts at 0 (a sticky
    edge, so autoscaling adds no margin below the bars)."""
    from matplotlib.collections import PolyCollection

    left = np.arange(len(heights)) - 0.4
    top = bottoms + heights
    corners = np.stack(
        [(left, bottoms), (left, top), (left + 0.8, top), (left + 0.8, bottoms)]
    )  # (corner, x|y, bar)
    # An (N, 4, 2) array: PolyCollection.set_verts takes it whole instead of polygon by
    # polygon; its stubs type `verts` as a Sequence, which an ndarray is not.
    polygons = corners.transpose(2, 0, 1)
    bars = PolyCollection(polygons, facecolors=colour, edgecolors="none")  # type: ignore[arg-type]
    bars.sticky_edges.y.append(0)
    ax.add_collection(bars)


def _title(ax: Axes, title: str, fontsize: float | None = None) -> None:
    """The axes' title at its usual place, fixed there: a title placed automatically is
    moved clear of anything drawn above the axes, which means measuring the axes' tick
    labels once more at every draw (about half of a bar figure's drawing time, and ten
    y-axis ticks created per map panel whose axes are never drawn). These figures draw
    nothing above their axes (no top ticks, no offset text: the counts start at 0 and stay
    under a million), so the title lands on the same pixels."""
    # no fontsize: the axes' title size (rcParams axes.titlesize), which None would not keep
    font: dict[str, Any] = {} if fontsize is None else {"fontsize": fontsize}
    ax.set_title(title, y=1.0, **font)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no presences this month", ha="center", va="center", transform=ax.transAxes)


def _png(fig: Figure) -> bytes:
    sink = io.BytesIO()
    # zlib level 1: a third of the encoding time of the default for ~30% more bytes
    fig.savefig(sink, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return sink.getvalue()


def changes_figure(changes: Changes, month: str, reason: str | None = None) -> bytes:
    """Counties with the most changes: listed species gained (up, by tier) and lost (down).
    The first month's figure says there is no earlier month instead."""
    from matplotlib.figure import Figure  # drawn only here (the module docstring says why)
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(14, 8), dpi=100)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.06, right=0.985, top=0.93, bottom=0.22)
    if changes.previous_month is None:
        ax.text(0.5, 0.5, reason or "no earlier month", ha="center", va="center", wrap=True)
        ax.set_axis_off()
        ax.set_title(f"New this month (GBIF snapshot {month}): no earlier month to compare")
        return _png(fig)
    table = changes.county_changes
    geoids = table[COUNTY.site_column].to_pylist()
    totals: dict[str, int] = {}
    for g, gained, lost in zip(
        geoids, table["gained"].to_pylist(), table["lost"].to_pylist(), strict=True
    ):
        totals[g] = totals.get(g, 0) + gained + lost
    top = sorted(totals, key=lambda g: (-totals[g], g))[:FIGURE_COUNTIES]
    x = np.arange(len(top))
    names = dict(zip(geoids, _changes_county_labels(table), strict=True))
    colours = _changes_tier_colours()
    bottom = np.zeros(len(top))
    for tier in LISTED_ASSESSMENTS:
        gained = _changes_per_county(table, top, tier, "gained")
        ax.bar(x, gained, bottom=bottom, color=colours[tier], label=f"gained: {tier}")
        bottom += gained
    lost = _changes_per_county(table, top, None, "lost")
    ax.bar(x, -lost, color="#7f7f7f", label="lost (any tier)")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(x, [names[g] for g in top], rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("listed species gained (+) / lost (-)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # species are counted whole
    ax.set_xlabel(f"county (the {len(top)} with the most changes)")
    if not top:
        ax.text(
            0.5,
            0.5,
            "no listed species gained or lost a county",
            ha="center",
            transform=ax.transAxes,
        )
    ax.legend(loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(
        f"New this month: US-RIIS listed species by county, GBIF snapshot {month} "
        f"against {changes.previous_month}"
    )
    return _png(fig)


def _changes_county_labels(table: pa.Table) -> list[str]:
    return [
        f"{c}, {s}"
        for c, s in zip(table["county"].to_pylist(), table["state"].to_pylist(), strict=True)
    ]


def _changes_per_county(
    table: pa.Table, geoids: list[str], tier: str | None, column: str
) -> np.ndarray:
    """`column` summed per county of `geoids`, for one tier or (None) every tier."""
    values = dict.fromkeys(geoids, 0)
    if tier is not None:
        table = table.filter(pc.equal(table["riis_assessment"], tier))
    for row in table.to_pylist():
        if row[COUNTY.site_column] in values:
            values[row[COUNTY.site_column]] += row[column]
    return np.array([values[g] for g in geoids], dtype=np.int64)


def _changes_tier_colours() -> dict[str, str]:
    """One colour per listed tier, the state share figure's (darker for the more severe)."""
    return {tier: ASSESSMENT_COLOURS[tier] for tier in LISTED_ASSESSMENTS}
