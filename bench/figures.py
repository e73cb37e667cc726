"""Benchmark: calc_stats' three figures and three maps, today's code against a baseline commit.

CalcStats bounds the warm demo (issue 13 item 5) and every workflow run in the test suite,
and a profile of its run in a test workflow put about half of it in matplotlib: the figures
(one Rectangle patch per bar, ~290 tick objects), the maps, and importing matplotlib in
every task process. This bench draws the six images from the same inputs with the baseline
commit's `bisonflow` (exported with `git archive`) and with today's, each in a fresh child
process as the task draws them (once, in calc_stats' order), then once more warm; children
alternate baseline / today, and each measurement keeps the best of `--rounds` children, so
a noisy machine moves both. The images of the two are compared pixel by pixel: the bench
fails if a figure's pixels differ, since the goal is the same picture, cheaper.

Inputs (built in each child from a fixed seed, not timed): 52 states, the 3,219 vendored
census counties (every one drawn, as in a national month), a 3,000-site x 20,000-species
PAM with 400,000 presences (a full heatmap grid) and random shares per county and tier.

    python -m bench.figures [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Measurement, print_table

#: The commit before this work: ax.bar per tier, matplotlib imported with the modules.
BASELINE_COMMIT = "b71fd1f6ed11c232236f9e0d4f9bebea1142e1b6"
_REPO = Path(__file__).resolve().parents[1]
MONTH = "2026-11"
#: The images in the order calc_stats draws them (figure_files, then map_files).
IMAGES = (
    "figure_richness_state",
    "figure_riis_share_state",
    "figure_heatmap_county",
    "map_richness_county",
    "map_riis_share_county",
    "map_richness_state",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="children per side (best kept)")
    args = parser.parse_args()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="bench-figures-") as scratch:
        baseline_tree = Path(scratch) / "baseline"
        _export(BASELINE_COMMIT, baseline_tree)
        runs: dict[str, list[dict[str, Any]]] = {"baseline": [], "today": []}
        for round_ in range(args.rounds):
            for side, tree in (("baseline", baseline_tree), ("today", _REPO)):
                out = Path(scratch) / f"{side}-{round_}"
                runs[side].append(_child(tree, out))
        differing = _differing_pixels(Path(scratch) / "baseline-0", Path(scratch) / "today-0")
    best = {side: _best(results) for side, results in runs.items()}
    rows = [
        _row(best, "import figures and maps (calc_stats: at start, main thread)", "import"),
        _row(best, "project the counties (calc_stats: in a reader thread)", "counties"),
    ]
    rows += [_row(best, f"{name} (first draw in the process)", name) for name in IMAGES]
    rows += [_row(best, "all six, first draw", "cold_total")]
    rows += [_row(best, "all six, drawn again (warm)", "warm_total")]
    rows += [_row(best, "the process: imports, counties and six images", "process")]
    print_table(
        f"calc_stats figures and maps (CPU seconds; best of {args.rounds}"
        f" children per side; load {load_before} before, {_load()} after)",
        rows,
    )
    print("\n  pixels differing from the baseline's image: " + json.dumps(differing))
    if any(differing.values()):
        raise SystemExit("the images differ from the baseline's")


def _row(best: dict[str, dict[str, float]], name: str, key: str, unit: str = "s") -> Measurement:
    return Measurement(
        name,
        best["today"][key],
        unit,
        baseline_name=f"commit {BASELINE_COMMIT[:7]}",
        baseline=best["baseline"][key],
    )


def _best(results: list[dict[str, Any]]) -> dict[str, float]:
    return {key: min(r[key] for r in results) for key in results[0]}


def _export(commit: str, tree: Path) -> None:
    """`bisonflow` as it was at `commit`, in `tree`."""
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(_REPO), "archive", "--format=tar", commit, "bisonflow"],
        check=True,
        capture_output=True,
    ).stdout
    tar = tree / "bisonflow.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as contents:
        contents.extractall(tree, filter="data")


def _child(tree: Path, out: Path) -> dict[str, float]:
    """One cold process drawing with `tree`'s bisonflow: run from `tree` so that its
    `bisonflow` comes first on sys.path (this repository's `bench` after it)."""
    env = os.environ | {"PYTHONPATH": str(_REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bench.figures", "--child", str(out)],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _draw_in_this_process(out: Path) -> dict[str, float]:
    """The child: set up, draw each image once (cold), then all again (warm); CPU seconds."""
    started = time.process_time()
    from bisonflow.graphics import figures, maps  # what calc_stats imports

    timing = {"import": time.process_time() - started}
    inputs, untimed = _inputs(maps)  # their generation is not timed
    timing["counties"] = time.process_time() - started - timing["import"] - untimed
    draw = _drawers(figures, maps, inputs)
    out.mkdir(parents=True)
    for name in IMAGES:
        before = time.process_time()
        png = draw[name]()
        timing[name] = time.process_time() - before
        (out / f"{name}.png").write_bytes(png)
    timing["cold_total"] = sum(timing[name] for name in IMAGES)
    before = time.process_time()
    for name in IMAGES:
        draw[name]()
    timing["warm_total"] = time.process_time() - before
    timing["process"] = time.process_time() - started - untimed - timing["warm_total"]
    return timing


def _inputs(maps: Any) -> tuple[dict[str, Any], float]:
    """The drawings' inputs, and the CPU seconds spent generating them: the counties
    are projected in the timed part (calc_stats does it in a reader thread, and today's code
    imports matplotlib there), the random tables and PAM are not."""
    import numpy as np
    import pyarrow as pa

    from bisonflow.dimensions import REGION_COUNT_COLUMNS
    from bisonflow.graphics.shapefile import read_polygons
    from bisonflow.stats.pam import build_matrices

    data = _REPO / "bisonflow" / "sample" / "data"
    shp, dbf = ((data / f"us_county_2017_10m{s}").read_bytes() for s in (".shp", ".dbf"))
    counties = maps.county_map(read_polygons(shp, dbf, ("GEOID", "STUSPS"), "bench counties"))
    untimed = time.process_time()
    rng = np.random.default_rng(13)
    states = sorted(set(counties.states))[:52]
    alpha = rng.integers(50, 3000, len(states))
    sites, taxa = rng.integers(0, 3000, 400_000), rng.integers(0, 20_000, 400_000)
    pam = build_matrices(
        pa.array([f"{s:05d}" for s in sites]), taxa, np.ones(len(sites), dtype=np.int64)
    ).pam
    n = len(counties.geoids)
    tiers = ("established", "invasive", "widespread invasive")
    inputs = {
        "counties": counties,
        "states": states,
        "alpha": alpha,
        "state_counts": pa.table(
            {"state": states}
            | {c: rng.integers(0, 1000, len(states)) for c in REGION_COUNT_COLUMNS}
        ),
        "pam": pam,
        "county_richness": dict(
            zip(counties.geoids, rng.integers(0, 500, n).tolist(), strict=True)
        ),
        "state_richness": dict(zip(states, alpha.astype(float).tolist(), strict=True)),
        "shares": {
            t: dict(zip(counties.geoids, (rng.random(n) / 4).tolist(), strict=True)) for t in tiers
        },
    }
    return inputs, time.process_time() - untimed


def _drawers(figures: Any, maps: Any, i: dict[str, Any]) -> dict[str, Callable[[], bytes]]:
    import pyarrow as pa

    counties = i["counties"]
    return {
        "figure_richness_state": lambda: figures.richness_per_state(
            pa.array(i["states"]), i["alpha"], MONTH
        ),
        "figure_riis_share_state": lambda: figures.riis_share_per_state(
            i["state_counts"], "state", MONTH
        ),
        "figure_heatmap_county": lambda: figures.pam_heatmap(i["pam"], MONTH, "county"),
        "map_richness_county": lambda: maps.richness_per_county(
            counties, i["county_richness"], MONTH
        ),
        "map_riis_share_county": lambda: maps.listed_share_per_county(counties, i["shares"], MONTH),
        "map_richness_state": lambda: maps.richness_per_state(counties, i["state_richness"], MONTH),
    }


def _differing_pixels(baseline: Path, today: Path) -> dict[str, int]:
    """Per image, how many pixels differ between the two runs' PNGs (RGBA compared)."""
    import numpy as np
    from PIL import Image

    def pixels(path: Path) -> Any:
        return np.asarray(Image.open(path).convert("RGBA"))

    return {
        name: int(
            np.any(pixels(baseline / f"{name}.png") != pixels(today / f"{name}.png"), axis=2).sum()
        )
        for name in IMAGES
    }


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_draw_in_this_process(Path(sys.argv[2]))))
    else:
        main()
