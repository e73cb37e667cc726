"""Figures: valid PNGs of the fixed size with something drawn, and the PAM image's binning."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from matplotlib.colors import to_rgb, to_rgba
from matplotlib.image import imread
from test_pam import ROWS

from bisonflow.dimensions import ASSESSMENTS, MEASURES, REGION_COUNT_COLUMNS, assessment_column
from bisonflow.graphics import figures
from bisonflow.stats.pam import build_matrices

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MONTH = "2024-02"


@pytest.fixture(scope="module")
def pam():
    """The hand-computed 4 x 5 PAM of test_pam (min_count=2)."""
    sites, taxa, counts = zip(*ROWS, strict=True)
    return build_matrices(sites, taxa, counts, min_count=2).pam


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first."""
    assert data[:8] == PNG_SIGNATURE
    length, chunk = struct.unpack(">I4s", data[8:16])
    assert chunk == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def assert_drawn(data: bytes) -> None:
    """A decodable PNG of FIGURE_SIZE_PX whose pixels are not all one colour."""
    assert png_size(data) == figures.FIGURE_SIZE_PX
    pixels = imread(io.BytesIO(data), format="png")[..., :3]
    width, height = figures.FIGURE_SIZE_PX
    assert pixels.shape == (height, width, 3)
    not_white = (pixels < 0.95).any(axis=2).mean()
    assert not_white > 0.01, f"only {not_white:.2%} of the pixels are drawn"
    rgb = (pixels * 255).astype(np.uint32)
    colours = np.unique(rgb[..., 0] << 16 | rgb[..., 1] << 8 | rgb[..., 2])
    assert len(colours) > 20


def state_counts(states: list[str]) -> pa.Table:
    values = {c: [10 * (i + 1) for i in range(len(states))] for c in REGION_COUNT_COLUMNS}
    return pa.table({"state": states} | values)


def test_richness_per_state_is_a_drawn_png():
    assert_drawn(figures.richness_per_state(pa.array(["AL", "AK", "HI"]), [30, 5, 12], MONTH))


def test_riis_share_per_state_is_a_drawn_png():
    counts = state_counts(["AL", "AK", "HI", None, "AL"])  # a row without state, AL twice
    assert_drawn(figures.riis_share_per_state(counts, "state", MONTH))


def test_riis_shares_sum_duplicate_states_and_leave_out_rows_without_one():
    table = pa.table(
        {
            "state": ["AL", "HI", None, "AL", "AK"],
            "established_occ_count": [1, 0, 50, 2, 0],
            "invasive_occ_count": [0, 3, 50, 1, 0],
            "widespread_invasive_occ_count": [1, 2, 50, 0, 0],
            "presumed_native_occ_count": [4, 1, 50, 1, 0],
            "established_species_count": [1, 0, 9, 0, 0],
            "invasive_species_count": [0, 1, 9, 1, 0],
            "widespread_invasive_species_count": [0, 1, 9, 0, 0],
            "presumed_native_species_count": [2, None, 9, 0, 0],
        }
    )
    in_two_parts = pa.concat_tables(  # each part with its own dictionary, as parquet reads
        [
            part.set_column(0, "state", part["state"].dictionary_encode())
            for part in (table.slice(0, 2), table.slice(2))
        ]
    )
    states, shares = figures.riis_shares(in_two_parts, "state")
    by_state = {
        s: {a: shares["occ_count"][a][i] for a in ASSESSMENTS} for i, s in enumerate(states)
    }
    assert by_state == {
        "AL": {
            "established": 3 / 10,
            "invasive": 1 / 10,
            "widespread invasive": 1 / 10,
            "presumed_native": 5 / 10,
        },
        "HI": {
            "established": 0.0,
            "invasive": 3 / 6,
            "widespread invasive": 2 / 6,
            "presumed_native": 1 / 6,
        },
        "AK": dict.fromkeys(ASSESSMENTS, 0.0),  # no records
    }
    hawaii = states.index("HI")  # species: null counts as 0
    assert shares["species_count"]["invasive"][hawaii] == 0.5
    assert shares["species_count"]["widespread invasive"][hawaii] == 0.5


def test_riis_share_draws_each_assessment_in_its_own_colour():
    """Each assessment (the three tiers and presumed native) fills its own bars in its own
    colour, so a reader tells widespread invasive from invasive without reading numbers."""
    colours = figures.ASSESSMENT_COLOURS
    assert set(colours) == set(ASSESSMENTS)
    assert len(set(colours.values())) == len(ASSESSMENTS)
    for only in ASSESSMENTS:  # one state whose records are all of one assessment
        columns = {c: [0] for c in REGION_COUNT_COLUMNS}
        for measure in MEASURES:
            columns[assessment_column(only, measure)] = [5]
        pixels = imread(
            io.BytesIO(
                figures.riis_share_per_state(pa.table({"state": ["HI"]} | columns), "state", MONTH)
            ),
            format="png",
        )[..., :3]
        drawn = {
            a: np.all(np.abs(pixels - to_rgb(c)) < 2 / 255, axis=2).sum()
            for a, c in colours.items()
        }
        bars = {a for a, n in drawn.items() if n > 5_000}  # far more than a legend swatch
        assert bars == {only}, (only, drawn)


