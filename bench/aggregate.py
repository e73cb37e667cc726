"""Benchmark: subset + regions + RIIS status + aggregation over ten million GBIF records.

`python -m bench.aggregate` generates a sample month (not timed; kept with --sample-dir to
reuse) on the real census layers the sample ships (3,230 counties, 704 AIANNH areas), puts it
and the annotated US-RIIS list into an in-process moto S3 (moto.mock_aws), and runs the
workflow's real SQL batches, `subset` then `aggregate`, through the DuckDB Redshift Data API
stand-in, batch after batch as the state machine does (`bench.aggregate_steps`). The figure is
the sum of the statements' own durations, split into steps (mount, subset, loads, grid cells,
regions, RIIS status, counts, UNLOAD, summary), with the process CPU time beside it.

Baseline (issue 13 item 1: "against today's cut-pieces SQL"): the same run on commit
BASELINE_COMMIT, the last whose boundaries were cut into ST_Intersection pieces (and whose
stand-in copied the snapshot at CREATE EXTERNAL TABLE), exported with `git archive` and run in
a child process on the same sample right after (`bench/aggregate_baseline.py`).

`--scale 1,2,5,10,20` runs today's code alone at each size (millions of records) and writes
the curve: a table per step, seconds per million records, and RESULTS_DIR/aggregate_scale.png.

The step's own result (occurrences per assessment and region, sites per dimension) must
equal the sample's expected facts, or the benchmark fails: a fast wrong answer is no result.
"""

from __future__ import annotations

import argparse
import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import Measurement, print_table
from bench.aggregate_scale import RESULTS_DIR, ScalePoint, print_curve, write_curve
from bench.aggregate_steps import STEPS, SampleFiles, Timing, in_moto, run
from bisonflow.dimensions import ASSESSMENTS
from bisonflow.riis.columns import RIIS_REGIONS
from bisonflow.sample import SampleManifest, generate_sample

GOAL_SECONDS = 15.0
RECORDS = 10_000_000
#: The last commit with the cut-pieces SQL (df149ff replaced it with grid cells).
BASELINE_COMMIT = "79377ab"
SCALE_MILLIONS = (1, 2, 5, 10, 20)
_REPO = Path(__file__).resolve().parent.parent


