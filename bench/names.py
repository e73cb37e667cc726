"""Benchmark: resolve 15,000 US-RIIS names against a GBIF stand-in that takes 200 ms a request.

`python -m bench.names` runs the annotate_riis task itself (parse, resolve, write the
annotated list, report and name cache) on moto's in-process S3, against the loopback GBIF
stand-in with a fixed latency per request, so the figure is what the EC2 task spends:

* cold, at the default concurrency (16) and at a higher one: no name cache yet;
* warm: the same list again with the cache the cold run wrote (no API call);
* baseline: the seed system's one-request-at-a-time client. A full sequential run would take
  names x latency (50 min at the defaults), so it is measured on a subset and extrapolated
  linearly; the table row says so.

With 200 ms a request, concurrency c cannot beat names x 0.2 s / c: 187.5 s at 16, 93.8 s at
32. The 120 s goal therefore needs c >= 25, which the table shows rather than hides.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any

from bench import Measurement, print_table, timed
from bisonflow import aws
from bisonflow.ec2_tasks import task_spec
from bisonflow.gbif_api import DEFAULT_CONCURRENCY, GbifClient, NameQuery, resolve_all
from bisonflow.layout import NAME_CACHE_KEY, RIIS_INPUT_KEY, MonthLayout
from bisonflow.local.gbif_standin import GbifStandin, accepted_match
from bisonflow.riis_schema import DEGREES_OF_ESTABLISHMENT, RIIS_COLUMNS, RIIS_REGIONS
from bisonflow.taskspec import TaskSpec

BUCKET = "bisonflow-bench-names"
LAYOUT = MonthLayout.for_month("2026-11")
COLD_GOAL_SECONDS = 120.0
WARM_GOAL_SECONDS = 5.0
#: Shares of the name kinds on the list: accepted, synonym (one more call for its accepted
#: name), fuzzy (doubtful), no match; the rest of the list is accepted names.
SYNONYM_SHARE, FUZZY_SHARE, NO_MATCH_SHARE = 0.05, 0.02, 0.02


def build_names(count: int, seed: int = 7) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(name, kingdom) pairs on the list and the stand-in's match table for them."""
    rng = random.Random(seed)
    names: list[tuple[str, str]] = []
    table: dict[str, Any] = {}
    for i in range(count):
        kingdom = "Plantae" if i % 2 else "Animalia"
        name = f"Genus{i // 7:05d}a epithet{i % 7}{rng.choice('abcdefgh')}"
        names.append((name, kingdom))
        draw = rng.random()
        if draw < NO_MATCH_SHARE:
            continue  # not in the table: the stand-in answers NONE
        body = accepted_match(5_000_000 + i, f"{name} Auct.", kingdom)
        if draw < NO_MATCH_SHARE + SYNONYM_SHARE:
            body.update(status="SYNONYM", synonym=True, acceptedUsageKey=9_000_000 + i)
        elif draw < NO_MATCH_SHARE + SYNONYM_SHARE + FUZZY_SHARE:
            body.update(matchType="FUZZY", confidence=88)
        table[name] = body
        if body["synonym"]:  # so /species/<accepted key> can answer
            table[f"{name} accepted"] = {
                **body,
                "usageKey": 9_000_000 + i,
                "status": "ACCEPTED",
                "synonym": False,
                "scientificName": f"{name} accepted",
            }
            del table[f"{name} accepted"]["acceptedUsageKey"]
    return names, table


