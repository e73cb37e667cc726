"""Benchmark: what the CSV copies add to the aggregate step, on a species list of today's size.

`python -m bench.aggregate_unload` fills the aggregate step's county species work table
(`redshift_sql.species_table`) with ROWS rows shaped like calc_stats' benchmark month
(`bench.stats_month`: 3,200 counties, 100,000 species, 5,000,000 presences) and runs the
workflow's own two UNLOADs of it (`statement_batches("aggregate", ...)`: parquet with
CLEANPATH MANIFEST, then CSV HEADER PARALLEL OFF) on one Data API stand-in engine over moto's
in-process S3, alternating, best of REPEATS each: wall and process CPU seconds, and the
bytes each writes. The CSV UNLOAD's time is what moving the copies out of calc_stats added
to the aggregate step here; on Redshift it runs on the cluster, not on the EC2 task.
`bench.aggregate` reports the same split ("UNLOAD CSV copies") for a whole sample month.
"""

from __future__ import annotations

import argparse
import os
import time

import duckdb

from bench import Measurement, print_table
from bisonflow.layout import MonthLayout
from bisonflow.sql.workflow_sql import SqlTarget, species_table, statement_batches

ROWS = 5_000_000
SITES, SPECIES = 3_200, 100_000
REPEATS = 2
BUCKET = "bench-unload"
ACCOUNT = "123456789012"


def _fill(con: duckdb.DuckDBPyConnection, table: str, rows: int) -> None:
    """`rows` distinct (county, species) rows, keys and names as the UNLOADs carry them."""
    con.execute(
        f"""CREATE OR REPLACE TABLE {table} AS
        WITH cells AS (  -- distinct pairs: each site's species are consecutive keys
            SELECT CAST(i % {SITES} AS INTEGER) AS site,
                   (i // {SITES} + (i % {SITES}) * 31) % {SPECIES} AS sp
            FROM range({rows}) AS t(i)
        )
        SELECT lpad(CAST(1000 + site AS VARCHAR), 5, '0') AS geoid,
               chr(65 + site % 26) || chr(65 + site % 25) AS state,
               'County ' || site || ', "' || chr(65 + site % 26) || '"' AS county,
               'L48' AS riis_region,
               CAST(2000000 + sp AS VARCHAR) AS specieskey,
               'Species ' || sp AS species,
               CASE WHEN sp % 50 = 0 THEN 'invasive' ELSE 'presumed_native' END
                   AS riis_assessment,
               CAST(1 + (site + sp) % 9 AS BIGINT) AS occ_count
        FROM cells"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    args = parser.parse_args()
    if args.rows <= 0:
        parser.exit(2, "--rows must be positive\n")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    import boto3
    from moto import mock_aws

    from bisonflow.local.redshift.engine import Engine
    from bisonflow.local.redshift.moto_s3 import MotoS3

    layout = MonthLayout.for_run("2026-09", "bench-unload")
    target = SqlTarget(gbif_bucket=BUCKET, bison_bucket=BUCKET)
    unload = next(b for b in statement_batches("aggregate", layout, target) if "UNLOAD" in b[0])
    county_prefix = layout.species_counts_prefix("county")
    parquet_sql, csv_sql = (s for s in unload if county_prefix.removesuffix("/") in s)
    load_before = os.getloadavg()[0]
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        engine = Engine("bench-unload", MotoS3(ACCOUNT, "us-east-1"))
        try:
            _fill(engine.database.connection(), species_table(layout, "county"), args.rows)
            best: dict[str, tuple[float, float]] = {}
            for _ in range(REPEATS):
                for name, sql in (("parquet", parquet_sql), ("CSV", csv_sql)):
                    wall, cpu = time.perf_counter(), time.process_time()
                    engine.run_sql(sql, in_transaction=True)
                    spent = (time.perf_counter() - wall, time.process_time() - cpu)
                    best[name] = min(best.get(name, spent), spent)
            sizes = {
                "parquet": sum(
                    o["Size"]
                    for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=county_prefix)["Contents"]
                ),
                "CSV": s3.head_object(Bucket=BUCKET, Key=layout.table_csv_key(county_prefix))[
                    "ContentLength"
                ],
            }
        finally:
            engine.stop()
    load = f"{load_before:.1f}-{os.getloadavg()[0]:.1f}"
    rows = []
    for name in ("parquet", "CSV"):
        rows += [
            Measurement(f"UNLOAD {name}, {args.rows:,} rows: wall (load {load})", best[name][0]),
            Measurement("  process CPU", best[name][1]),
            Measurement("  written", sizes[name] / 1e6, "MB"),
        ]
    print_table("the county species list UNLOADed by the stand-in (best of each)", rows)


if __name__ == "__main__":
    main()
