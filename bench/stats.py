"""Benchmark: calc_stats on a national-size month, and the sparse statistics against dense numpy.

`python -m bench.stats` measures, in one run on this machine (issue 13 item 3):

* the calc_stats task itself (`tasks.calc_stats.run`) on each of CASES: today's 3,200
  counties x 100,000 species with 5,000,000 presences (goal 10 s, 2 GB) and the national
  3,230 x 300,000 with 50,000,000 (goal 20 s, 4 GB): reading every table from S3, the
  county, state and AIANNH matrices, statistics, figures, maps, every file and the marker
  (the CSV copies of the tables are the aggregate step's UNLOADs now: `bench.aggregate`).
  The task runs in a child process against moto's server (started here, holding the
  inputs), so its wall time and peak RSS are its own; interpreter start-up and imports are
  outside the timed call and inside the RSS. State and AIANNH tables are aggregated from
  the county one as the SQL does. Each case's baseline is the same task from
  BASELINE_COMMIT's tree (or `--baseline-commit`'s), on the same inputs, right after
  (`--no-baseline` skips it; the national case's only with `--baseline-all`: that commit
  peaked at 19.8 GB there).
  BISONFLOW_BENCH_PROFILE=<path> writes a cProfile of the child. The child's progress
  lines are prefixed with the time, its resident set and the peak since the previous line
  (sampled every RSS_SAMPLE_SECONDS): a memory profile by phase. After the task, the rate
  at which moto's server takes parts is measured on the same server (`stand_in_floor`):
  the outputs' bytes over that rate is the time the stand-in alone needs for them.
  `--cases tenth` runs the national shape with a tenth of the presences, for profiling.
* the statistics core at 3,200 x 10,000 with today's density, sparse (bisonflow.stats.pam)
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from bench import Measurement, peak_rss_mb, print_table, timed
from bench.stats_core import compare_with_dense
from bench.stats_month import BUCKET, LAYOUT, upload_counties, upload_month
from bench.stats_stand_in import install as install_lean_completion
from bisonflow.stats.streamed_objects import PART_SIZE
from bisonflow.steps.taskspec import (
    CalcStatsInputs,
    CalcStatsOutputs,
    CalcStatsSettings,
    CalcStatsSpec,
    TaskSpec,
)

#: The calc_stats code before the national case was worked on ("today's code"): the
#: national case's baseline runs this commit's tasks/ and bisonflow/ in the same child.
BASELINE_COMMIT = "6ba8811"
#: Set to a path, the child profiles the task with cProfile and writes its stats there.
PROFILE_VARIABLE = "BISONFLOW_BENCH_PROFILE"
#: The stand-in's upload rate is measured with this many MB, this many parts at a time.
STAND_IN_PROBE_MB = 256
STAND_IN_THREADS = 8
#: How often the child samples its resident set for the per-phase memory profile.
RSS_SAMPLE_SECONDS = 0.1
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Case:
    """One month size and the task's goals on it (issue 13 item 3)."""

    name: str
    sites: int
    species: int
    presences: int
    goal_seconds: float | None
    goal_rss_mb: float | None
    #: Whether the baseline runs by default: at BASELINE_COMMIT the national case peaked at
    #: 19.8 GB, and a second child of that size beside the first was OOM-killed on this
    #: shared 23 GB machine (docs/benchmarks.md has its figures); `--baseline-all` runs it anyway.
    baseline_by_default: bool = True

    @property
    def size(self) -> str:
        return f"{self.sites:,} x {self.species:,}, {self.presences:,} presences"