def riis_csv(names: list[tuple[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=RIIS_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for i, (name, kingdom) in enumerate(names):
        locality = RIIS_REGIONS[i % len(RIIS_REGIONS)]
        writer.writerow(
            {
                "locality": locality,
                "scientificName": name,
                "kingdom": kingdom,
                "degreeOfEstablishment": DEGREES_OF_ESTABLISHMENT[
                    i % len(DEGREES_OF_ESTABLISHMENT)
                ],
                "establishmentMeans": "introduced",
                "occurrenceID": f"USRIIS-{locality}{kingdom}{i + 1}",
            }
        )
    return out.getvalue().encode("utf-8")


def spec() -> TaskSpec:
    """The spec launch_task would write for this month (BISON_BUCKET is set in main)."""
    return task_spec("annotate_riis", LAYOUT, "bench-names")


def run_task(concurrency: int) -> tuple[dict[str, Any], float]:
    """One annotate_riis run at the given concurrency, and its wall time."""
    from tasks import annotate_riis

    os.environ["GBIF_API_CONCURRENCY"] = str(concurrency)
    return timed(lambda: annotate_riis.run(spec()))


def sequential_seconds(base_url: str, names: list[tuple[str, str]]) -> float:
    """The seed system's way: one request after another, no cache."""
    queries = [NameQuery(name, "", kingdom) for name, kingdom in names]
    with GbifClient(base_url) as client:
        _, seconds = timed(lambda: resolve_all(client, queries, concurrency=1))
    return seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--names", type=int, default=15_000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--fast-concurrency", type=int, default=32)
    parser.add_argument("--sequential-names", type=int, default=100)
    args = parser.parse_args(argv)

    from moto import mock_aws

    names, table = build_names(args.names)
    workdir = Path(tempfile.mkdtemp(prefix="bench-names-"))
    table_path = workdir / "gbif_table.json"
    table_path.write_text(json.dumps(table), "utf-8")
    for variable in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(variable, None)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
    os.environ.update(AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    os.environ.update(BISON_BUCKET=BUCKET, NAME_CACHE_MAX_AGE_DAYS="30")

    with mock_aws(), GbifStandin(table_path, latency_seconds=args.latency) as gbif:
        aws.reset_clients()
        os.environ["GBIF_API_URL"] = gbif.base_url
        s3 = aws.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=RIIS_INPUT_KEY, Body=riis_csv(names))
        sample = names[: args.sequential_names]
        sequential = sequential_seconds(gbif.base_url, sample) * len(names) / len(sample)
        runs: dict[str, tuple[dict[str, Any], float]] = {}
        for concurrency in (DEFAULT_CONCURRENCY, args.fast_concurrency):
            s3.delete_object(Bucket=BUCKET, Key=NAME_CACHE_KEY)
            runs[f"cold{concurrency}"] = run_task(concurrency)
        runs["warm"] = run_task(DEFAULT_CONCURRENCY)
    aws.reset_clients()

    n = f"{len(names):,} names"
    baseline = f"sequential x{len(names) / len(sample):g}"
    rows = [
        Measurement(
            f"sequential client: {len(sample)} names measured, extrapolated to {n}",
            sequential,
        ),
    ]
    for concurrency in (DEFAULT_CONCURRENCY, args.fast_concurrency):
        result, seconds = runs[f"cold{concurrency}"]
        label = " (default)" if concurrency == DEFAULT_CONCURRENCY else ""
        rows.append(
            Measurement(
                f"cold, {n}, concurrency {concurrency}{label}: {result['api_calls']} calls",
                seconds,
                goal=COLD_GOAL_SECONDS,
                baseline_name=baseline,
                baseline=sequential,
            )
        )
    result, seconds = runs["warm"]
    cold_name = f"cold at {DEFAULT_CONCURRENCY}"
    rows.append(
        Measurement(
            f"warm cache rerun, {n}: {result['api_calls']} calls, "
            f"{result['cache_hits']} cache hits",
            seconds,
            goal=WARM_GOAL_SECONDS,
            baseline_name=cold_name,
            baseline=runs[f"cold{DEFAULT_CONCURRENCY}"][1],
        )
    )
    print_table(
        f"Name resolution (annotate_riis task, GBIF stand-in at {args.latency * 1000:g} ms "
        "a request, moto S3)",
        rows,
    )


if __name__ == "__main__":
    main()
