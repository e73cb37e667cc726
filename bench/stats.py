"""Benchmark: calc_stats on a national-size month, and the sparse statistics against dense numpy.

`python -m bench.stats` measures, in one run on this machine (issue 13 item 3):

* the calc_stats task itself (`tasks.calc_stats.run`) on each of CASES: today's 3,200
  counties x 100,000 species with 5,000,000 presences (goal 10 s, 2 GB) and the national
  3,230 x 300,000 with 50,000,000 (goal 20 s, 4 GB): reading every table from S3, the
  county, state and AIANNH matrices, statistics, CSV copies, figures, maps, every file and
  the marker. The task runs in a child process against moto's server (started here, holding
  the inputs), so its wall time and peak RSS are its own; interpreter start-up and imports
  are outside the timed call and inside the RSS. State and AIANNH tables are aggregated from
  the county one as the SQL does. Each case's baseline is the same task from
  BASELINE_COMMIT's tree, on the same inputs, right after (`--no-baseline` skips it; the
  national case's only with `--baseline-all`: that commit peaked at 19.8 GB there).
  BISONFLOW_BENCH_PROFILE=<path> writes a cProfile of the child.
* the statistics core at 3,200 x 10,000 with today's density, sparse (bisonflow.pam)
  against a straightforward dense numpy implementation of the same formulas, best of three
  each; the two must agree to the last few bits or the benchmark fails.

Presences are distinct cells drawn uniformly at random; counts are 1 + geometric.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from moto.server import ThreadedMotoServer

from bench import Measurement, peak_rss_mb, print_table, timed
from bench.stats_core import compare_with_dense
from bisonflow.dimensions import (
    AIANNH,
    BY_NAME,
    MEASURES,
    REGION_COUNT_COLUMNS,
    STATE,
    assessment_column,
)
from bisonflow.layout import COUNTY_SHAPEFILE_KEY, DIMENSIONS, MonthLayout
from bisonflow.provenance import citation_uri
from bisonflow.riis_schema import ASSESSMENTS
from bisonflow.sample.counties import load_counties, write_county_shapefile
from bisonflow.taskspec import TaskSpec

BUCKET = "bisonflow-bench-stats"
LAYOUT = MonthLayout.for_month("2026-11")
NUM_STATES = 52
NUM_AIANNH = 700
#: Redshift writes one part per slice; a small cluster has a few.
PARTS_PER_TABLE = 4
#: Shares of taxa in each listed tier (riis_schema.LISTED_ASSESSMENTS order: established,
#: invasive, widespread invasive); the rest are presumed native.
RIIS_SHARES = (0.07, 0.02, 0.01)
#: The calc_stats code before the national case was worked on ("today's code"): the
#: national case's baseline runs this commit's tasks/ and bisonflow/ in the same child.
BASELINE_COMMIT = "6ba8811"
#: Set to a path, the child profiles the task with cProfile and writes its stats there.
PROFILE_VARIABLE = "BISONFLOW_BENCH_PROFILE"


@dataclass(frozen=True)
class Case:
    """One month size and the task's goals on it (issue 13 item 3)."""

    name: str
    sites: int
    species: int
    presences: int
    goal_seconds: float
    goal_rss_mb: float
    #: Whether the baseline runs by default: at BASELINE_COMMIT the national case peaked at
    #: 19.8 GB, and a second child of that size beside the first was OOM-killed on this
    #: shared 23 GB machine (README records its figures); `--baseline-all` runs it anyway.
    baseline_by_default: bool = True

    @property
    def size(self) -> str:
        return f"{self.sites:,} x {self.species:,}, {self.presences:,} presences"