CASES = {
    "today": Case("today", 3_200, 100_000, 5_000_000, 10.0, 2048.0),
    "national": Case("national", 3_230, 300_000, 50_000_000, 20.0, 4096.0, False),
    # The national shape with a tenth of its presences, for profiling: no goal of its own.
    "tenth": Case("tenth", 3_230, 300_000, 5_000_000, None, None),
}
#: What `./scripts/bench stats` runs unless --cases says otherwise.
DEFAULT_CASES = ("today", "national")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(DEFAULT_CASES))
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help=f"skip each case's run on commit {BASELINE_COMMIT} (today's code)",
    )
    parser.add_argument(
        "--baseline-all", action="store_true", help="run the baseline of every case, national too"
    )
    parser.add_argument(
        "--baseline-commit",
        default=BASELINE_COMMIT,
        help="the commit whose tasks/ and bisonflow/ the baseline runs",
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
        baseline = args.baseline_commit if wanted else None
        task, before = measure_task(case, baseline)
        results[name] = task["result"]
        rows += task_rows(case, task, before, args.baseline_commit)
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


def task_rows(
    case: Case, task: dict[str, Any], before: dict[str, Any] | None, commit: str
) -> list[Measurement]:
    """Wall time, CPU time and peak RSS of one case, against the baseline's when measured."""
    lines = (
        ("task wall time", "seconds", "s", case.goal_seconds),
        ("task CPU time (user + sys)", "cpu_seconds", "s", None),
        ("task peak RSS", "peak_rss_mb", "MB", case.goal_rss_mb),
    )
    rows = [
        Measurement(
            f"{what}, {case.size}",
            task[field],
            unit,
            goal,
            None if before is None else f"commit {commit}",
            None if before is None else before[field],
        )
        for what, field, unit, goal in lines
    ]
    return rows + [
        Measurement(f"  outputs written, {case.name}", task["output_mb"], "MB"),
        Measurement(f"  S3 stand-in's upload rate, {case.name}", task["stand_in_mb_per_s"], "MB/s"),
        Measurement(
            f"  outputs / that rate: the S3 stand-in's own time for them, {case.name}",
            task["stand_in_floor_s"],
            "s",
        ),
    ]


# --- the task in a child process -------------------------------------------------------------


def measure_task(
    case: Case, baseline_commit: str | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The task's answer on `case` (run_task_child's JSON), and, when `baseline_commit` is
    given, the same task from that commit's tree on the same inputs, run after it (one
    national-size task at a time), so both see the same machine within minutes."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access line per request
    install_lean_completion()  # moto held a completed upload 4x: 18 GB for the 4.5 GB CSV
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
        spec = CalcStatsSpec(
            month=LAYOUT.month,
            bucket=BUCKET,
            execution="bench",
            token_parameter="/bisonflow/task-tokens/bench/calc_stats",
            inputs=CalcStatsInputs.for_layout(LAYOUT, BUCKET),
            outputs=CalcStatsOutputs(summary=LAYOUT.summary_prefix, record=LAYOUT.done_marker_key),
            settings=CalcStatsSettings(min_presence_count=1),
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
            baseline_spec_path = Path(tmp) / "baseline_spec.json"
            baseline_spec_path.write_text(untyped_spec_json(spec))
            inputs = set(_summary_sizes(s3))
            answer = _run_child(spec_path, env, Path.cwd(), case.name)
            answer |= stand_in_floor(s3, inputs)
            if baseline_commit is None:
                return answer, None
            tree = Path(tmp) / "baseline"
            _export_tree(baseline_commit, tree)
            label = f"{case.name} on {baseline_commit}"
            return answer, _run_child(baseline_spec_path, env, tree, label)
    finally:
        server.stop()


def untyped_spec_json(spec: CalcStatsSpec) -> str:
    """The spec as a tree before the typed task contract reads it (BASELINE_COMMIT's: string
    keys `<dim>_species_counts`, `<dim>_counts`, `summary`, `done`, and `params`), so the
    baseline runs on the same inputs with the same settings."""
    inputs = spec.inputs
    return json.dumps(
        {
            "task": spec.task,
            "month": spec.month,
            "bucket": spec.bucket,
            "execution": spec.execution,
            "token_parameter": spec.token_parameter,
            "inputs": {f"{d}_species_counts": p for d, p in inputs.species_counts.items()}
            | {"state_counts": inputs.state_counts, "county_counts": inputs.county_counts},
            "outputs": {"summary": spec.outputs.summary, "done": spec.outputs.record},
            "params": {
                "min_presence_count": spec.settings.min_presence_count,
                "gbif_citation": inputs.gbif_citation,
            },
        }
    )


def _summary_sizes(s3: Any) -> dict[str, int]:
    """Key -> size of every object under the month's summary prefix (inputs and outputs)."""
    listed = s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=LAYOUT.summary_prefix
    )
    return {o["Key"]: o["Size"] for page in listed for o in page.get("Contents", [])}


