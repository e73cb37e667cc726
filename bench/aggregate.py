"""Benchmark: subset + regions + RIIS status + aggregation over ten million GBIF records.

`python -m bench.aggregate` generates a sample month of 10,000,000 records (not timed; kept
with --sample-dir to reuse), puts it, the county and AIANNH boundaries and the annotated
US-RIIS list into an in-process moto S3 (moto.mock_aws), and runs the workflow's real SQL
batches, `subset` then `aggregate`, through the DuckDB Redshift Data API stand-in, batch
after batch as the state machine does (bisonflow.local.redshift_duckdb.run_batches). The
measured figure is the wall time of those batches: mounting the snapshot, the subset, both
boundary loads with their grid cells, point in polygon for every record against counties and
the 704 real AIANNH polygons (an equality join on the cell id, an exact ST_Covers against
the whole polygon for points in edge cells: `bisonflow.boundary_sql`), RIIS status, the
count tables of three dimensions, the six UNLOADs and the summary.

Baseline, measured in the same run on the same data: the same batches with each hits table
made by a plain join of the points and the whole polygons on ST_Covers (`_plain_hits_sql`),
which DuckDB runs as its R-tree SPATIAL_JOIN. It is the fastest form on DuckDB and no form
for Redshift, which has no spatial index and would run it as a nested loop over a billion
points and thousands of polygons; the ratio is what the grid costs or saves on the laptop.
The subset step is the same in both.

The step's own result (occurrences per assessment and region, sites per dimension) must
equal the sample's expected facts, or the benchmark fails: a fast wrong answer is no result.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from bench import Measurement, print_table, timed
from bisonflow import boundary_sql, redshift_sql
from bisonflow.boundary_sql import BOUNDARY_SRID, Boundaries
from bisonflow.gbif_api import interpret_match
from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, MonthLayout
from bisonflow.local import redshift_duckdb
from bisonflow.redshift_sql import SqlTarget, statement_batches
from bisonflow.riis import annotated_csv, decode, parse_riis
from bisonflow.riis_schema import ASSESSMENTS, RIIS_REGIONS
from bisonflow.sample import SampleManifest, generate_sample
from bisonflow.statements import Summary, summary

GOAL_SECONDS = 30.0
RECORDS = 10_000_000
REGION = "us-east-1"
GBIF_BUCKET = "bisonflow-bench-gbif"
BISON_BUCKET = "bisonflow-bench-bison"


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
    return generate_sample(folder, records=records)


def _annotated_riis(sample: SampleManifest) -> bytes:
    """The US-RIIS list as annotate_riis writes it (bisonflow.riis.annotated_csv), each name
    judged from the sample's species-match answers as the task judges GBIF's."""
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    parsed = parse_riis(decode(sample.riis_csv.read_bytes()))
    matches = {r.query: interpret_match(table[r.query.name], r.query) for r in parsed.records}
    return annotated_csv(parsed.records, matches).encode("utf-8")


def _upload(s3: Any, sample: SampleManifest, layout: MonthLayout) -> None:
    for bucket in (GBIF_BUCKET, BISON_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for part in sorted(sample.snapshot_dir.iterdir()):
        s3.put_object(
            Bucket=GBIF_BUCKET, Key=layout.gbif_prefix + part.name, Body=part.read_bytes()
        )
    for key, shapefile in (
        (COUNTY_SHAPEFILE_KEY, sample.county_shapefile),
        (AIANNH_SHAPEFILE_KEY, sample.aiannh_shapefile),
    ):
        for suffix in (".shp", ".shx", ".dbf", ".prj"):
            body = shapefile.with_suffix(suffix).read_bytes()
            s3.put_object(Bucket=BISON_BUCKET, Key=key[: -len(".shp")] + suffix, Body=body)
    s3.put_object(Bucket=BISON_BUCKET, Key=layout.riis_annotated_key, Body=_annotated_riis(sample))


def _check(result: Summary, expected: dict[str, Any]) -> None:
    """The step's counts against the sample's facts; raises on any difference."""
    want = {
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
    if result != want:
        raise SystemExit(f"wrong counts:\n  got      {result}\n  expected {want}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--sample-dir", type=Path, help="keep (and reuse) the sample here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as scratch:
        sample = _sample(args.records, args.sample_dir or Path(scratch))
        layout = MonthLayout.for_month(sample.expected["snapshot"][:7])
        os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
        with mock_aws():
            redshift_duckdb.install()
            try:
                rows = _run(sample, layout)
            finally:
                redshift_duckdb.shutdown()
                redshift_duckdb.uninstall()
    print_table(f"SQL steps on the DuckDB Data API stand-in, {args.records:,} records", rows)


def _run(sample: SampleManifest, layout: MonthLayout) -> list[Measurement]:
    s3 = boto3.client("s3", region_name=REGION)
    data = boto3.client("redshift-data", region_name=REGION)
    _upload(s3, sample, layout)
    target = SqlTarget(gbif_bucket=GBIF_BUCKET, bison_bucket=BISON_BUCKET, region=REGION)

    def step(name: str, workgroup: str) -> str:
        return redshift_duckdb.run_batches(
            data, statement_batches(name, layout, target), workgroup, timeout=3600
        )

    _, subset_s = timed(lambda: step("subset", "bench"))
    last, aggregate_s = timed(lambda: step("aggregate", "bench"))
    _check(summary(data, last), sample.expected)
    redshift_duckdb.shutdown()  # frees the first database before the baseline builds its own

    redshift_sql.hits_sql = _plain_hits_sql
    try:
        _, plain_subset_s = timed(lambda: step("subset", "bench-plain"))
        last, plain_aggregate_s = timed(lambda: step("aggregate", "bench-plain"))
    finally:
        redshift_sql.hits_sql = boundary_sql.hits_sql
    _check(summary(data, last), sample.expected)

    baseline = "R-tree join"
    return [
        Measurement(
            "subset + regions + RIIS status + aggregation",
            subset_s + aggregate_s,
            goal=GOAL_SECONDS,
            baseline_name=baseline,
            baseline=plain_subset_s + plain_aggregate_s,
        ),
        Measurement(
            "  aggregate step (regions, RIIS status, counts, UNLOAD)",
            aggregate_s,
            baseline_name=baseline,
            baseline=plain_aggregate_s,
        ),
        Measurement("  subset step (mount, filter, copy)", subset_s),
    ]


def _plain_hits_sql(subset: str, boundaries: Boundaries, hits: str) -> str:
    """The baseline's hits table: every point joined to the whole polygons on ST_Covers,
    lowest GEOID first, as `boundary_sql.hits_sql` decides ties."""
    point = f"ST_SetSRID(ST_Point(s.decimallongitude, s.decimallatitude), {BOUNDARY_SRID})"
    return f"""CREATE TABLE {hits} AS
SELECT gbifid, geoid
FROM (
    SELECT s.gbifid, b.geoid,
           ROW_NUMBER() OVER (PARTITION BY s.gbifid ORDER BY b.geoid) AS pick
    FROM {subset} AS s
    JOIN {boundaries.table} AS b ON ST_Covers(ST_SetSRID(b.shape, {BOUNDARY_SRID}), {point})
) AS covered
WHERE pick = 1"""


if __name__ == "__main__":
    main()
