"""Benchmark: calc_stats on a national-size month, and the sparse statistics against dense numpy.

`python -m bench.stats` measures, in one run on this machine:

* the calc_stats task itself (`tasks.calc_stats.run`) on 3,200 counties x 100,000 species with
  5,000,000 presences: reading every count table from S3, the county, state and AIANNH
  matrices, the statistics, serialising and writing every file and figure, and the marker.
  The task runs in a child process against moto's server (started here, holding the inputs),
  so its wall time and peak RSS are the task's own; interpreter start-up and imports are
  outside the timed call and inside the RSS. The state and AIANNH tables are aggregated from
  the county one as the SQL does, so the task does all three dimensions' work, not one.
* the statistics core (matrices from site/taxon/count arrays, then every statistic) at
  3,200 x 10,000 with the same density, sparse (bisonflow.pam) against a straightforward
  dense numpy implementation of the same formulas (the baseline), best of three each; the
  two must agree to the last few bits or the benchmark fails.

Presences are drawn uniformly at random (distinct cells); counts are 1 + geometric.
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
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from moto.server import ThreadedMotoServer

from bench import Measurement, peak_rss_mb, print_table, timed
from bisonflow import pam
from bisonflow.dimensions import (
    AIANNH,
    COUNTY,
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
TASK_GOAL_SECONDS = 10.0
TASK_GOAL_RSS_MB = 2048.0
NUM_STATES = 52
NUM_AIANNH = 700
#: Redshift writes one part per slice; a small cluster has a few.
PARTS_PER_TABLE = 4
#: Shares of taxa in each listed tier (riis_schema.LISTED_ASSESSMENTS order: established,
#: invasive, widespread invasive); the rest are presumed native.
RIIS_SHARES = (0.07, 0.02, 0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=3_200)
    parser.add_argument("--species", type=int, default=100_000)
    parser.add_argument("--presences", type=int, default=5_000_000)
    parser.add_argument("--baseline-species", type=int, default=10_000)
    parser.add_argument("--task-child", help=argparse.SUPPRESS)  # the spec, in the child
    args = parser.parse_args()
    if args.task_child:
        run_task_child(args.task_child)
        return

    task = measure_task(args.sites, args.species, args.presences)
    density = args.presences / (args.sites * args.species)
    presences = round(density * args.sites * args.baseline_species)
    sparse_s, dense_s = compare_with_dense(args.sites, args.baseline_species, presences)
    size = f"{args.sites:,} x {args.species:,}, {args.presences:,} presences"
    small = f"{args.sites:,} x {args.baseline_species:,}, {presences:,} presences"
    print_table(
        "calc_stats (tasks.calc_stats.run in a child process; S3 on moto's server)",
        [
            Measurement(f"task wall time, {size}", task["seconds"], "s", TASK_GOAL_SECONDS),
            Measurement(f"task CPU time (user + sys), {size}", task["cpu_seconds"], "s"),
            Measurement(f"task peak RSS, {size}", task["peak_rss_mb"], "MB", TASK_GOAL_RSS_MB),
            Measurement(
                f"statistics core (sparse), {small}",
                sparse_s,
                "s",
                baseline_name="dense numpy",
                baseline=dense_s,
            ),
        ],
    )
    print(f"\ntask result: {json.dumps(task['result'])}")
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")


# --- the task in a child process -------------------------------------------------------------


def measure_task(sites: int, species: int, presences: int) -> dict[str, Any]:
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
        (_, generate_s) = timed(lambda: upload_month(s3, sites, species, presences))
        print(f"generated and uploaded the month's count tables in {generate_s:.1f}s", flush=True)
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
        with tempfile.TemporaryDirectory() as tmp:
            spec_path = Path(tmp) / "spec.json"
            spec_path.write_text(spec.to_json())
            env = os.environ | {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_REGION": "us-east-1",
            }
            child = subprocess.run(
                [sys.executable, "-m", "bench.stats", "--task-child", str(spec_path)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
        if child.returncode != 0:
            raise RuntimeError(f"the task failed:\n{child.stdout}\n{child.stderr}")
        for line in child.stderr.splitlines():  # the task's progress, without a line per file
            if "wrote s3://" not in line:
                print(line, flush=True)
        return json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        server.stop()


def run_task_child(spec_path: str) -> None:
    """In the child: run the task once and print its time, peak RSS and result as JSON."""
    from contextlib import redirect_stdout

    from tasks import calc_stats

    spec = TaskSpec.from_json(Path(spec_path).read_text())
    cpu_before = _cpu_seconds()
    with redirect_stdout(sys.stderr):  # the task's progress lines; stdout is the answer
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
    state counts per RIIS assessment, each as UNLOAD-style parquet parts."""
    rng = np.random.default_rng(2026)
    county = county_species_counts(rng, sites, species, presences)
    state = _sum_by(county, STATE.site_column)
    in_area = pc.equal(pc.utf8_slice_codeunits(county["geoid"], 4, 5), "0")
    aiannh = _sum_by(county.filter(in_area), AIANNH.site_column)
    tables = {
        LAYOUT.species_counts_prefix("county"): county,
        LAYOUT.species_counts_prefix("state"): state,
        LAYOUT.species_counts_prefix("aiannh"): aiannh,
        LAYOUT.region_counts_prefix("state"): region_counts(state, STATE.site_column),
        LAYOUT.region_counts_prefix("county"): region_counts(county, COUNTY.site_column),
        LAYOUT.region_counts_prefix("aiannh"): region_counts(aiannh, AIANNH.site_column),
    }
    for prefix, table in tables.items():
        step = -(-table.num_rows // PARTS_PER_TABLE)
        for part in range(PARTS_PER_TABLE):
            sink = io.BytesIO()
            pq.write_table(table.slice(part * step, step), sink)
            s3.put_object(
                Bucket=BUCKET, Key=f"{prefix}{part:04d}_part_00.parquet", Body=sink.getvalue()
            )


def county_species_counts(
    rng: np.random.Generator, sites: int, species: int, presences: int
) -> pa.Table:
    cells = rng.choice(sites * species, size=presences, replace=False)
    site, taxon = cells // species, cells % species
    geoids = pa.array([f"{i:05d}" for i in range(sites)])
    states = pa.array([f"S{i * NUM_STATES // sites:02d}" for i in range(sites)])
    areas = pa.array([f"{i // 10 % NUM_AIANNH:04d}" for i in range(sites)])
    assessment = _assessments(rng, species)
    names = pa.array([f"Genus{t // 10} species{t}" for t in range(species)])
    take_site = pa.array(site)
    return pa.table(
        {
            "geoid": geoids.take(take_site),
            "state": states.take(take_site),
            "county": pa.DictionaryArray.from_arrays(pa.array(site.astype(np.int32)), geoids),
            "riis_region": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(presences, np.int32)), pa.array(["L48"])
            ),
            "aiannh_geoid": areas.take(take_site),
            "specieskey": pa.array(1_000_000 + taxon).cast(pa.string()),  # text, as UNLOADed
            "species": pa.DictionaryArray.from_arrays(pa.array(taxon.astype(np.int32)), names),
            "riis_assessment": pa.DictionaryArray.from_arrays(
                pa.array(assessment[taxon]), pa.array(ASSESSMENTS)
            ),
            "occ_count": pa.array(1 + rng.geometric(0.3, presences)),
        }
    )