def stand_in_floor(s3: Any, inputs: set[str]) -> dict[str, float]:
    """What moto's server alone needs to take in the task's outputs: their bytes (the
    objects under the month's summary prefix but the `inputs`, which are there too) over the
    rate at which it accepts STAND_IN_PROBE_MB in parts of streamed_objects.PART_SIZE,
    STAND_IN_THREADS at a time, measured right after the task on the same server (moto
    parses, hashes and spools every part in Python)."""
    sizes = _summary_sizes(s3)
    output_mb = sum(size for key, size in sizes.items() if key not in inputs) / 2**20
    part = os.urandom(PART_SIZE)
    count = STAND_IN_PROBE_MB * 2**20 // PART_SIZE
    key = "bench/stand-in-probe"
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    started = time.perf_counter()
    with ThreadPoolExecutor(STAND_IN_THREADS) as pool:
        list(
            pool.map(
                lambda n: s3.upload_part(
                    Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=n, Body=part
                ),
                range(1, count + 1),
            )
        )
    rate = count * PART_SIZE / 2**20 / (time.perf_counter() - started)
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload)
    return {"output_mb": output_mb, "stand_in_mb_per_s": rate, "stand_in_floor_s": output_mb / rate}


def _run_child(spec_path: Path, env: dict[str, str], tree: Path, label: str) -> dict[str, Any]:
    """The task in a fresh interpreter importing `tree`'s code (this tree, or a baseline's);
    its progress lines are printed as they come (a run killed midway still shows its phases),
    without the line per file written."""
    with subprocess.Popen(
        [sys.executable, "-m", "bench.stats", "--task-child", str(spec_path)],
        env=env | {"PYTHONPATH": str(tree)},
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stderr is not None
        errors = []
        for line in child.stderr:  # the answer on stdout is one short line: no deadlock
            errors.append(line)
            if "wrote s3://" not in line:
                print(f"[{label}] {line.rstrip()}", flush=True)
        answer = child.stdout.read()
    if child.returncode != 0:
        raise RuntimeError(f"the task ({label}) failed:\n{answer}\n{''.join(errors[-40:])}")
    return json.loads(answer.strip().splitlines()[-1])


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
    """In the child: run the task once and print its time, peak RSS and result as JSON. The
    task's progress lines go to stderr, each prefixed with the time since the start, the
    resident set then and its peak since the previous line (sampled every RSS_SAMPLE_SECONDS):
    a memory profile by phase."""
    from contextlib import redirect_stdout

    from tasks import calc_stats

    spec = TaskSpec.from_json(Path(spec_path).read_text())
    assert isinstance(spec, CalcStatsSpec), spec.task
    cpu_before = _cpu_seconds()
    profile_path = os.environ.get(PROFILE_VARIABLE)
    progress = _PhaseLog(sys.stderr)
    with redirect_stdout(progress):  # the task's progress lines; stdout is the answer
        if profile_path:  # cProfile sees the calling thread; the pools' threads show as waits
            import cProfile

            with cProfile.Profile() as profile:
                result, seconds = timed(lambda: calc_stats.run(spec))
            profile.dump_stats(profile_path)
        else:
            result, seconds = timed(lambda: calc_stats.run(spec))
    progress.stop()
    answer = {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "peak_rss_mb": peak_rss_mb(),
        "result": result,
    }
    print(json.dumps(answer))


class _PhaseLog(io.TextIOBase):
    """A text stream that prefixes every line with [elapsed s | RSS now | peak RSS since the
    previous line], the peak from a thread sampling /proc/self/statm."""

    def __init__(self, out: Any) -> None:
        self._out, self._started, self._peak = out, time.perf_counter(), 0.0
        self._pending = ""
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            now = _rss_mb()
            peak, self._peak = max(self._peak, now), now
            elapsed = time.perf_counter() - self._started
            self._out.write(f"[{elapsed:6.1f}s {now:6.0f} MB, peak {peak:6.0f} MB] {line}\n")
        return len(text)

    def stop(self) -> None:
        self._done.set()

    def _sample(self) -> None:
        while not self._done.wait(RSS_SAMPLE_SECONDS):
            self._peak = max(self._peak, _rss_mb())


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES / 2**20


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