def test_riis_share_legend_names_each_tier_in_stacking_order(monkeypatch):
    """The bars are drawn without labels of their own, so the legend's entries are made
    for it: one per assessment, bottom tier first, each in its bars' colour."""
    seen = []
    monkeypatch.setattr(figures, "_png", lambda fig: seen.append(fig) or b"")
    figures.riis_share_per_state(state_counts(["AL", "HI"]), "state", MONTH)
    (legend,) = seen[0].legends
    entries = [
        (t.get_text(), h.get_facecolor())
        for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
    ]
    assert entries == [
        (
            "widespread invasive (category E)",
            to_rgba(figures.ASSESSMENT_COLOURS["widespread invasive"]),
        ),
        ("invasive (category D2)", to_rgba(figures.ASSESSMENT_COLOURS["invasive"])),
        ("established (category C3)", to_rgba(figures.ASSESSMENT_COLOURS["established"])),
        ("presumed native (not listed)", to_rgba(figures.ASSESSMENT_COLOURS["presumed_native"])),
    ]
    for ax in seen[0].axes:  # each state's four bars are stacked, up to a share of 1
        tops: dict[int, float] = {}
        for bars in ax.collections:
            for path in bars.get_paths():
                x = round(float(path.vertices[:, 0].mean()))
                tops[x] = max(tops.get(x, 0.0), float(path.vertices[:, 1].max()))
        assert tops == {0: pytest.approx(1.0), 1: pytest.approx(1.0)}


def test_pam_heatmap_is_a_drawn_png(pam):
    assert_drawn(figures.pam_heatmap(pam, MONTH))


def test_figures_without_data_still_render():
    empty = build_matrices(pa.array([], pa.string()), [], []).pam
    for data in (
        figures.richness_per_state(pa.array([], pa.string()), [], MONTH),
        figures.riis_share_per_state(state_counts([]), "state", MONTH),
        figures.pam_heatmap(empty, MONTH),
    ):
        assert png_size(data) == figures.FIGURE_SIZE_PX


def test_binned_presence_orders_by_richness_and_range_size(pam):
    """Ordered PAM (rows 15001, 01003, 01001, 02010 by alpha 4, 3, 2, 2; columns T2, T1, T4,
    T3, T5 by omega 3, 3, 2, 2, 1):

        0 1 1 | 1 1
        1 1 0 | 1 0
        ------+----
        1 1 0 | 0 0
        1 0 1 | 0 0

    On a 2 x 2 grid, rank r of n goes to pixel r * 2 // n: rows {0,1} {2,3}, columns
    {0,1,2} {3,4}; each pixel is presences / cells covered."""
    np.testing.assert_array_equal(
        figures.binned_presence(pam, 4, 5),
        [
            [0, 1, 1, 1, 1],
            [1, 1, 0, 1, 0],
            [1, 1, 0, 0, 0],
            [1, 0, 1, 0, 0],
        ],
    )
    assert figures.binned_presence(pam, 2, 2).tolist() == [[4 / 6, 3 / 4], [4 / 6, 0.0]]


def test_binned_presence_never_densifies_a_national_matrix():
    """300,000 x 300,000 cells would be 90 GB dense (more than this machine has); binned it is
    at most HEATMAP_GRID pixels and every presence is counted once."""
    n = 300_000
    rng = np.random.default_rng(7)
    sites = pa.array([f"{i:06d}" for i in range(n)])
    rows = np.concatenate([np.arange(n), rng.integers(0, n, n)])
    cols = np.concatenate([rng.integers(0, n, n), np.arange(n)])
    big = build_matrices(sites.take(pa.array(rows)), cols, np.ones(2 * n, dtype=np.int64)).pam
    assert big.matrix.shape == (n, n)
    grid = figures.binned_presence(big, *figures.HEATMAP_GRID)
    assert grid.shape == figures.HEATMAP_GRID
    cells_per_pixel = (n / figures.HEATMAP_GRID[0]) * (n / figures.HEATMAP_GRID[1])
    assert grid.sum() * cells_per_pixel == pytest.approx(big.nnz, rel=1e-3)


def test_a_county_no_list_assesses_has_no_listed_share():
    """San Juan, PR: records, but no RIIS region, so no assessment; its share is absent (grey
    on the map), not 0 like Adams, whose one species is presumed native."""
    measures = {c: [0, 0, 0] for c in REGION_COUNT_COLUMNS} | {
        "occ_count": [3, 2, 4],
        "species_count": [1, 1, 2],
        "presumed_native_occ_count": [3, 0, 1],
        "presumed_native_species_count": [1, 0, 1],
        "invasive_occ_count": [0, 0, 3],
        "invasive_species_count": [0, 0, 1],
    }
    table = pa.table({"geoid": ["08001", "72127", "08005"]} | measures)
    shares = figures.listed_species_shares(table, "geoid")
    assert shares["invasive"] == {"08001": 0.0, "08005": 0.5}
    assert shares["established"] == {"08001": 0.0, "08005": 0.0}


def test_the_stats_task_imports_matplotlib_only_to_draw():
    """matplotlib takes about 1.7 s to import: calc_stats (which imports figures, maps and
    changes for their arithmetic too) must not pay it before anything is drawn, so a task
    that fails early never does, and the county reader's thread imports it for the maps."""
    check = (
        "import sys, tasks.calc_stats; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=root, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