def region_counts(table: pa.Table, site_column: str) -> pa.Table:
    """Occurrences and species per site, overall and per assessment (REGION_COUNT_COLUMNS)."""
    decoded = table.select([site_column, "specieskey", "riis_assessment", "occ_count"]).cast(
        pa.schema(
            [
                (site_column, pa.string()),
                ("specieskey", pa.string()),
                ("riis_assessment", pa.string()),
                ("occ_count", pa.int64()),
            ]
        )
    )
    by = decoded.group_by([site_column, "riis_assessment"]).aggregate(
        [("occ_count", "sum"), ("specieskey", "count")]
    )
    sites = pc.unique(decoded[site_column])
    columns: dict[str, Any] = {site_column: sites}
    totals = np.zeros((2, len(sites)), dtype=np.int64)
    index = {s: i for i, s in enumerate(sites.to_pylist())}
    for assessment in ASSESSMENTS:
        rows = by.filter(pc.equal(by["riis_assessment"], assessment))
        values = np.zeros((2, len(sites)), dtype=np.int64)
        at = [index[s] for s in rows[site_column].to_pylist()]
        values[0, at] = rows["occ_count_sum"].to_numpy()
        values[1, at] = rows["specieskey_count"].to_numpy()
        for measure, counts in zip(MEASURES, values, strict=True):
            columns[assessment_column(assessment, measure)] = counts
        totals += values
    columns["occ_count"], columns["species_count"] = totals
    return pa.table({name: columns[name] for name in (site_column, *REGION_COUNT_COLUMNS)})