CASES = {
    "today": Case("today", 3_200, 100_000, 5_000_000, 10.0, 2048.0),
    "national": Case("national", 3_230, 300_000, 50_000_000, 20.0, 4096.0, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"skip each case's run on commit {BASELINE_COMMIT} (today's code)",
    )
    parser.add_argument(
        "--baseline-all", action="store_true", help="run the baseline of every case, national too"
    )
    parser.add_argument("--baseline-species", type=int, default=10_000)
    parser.add_argument("--task-child", help=argparse.SUPPRESS)  # the spec, in the child
    args = parser.parse_args()
    if args.task_child:
        run_task_child(args.task_child)
        return

    rows: list[Measurement] = []
    results = {}
    for name in args.cases:
        case = CASES[name]
        wanted = args.baseline_all or (case.baseline_by_default and not args.no_baseline)
        baseline = BASELINE_COMMIT if wanted else None
        task, before = measure_task(case, baseline)
        results[name] = task["result"]
        rows += task_rows(case, task, before)
    today = CASES["today"]
    density = today.presences / (today.sites * today.species)
    presences = round(density * today.sites * args.baseline_species)
    sparse_s, dense_s = compare_with_dense(today.sites, args.baseline_species, presences)
    rows.append(
        Measurement(
            f"statistics core (sparse), {today.sites:,} x {args.baseline_species:,}, "
            f"{presences:,} presences",
            sparse_s,
            "s",
            baseline_name="dense numpy",
            baseline=dense_s,
        )
    )
    print_table("calc_stats (tasks.calc_stats.run in a child process; S3 on moto's server)", rows)
    for name, result in results.items():
        print(f"\n{name} task result: {json.dumps(result)}")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


def task_rows(case: Case, task: dict[str, Any], before: dict[str, Any] | None) -> list[Measurement]:
    """Wall time, CPU time and peak RSS of one case, against the baseline's when measured."""
    lines = (
        ("task wall time", "seconds", "s", case.goal_seconds),
        ("task CPU time (user + sys)", "cpu_seconds", "s", None),
        ("task peak RSS", "peak_rss_mb", "MB", case.goal_rss_mb),
    )
    return [
        Measurement(
            f"{what}, {case.size}",
            task[field],
            unit,
            goal,
            None if before is None else f"commit {BASELINE_COMMIT}",
            None if before is None else before[field],
        )
        for what, field, unit, goal in lines
    ]


# --- the task in a child process -------------------------------------------------------------


def measure_task(
    case: Case, baseline_commit: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The task's answer on `case` (run_task_child's JSON), and, when `baseline_commit` is
    given, the same task from that commit's tree on the same inputs, run after it (one
    national-size task at a time), so both see the same machine within minutes."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        s3.create_bucket(Bucket=BUCKET)
        # calc_stats copies the snapshot's citation.txt beside the outputs and refuses a month
        # without one, so the benchmark's month has one, in the bucket the spec names.
        s3.put_object(Bucket=BUCKET, Key=LAYOUT.gbif_citation_key, Body=b"bench citation\n")
        upload_counties(s3)
        (_, generate_s) = timed(lambda: upload_month(s3, case.sites, case.species, case.presences))
        print(f"{case.name}: generated and uploaded the month in {generate_s:.1f}s", flush=True)
        spec = TaskSpec(
            task="calc_stats",
            month=LAYOUT.month,
            bucket=BUCKET,
            execution="bench",
            token_parameter="/bisonflow/task-tokens/bench/calc_stats",
            inputs={
                **{f"{d}_species_counts": LAYOUT.species_counts_prefix(d) for d in DIMENSIONS},
                **{f"{d}_counts": LAYOUT.region_counts_prefix(d) for d in DIMENSIONS},
            },
            outputs={"summary": LAYOUT.summary_prefix, "done": LAYOUT.done_marker_key},
            params={"min_presence_count": 1, "gbif_citation": citation_uri(BUCKET, LAYOUT)},
        )
        env = os.environ | {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
        }
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = Path(tmp) / "spec.json"
            spec_path.write_text(spec.to_json())
            answer = _run_child(spec_path, env, Path.cwd(), case.name)
            if baseline_commit is None:
                return answer, None
            tree = Path(tmp) / "baseline"
            _export_tree(baseline_commit, tree)
            return answer, _run_child(spec_path, env, tree, f"{case.name} on {baseline_commit}")
    finally:
        server.stop()


