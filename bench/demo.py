"""Benchmark: the warm `./scripts/demo` (issue 13 item 5: ≤ 20 s), today's tree against a
baseline commit, and with `--first-run` a fresh clone's first demo, install included (≤ 60 s).

The warm demo is `bisonflow run` with the demo's defaults (250,000 records, this month) once
the virtual environment exists: the same command in both trees, each run from its own tree
(the baseline exported with `git archive`, so its `bisonflow`, Lambdas, tasks and ASL are the
commit's) with this repository's `.venv`. One untimed run per side first (Python compiles the
tree's imports; today's tree stores its sample), then `--rounds` runs per side, alternating, so
a noisy machine moves both; the median is reported, with the CPU of every process the run
waited for (the emulator, Lambda workers, tasks, the IAM evaluator).

The first run clones the commit into a scratch directory and runs `./scripts/demo` there with
`XDG_CACHE_HOME` pointing at an empty directory, so uv's, pip's and the sample's caches are
empty (npm's is not: it lives under HOME); it needs the package index and takes a minute or
two per side, so it is not run by default.

    python -m bench.demo [--rounds N] [--baseline-commit C] [--first-run]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import Measurement, print_table

#: The tree before the warm-demo work of 2026-12-07 (sample cache, warm Lambda workers,
#: history paging, the CSV copies UNLOADed by Redshift).
BASELINE_COMMIT = "7c9ae59"
WARM_GOAL_SECONDS = 20.0
FIRST_RUN_GOAL_SECONDS = 60.0
_REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per side")
    parser.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    parser.add_argument("--first-run", action="store_true", help="also a fresh clone's first demo")
    args = parser.parse_args()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as scratch:
        trees = {"baseline": Path(scratch) / "baseline", "today": _REPO}
        _export(args.baseline_commit, trees["baseline"])
        timings: dict[str, list[tuple[float, float]]] = {"baseline": [], "today": []}
        for side, tree in trees.items():
            print(f"warming up: {side}", flush=True)
            _warm_demo(tree, Path(scratch) / f"{side}-warm-up")
        for round_ in range(args.rounds):
            for side, tree in trees.items():
                timings[side].append(_warm_demo(tree, Path(scratch) / f"{side}-{round_}"))
                wall, cpu = timings[side][-1]
                print(f"{side} round {round_ + 1}: {wall:.1f} s, {cpu:.1f} CPU-s", flush=True)
        commit = args.baseline_commit
        rows = [
            _row("warm demo: wall time (median)", timings, 0, commit, WARM_GOAL_SECONDS),
            _row("warm demo: CPU of every process (median)", timings, 1, commit),
        ]
        if args.first_run:
            first = {
                side: _first_run(commit, Path(scratch) / f"{side}-first")
                for side, commit in (("baseline", args.baseline_commit), ("today", "HEAD"))
            }
            rows.append(
                Measurement(
                    "first demo of a fresh clone, install included",
                    first["today"],
                    goal=FIRST_RUN_GOAL_SECONDS,
                    baseline_name=f"commit {args.baseline_commit}",
                    baseline=first["baseline"],
                )
            )
    print_table(
        f"./scripts/demo (runs per side: {args.rounds}; load {load_before} before,"
        f" {_load()} after)",
        rows,
    )


def _row(
    name: str,
    timings: dict[str, list[tuple[float, float]]],
    column: int,
    commit: str,
    goal: float | None = None,
) -> Measurement:
    median = {side: statistics.median(t[column] for t in runs) for side, runs in timings.items()}
    return Measurement(
        name,
        median["today"],
        goal=goal,
        baseline_name=f"commit {commit}",
        baseline=median["baseline"],
    )


def _warm_demo(tree: Path, out: Path) -> tuple[float, float]:
    """Wall and CPU seconds of `bisonflow run` from `tree`, as scripts/demo runs it."""
    out.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "bisonflow.cli.main", "run", "--out", str(out)],
        cwd=tree,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _first_run(commit: str, clone: Path) -> float:
    """Seconds of `./scripts/demo` in a fresh clone of `commit`, with empty caches."""
    subprocess.run(["git", "clone", "-q", str(_REPO), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", commit], check=True)
    cache = clone.parent / f"{clone.name}-cache"
    cache.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "XDG_CACHE_HOME": str(cache)
    }
    started = time.monotonic()
    subprocess.run(["./scripts/demo"], cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def _export(commit: str, tree: Path) -> None:
    """The whole tree as it was at `commit` (its Lambdas, tasks and ASL too), in `tree`."""
    tree.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(_REPO), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