def _sum_by(county: pa.Table, site_column: str) -> pa.Table:
    keys = [site_column, "specieskey", "species", "riis_assessment"]
    decoded = county.select([*keys, "occ_count"]).cast(
        pa.schema([(k, pa.string()) for k in keys]).append(pa.field("occ_count", pa.int64()))
    )
    summed = decoded.group_by(keys).aggregate([("occ_count", "sum")])
    return summed.rename_columns([*keys, "occ_count"])


def _assessments(rng: np.random.Generator, species: int) -> npt.NDArray[np.int32]:
    """Index into ASSESSMENTS per species: a listed tier with its RIIS_SHARES chance, else
    presumed native (the last)."""
    tier = np.searchsorted(np.cumsum(RIIS_SHARES), rng.random(species), side="right")
    return tier.astype(np.int32)  # len(RIIS_SHARES) = the index of presumed native


# --- sparse against dense -------------------------------------------------------------------


def compare_with_dense(sites: int, species: int, presences: int) -> tuple[float, float]:
    """Best-of-three times of the sparse and dense statistics on the same triples; raises if
    any statistic differs."""
    rng = np.random.default_rng(7)
    cells = rng.choice(sites * species, size=presences, replace=False)
    labels = pa.array([f"{i:05d}" for i in range(sites)])
    site_labels = labels.take(pa.array(cells // species))
    taxa = pa.array(1_000_000 + cells % species).cast(pa.string())  # taxon keys are text
    counts = 1 + rng.geometric(0.3, presences)
    sparse_times, dense_times = [], []
    for _ in range(3):
        sparse, seconds = timed(lambda: sparse_statistics(site_labels, taxa, counts))
        sparse_times.append(seconds)
        dense, seconds = timed(lambda: dense_statistics(site_labels, taxa, counts))
        dense_times.append(seconds)
    for name in dense:
        np.testing.assert_allclose(sparse[name], dense[name], rtol=1e-12, err_msg=name)
    return min(sparse_times), min(dense_times)


def sparse_statistics(sites: pa.Array, taxa: pa.Array, counts: np.ndarray) -> dict[str, Any]:
    p = pam.build_matrices(sites, taxa, counts).pam
    by_site, by_species = pam.site_stats(p), pam.species_stats(p)
    out = {name: by_site[name].to_numpy() for name in pam.SITE_STATS_COLUMNS[1:]}
    out |= {name: by_species[name].to_numpy() for name in pam.SPECIES_STATS_COLUMNS[1:]}
    (diversity,) = pam.diversity_stats(p).to_pylist()
    return out | {name: np.array([diversity[name]]) for name in pam.DIVERSITY_COLUMNS}


def dense_statistics(sites: pa.Array, taxa: pa.Array, counts: np.ndarray) -> dict[str, Any]:
    """The published formulas on a dense N x S array, written the obvious way."""
    site_labels, rows = np.unique(np.asarray(sites.to_pylist(), dtype=object), return_inverse=True)
    taxon_labels, cols = np.unique(np.asarray(taxa.to_pylist(), dtype=object), return_inverse=True)
    heatmap = np.zeros((len(site_labels), len(taxon_labels)), dtype=np.int64)
    np.add.at(heatmap, (rows, cols), counts)
    presence = (heatmap >= 1).astype(np.int64)
    presence = presence[presence.sum(axis=1) > 0][:, presence.sum(axis=0) > 0]
    n, s = presence.shape
    alpha, omega = presence.sum(axis=1), presence.sum(axis=0)
    phi, psi = presence @ omega, alpha @ presence
    return {
        "alpha": alpha,
        "alpha_proportional": alpha / s,
        "phi": phi,
        "phi_average_proportional": phi / (n * alpha),
        "omega": omega,
        "omega_proportional": omega / n,
        "psi": psi,
        "psi_average_proportional": psi / (s * omega),
        "num_sites": np.array([n]),
        "num_species": np.array([s]),
        "whittaker": np.array([s / (omega / n).sum()]),
        "lande": np.array([s - (omega / n).sum()]),
        "legendre": np.array([omega.sum() - (omega**2).sum() / n]),
    }


if __name__ == "__main__":
    main()