def _sample(records: int, folder: Path) -> SampleManifest:
    """The sample in `folder`, generated unless a manifest for `records` is already there."""
    manifest = folder / "sample_manifest.json"
    if manifest.exists():
        saved = json.loads(manifest.read_text("utf-8"))
        if saved["records"] == records:
            return SampleManifest(
                root=Path(saved["root"]),
                snapshot_dir=Path(saved["snapshot_dir"]),
                riis_csv=Path(saved["riis_csv"]),
                county_shapefile=Path(saved["county_shapefile"]),
                aiannh_shapefile=Path(saved["aiannh_shapefile"]),
                species_match_json=Path(saved["species_match_json"]),
                records=records,
                expected=saved["expected"],
            )
    print(f"generating {records:,} records in {folder} (not timed) ...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    return generate_sample(folder, records=records)


def _files(sample: SampleManifest) -> SampleFiles:
    return SampleFiles(
        snapshot_dir=sample.snapshot_dir,
        county_shapefile=sample.county_shapefile,
        aiannh_shapefile=sample.aiannh_shapefile,
        riis_csv=sample.riis_csv,
        species_match_json=sample.species_match_json,
        month=sample.expected["snapshot"][:7],
    )


def expected_summary(expected: dict[str, Any]) -> dict[str, Any]:
    """The summary the aggregate step must return for a sample with these facts."""
    return {
        "occurrences_by_assessment": {
            a: expected["valid_by_assessment"][a]
            for a in ASSESSMENTS
            if expected["valid_by_assessment"][a]
        },
        "occurrences_by_region": {
            r: expected["valid_by_region"][r]
            for r in RIIS_REGIONS
            if expected["valid_by_region"][r]
        },
        "sites": {
            "county": len(expected["valid_by_county"]),
            "state": len(expected["valid_by_state"]),
            "aiannh": len(expected["valid_by_aiannh"]),
        },
    }


def _check(result: Any, expected: dict[str, Any]) -> None:
    """The step's counts against the sample's facts; exits with both on any difference."""
    want = expected_summary(expected)
    if result != want:
        raise SystemExit(f"wrong counts:\n  got      {result}\n  expected {want}")


def load_average() -> float:
    """The 1-minute load average (`uptime`), recorded beside every measurement."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _baseline(files: SampleFiles, scratch: Path) -> Timing:
    """The run on BASELINE_COMMIT's tree, in a child process (see bench/aggregate_baseline)."""
    tree = scratch / f"tree-{BASELINE_COMMIT}"
    tree.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(_REPO), "archive", "--format=tar", BASELINE_COMMIT, "bisonflow"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    spec = scratch / "baseline.json"
    spec.write_text(
        json.dumps(
            {
                "snapshot_dir": str(files.snapshot_dir),
                "county_shapefile": str(files.county_shapefile),
                "aiannh_shapefile": str(files.aiannh_shapefile),
                "riis_csv": str(files.riis_csv),
                "species_match_json": str(files.species_match_json),
                "month": files.month,
            }
        )
    )
    child = subprocess.run(
        [sys.executable, str(_REPO / "bench" / "aggregate_baseline.py"), str(spec)],
        env={**_child_env(), "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
    )
    if child.returncode != 0:
        raise SystemExit(f"baseline run failed:\n{child.stderr[-3000:]}")
    out = json.loads(child.stdout.strip().splitlines()[-1])
    return Timing(
        steps=out["steps"],
        cpu=out["cpu"],
        cpu_steps=out["cpu_steps"],
        wall=out["wall"],
        statements=[tuple(s) for s in out["statements"]],
        result=out["result"],
    )


def _child_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _goal_rows(records: int, new: Timing, old: Timing | None, load: str) -> list[Measurement]:
    base = f"cut pieces ({BASELINE_COMMIT})"
    rows = [
        Measurement(
            f"subset + regions + RIIS status + aggregation, {records:,} records (load {load})",
            sum(new.steps.values()),
            goal=GOAL_SECONDS if records == RECORDS else None,  # the size only
            baseline_name=base if old else None,
            baseline=sum(old.steps.values()) if old else None,
        ),
        Measurement(
            "  process CPU time",
            new.cpu,
            baseline_name=base if old else None,
            baseline=old.cpu if old else None,
        ),
    ]
    for step in STEPS:
        if step in new.steps or (old and step in old.steps):
            rows.append(
                Measurement(
                    f"  {step}",
                    new.steps.get(step, 0.0),
                    baseline_name=base if old else None,
                    baseline=old.steps.get(step, 0.0) if old else None,
                )
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument(
        "--sample-dir", type=Path, help="keep (and reuse) samples here, one folder per size"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline run")
    parser.add_argument(
        "--scale",
        nargs="?",
        const=",".join(str(m) for m in SCALE_MILLIONS),
        help="millions of records to run today's code at, e.g. 1,2,5,10,20 (the default)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    try:
        sizes = [int(float(m) * 1_000_000) for m in args.scale.split(",")] if args.scale else []
    except ValueError:
        parser.exit(2, f"--scale takes millions separated by commas, got {args.scale!r}\n")
    if args.records <= 0 or any(n <= 0 for n in sizes):
        parser.exit(2, "record counts must be positive\n")

    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as scratch_name:
        scratch = Path(scratch_name)
        root = args.sample_dir or scratch
        if sizes:
            points = []
            for records in sizes:
                sample = _sample(records, root / str(records))
                files = _files(sample)
                before = load_average()
                timing = in_moto(functools.partial(run, files))
                _check(timing.result, sample.expected)
                points.append(ScalePoint(records, timing, f"{before:.1f}-{load_average():.1f}"))
                print(f"  {records:,} records: {sum(timing.steps.values()):.1f} s", flush=True)
            print_curve(points)
            print("wrote", write_curve(points, args.results))
            return
        sample = _sample(args.records, root / str(args.records))
        files = _files(sample)
        before = load_average()
        new = in_moto(lambda: run(files))
        _check(new.result, sample.expected)
        old = None if args.no_baseline else _baseline(files, scratch)
        load = f"{before:.1f}-{load_average():.1f}"
    print_table(
        f"SQL steps on the DuckDB Data API stand-in, {args.records:,} records, real counties",
        _goal_rows(args.records, new, old, load),
    )
    if old is not None:
        same = old.result == expected_summary(sample.expected)
        print(f"  baseline's counts {'equal' if same else 'DIFFER from'} the sample's facts")


if __name__ == "__main__":
    main()