def _run_child(spec_path: Path, env: dict[str, str], tree: Path, label: str) -> dict[str, Any]:
    """The task in a fresh interpreter importing `tree`'s code (this tree, or a baseline's)."""
    child = subprocess.run(
        [sys.executable, "-m", "bench.stats", "--task-child", str(spec_path)],
        env=env | {"PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"the task ({label}) failed:\n{child.stdout}\n{child.stderr}")
    for line in child.stderr.splitlines():  # the task's progress, without a line per file
        if "wrote s3://" not in line:
            print(f"[{label}] {line}", flush=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def _export_tree(commit: str, into: Path) -> None:
    """The files of `commit` (no checkout: the work tree is shared) in a new directory."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "bench", "bisonflow", "definitions", "tasks"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def run_task_child(spec_path: str) -> None:
    """In the child: run the task once and print its time, peak RSS and result as JSON."""
    from contextlib import redirect_stdout

    from tasks import calc_stats

    spec = TaskSpec.from_json(Path(spec_path).read_text())
    cpu_before = _cpu_seconds()
    profile_path = os.environ.get(PROFILE_VARIABLE)
    with redirect_stdout(sys.stderr):  # the task's progress lines; stdout is the answer
        if profile_path:  # cProfile sees the calling thread; the pools' threads show as waits
            import cProfile

            with cProfile.Profile() as profile:
                result, seconds = timed(lambda: calc_stats.run(spec))
            profile.dump_stats(profile_path)
        else:
            result, seconds = timed(lambda: calc_stats.run(spec))
    answer = {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "peak_rss_mb": peak_rss_mb(),
        "result": result,
    }
    print(json.dumps(answer))


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def upload_counties(s3: Any) -> None:
    """The real county boundaries the sample ships, where the aggregate step's input is: the
    task draws its maps on them (the benchmark's synthetic sites match none, so every county
    is drawn, as in a national month)."""
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / "cb_us_county.shp"
        write_county_shapefile(load_counties(), shp, (2026, 1, 1))
        for part in Path(tmp).iterdir():
            key = COUNTY_SHAPEFILE_KEY.removesuffix(".shp") + part.suffix
            s3.put_object(Bucket=BUCKET, Key=key, Body=part.read_bytes())


def upload_month(s3: Any, sites: int, species: int, presences: int) -> None:
    """County x species counts, the state and AIANNH tables aggregated from them, and the
    per-site counts per RIIS assessment, each as UNLOAD-style parquet parts.

    Built from integer codes with numpy (a 50,000,000-row table never exists as Python or
    Arrow strings here): each part is assembled from dictionary arrays just before it is
    written, so the parent holds the codes, one part and moto's copies of the files."""
    rng = np.random.default_rng(2026)
    site, taxon = _distinct_cells(rng, sites, species, presences)
    counts = 1 + rng.geometric(0.3, presences)
    assessment = _assessments(rng, species)
    labels = _site_labels(sites)
    state_of_site = np.arange(sites) * NUM_STATES // sites
    area_of_site = np.arange(sites) // 10 % NUM_AIANNH
    in_area = np.arange(sites) % 10 == 0  # GEOIDs ending in 0, as before
    keep = in_area[site]
    county = {"site": site, "taxon": taxon, "count": counts}
    state = _sum_by(state_of_site[site], taxon, counts, species)
    aiannh = _sum_by(area_of_site[site[keep]], taxon[keep], counts[keep], species)
    names = pa.array([f"Genus{t // 10} species{t}" for t in range(species)])
    keys = pa.array(np.arange(1_000_000, 1_000_000 + species)).cast(pa.string())  # as text
    riis = pa.array(ASSESSMENTS)
    state_labels = pa.array([f"S{i:02d}" for i in range(NUM_STATES)])
    area_labels = pa.array([f"{i:04d}" for i in range(NUM_AIANNH)])

    def species_columns(rows: dict[str, np.ndarray]) -> dict[str, pa.Array]:
        taxa = pa.array(rows["taxon"].astype(np.int32))
        return {
            "specieskey": _encoded(taxa, keys),
            "species": _encoded(taxa, names),
            "riis_assessment": _encoded(pa.array(assessment[rows["taxon"]]), riis),
            "occ_count": pa.array(rows["count"]),
        }

    def county_part(rows: dict[str, np.ndarray]) -> pa.Table:
        at = pa.array(rows["site"].astype(np.int32))
        return pa.table(
            {
                "geoid": _encoded(at, labels["geoid"]),
                "state": _encoded(at, labels["state"]),
                "county": _encoded(at, labels["geoid"]),
                "riis_region": _encoded(pa.array(np.zeros(len(at), np.int32)), pa.array(["L48"])),
                "aiannh_geoid": _encoded(at, labels["aiannh"]),
                **species_columns(rows),
            }
        )

    def upper_part(column: str, names: pa.Array) -> Any:
        return lambda rows: pa.table(
            {column: _encoded(pa.array(rows["site"].astype(np.int32)), names)}
            | species_columns(rows)
        )

    species_tables = {
        "county": (county, county_part),
        "state": (state, upper_part(STATE.site_column, state_labels)),
        "aiannh": (aiannh, upper_part(AIANNH.site_column, area_labels)),
    }
    site_names = {"county": labels["geoid"], "state": state_labels, "aiannh": area_labels}
    for dim, (rows, make_part) in species_tables.items():
        _put_parts(
            s3,
            LAYOUT.species_counts_prefix(dim),
            len(rows["site"]),
            lambda at, rows=rows, make_part=make_part: make_part(
                {name: values[at] for name, values in rows.items()}
            ),
        )
        table = region_counts(rows, assessment, BY_NAME[dim].site_column, site_names[dim])
        _put_parts(
            s3,
            LAYOUT.region_counts_prefix(dim),
            table.num_rows,
            lambda at, table=table: table.slice(at.start, at.stop - at.start),
        )


def _put_parts(s3: Any, prefix: str, rows: int, part_of: Callable[[slice], pa.Table]) -> None:
    """PARTS_PER_TABLE parquet parts of a table of `rows` rows, each made when written."""
    step = -(-rows // PARTS_PER_TABLE)
    for part in range(PARTS_PER_TABLE):
        sink = io.BytesIO()
        pq.write_table(part_of(slice(part * step, min(rows, (part + 1) * step))), sink)
        key = f"{prefix}{part:04d}_part_00.parquet"
        s3.put_object(Bucket=BUCKET, Key=key, Body=sink.getvalue())


def _encoded(indices: pa.Array, dictionary: pa.Array) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _site_labels(sites: int) -> dict[str, pa.Array]:
    """Per county: GEOID, state code and AIANNH area code (the county table's labels)."""
    return {
        "geoid": pa.array([f"{i:05d}" for i in range(sites)]),
        "state": pa.array([f"S{i * NUM_STATES // sites:02d}" for i in range(sites)]),
        "aiannh": pa.array([f"{i // 10 % NUM_AIANNH:04d}" for i in range(sites)]),
    }


def _distinct_cells(
    rng: np.random.Generator, sites: int, species: int, presences: int
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """`presences` distinct (site, taxon) cells drawn uniformly, in random order.

    `rng.choice(sites * species, replace=False)` permutes the whole population at this
    density (7.7 GB for 3,230 x 300,000), so cells are drawn as a Bernoulli process instead:
    geometric gaps give distinct sorted cells, a few too many, and the surplus is dropped at
    random (every cell kept with the same chance), then the cells are shuffled, as an
    UNLOAD's rows have no order."""
    population = sites * species
    if presences > population:
        raise ValueError(f"{presences:,} presences do not fit {sites:,} x {species:,} cells")
    draw = int(presences * 1.01) + 1000
    cells = np.cumsum(rng.geometric(min(1.0, draw / population), size=draw)) - 1
    cells = cells[cells < population]
    if len(cells) < presences:  # about one chance in a million; fall back to exact
        cells = rng.choice(population, size=presences, replace=False)
    else:
        surplus = rng.choice(len(cells), size=len(cells) - presences, replace=False)
        cells = np.delete(cells, surplus)
    rng.shuffle(cells)
    return (cells // species).astype(np.int32), (cells % species).astype(np.int32)


def _sum_by(
    site: npt.NDArray[np.int64], taxon: npt.NDArray[np.int32], counts: np.ndarray, species: int
) -> dict[str, np.ndarray]:
    """Counts summed per (site, taxon), as the SQL's GROUP BY does for a larger region; the
    name and assessment are the taxon's, so they need no grouping of their own."""
    cells, at = np.unique(site.astype(np.int64) * species + taxon, return_inverse=True)
    summed = np.bincount(at, weights=counts).astype(np.int64)  # exact: sums < 2**53
    return {"site": cells // species, "taxon": cells % species, "count": summed}


def region_counts(
    rows: dict[str, np.ndarray],
    assessment: npt.NDArray[np.int32],
    site_column: str,
    site_names: pa.Array,
) -> pa.Table:
    """Occurrences and species per site, overall and per assessment (REGION_COUNT_COLUMNS),
    for the sites with rows; a species-count row is one species at one site."""
    used = np.unique(rows["site"])
    at = np.searchsorted(used, rows["site"]) * len(ASSESSMENTS) + assessment[rows["taxon"]]
    size = len(used) * len(ASSESSMENTS)
    occurrences = np.bincount(at, weights=rows["count"], minlength=size).astype(np.int64)
    species = np.bincount(at, minlength=size).astype(np.int64)
    columns: dict[str, Any] = {site_column: site_names.take(pa.array(used))}
    by_measure = dict(zip(MEASURES, (occurrences, species), strict=True))
    for measure, values in by_measure.items():
        per_site = values.reshape(len(used), len(ASSESSMENTS))
        columns[measure] = per_site.sum(axis=1)
        for index, name in enumerate(ASSESSMENTS):
            columns[assessment_column(name, measure)] = per_site[:, index]
    return pa.table({name: columns[name] for name in (site_column, *REGION_COUNT_COLUMNS)})


def _assessments(rng: np.random.Generator, species: int) -> npt.NDArray[np.int32]:
    """Index into ASSESSMENTS per species: a listed tier with its RIIS_SHARES chance, else
    presumed native (the last)."""
    tier = np.searchsorted(np.cumsum(RIIS_SHARES), rng.random(species), side="right")
    return tier.astype(np.int32)  # len(RIIS_SHARES) = the index of presumed native


if __name__ == "__main__":
    main()
