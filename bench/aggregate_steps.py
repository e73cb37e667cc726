"""One run of the workflow's `subset` and `aggregate` SQL on the Data API stand-in, timed per step.

Shared by `bench.aggregate` (today's tree) and `bench/aggregate_baseline.py`, which runs the
same function in a child process whose `bisonflow` is an older commit's: so this module uses
only what both trees have (`MonthLayout`, `SqlTarget`, `statement_batches`, the stand-in's
`install`/`shutdown`, `statements.summary`) and imports nothing from `bench`.

Each batch is submitted and waited for as the state machine does; the time of each statement
is the stand-in's own `Duration` of it (DescribeStatement's SubStatements), so a step's time is
the SQL's and not the polling's, and the process CPU time is read around each batch (DuckDB's
threads are this process's) because on a shared machine wall time is mostly waiting for a core.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, MonthLayout

#: The `bisonflow` package this process runs: today's, or a baseline commit's tree first on
#: PYTHONPATH (bench/aggregate_baseline.py).
_TREE = Path(str(importlib.import_module("bisonflow").__file__)).parent


def _module(regrouped: str, flat: str) -> Any:
    """`regrouped` if the tree has it, else `flat`: the regroup (7c4f8a8) moved the SQL, the
    Data API client and the stand-in into subpackages, and a baseline from before it has the
    same functions in flat modules. Decided by the tree's files, not by trying the import:
    the editable install would find today's module for a name the old tree lacks."""
    path = _TREE.joinpath(*regrouped.split(".")[1:]).with_suffix(".py")
    return importlib.import_module(regrouped if path.is_file() else flat)


redshift_duckdb = _module("bisonflow.local.redshift.service", "bisonflow.local.redshift_duckdb")
_workflow_sql = _module("bisonflow.sql.workflow_sql", "bisonflow.redshift_sql")
SqlTarget = _workflow_sql.SqlTarget
statement_batches = _workflow_sql.statement_batches
summary = _module("bisonflow.steps.statements", "bisonflow.statements").summary

REGION = "us-east-1"
GBIF_BUCKET = "bisonflow-bench-gbif"
BISON_BUCKET = "bisonflow-bench-bison"
#: How often a batch's status is asked for.
POLL_SECONDS = 0.1

#: The steps a run is split into, in the order they run; `step_of` names each statement's.
STEPS: tuple[str, ...] = (
    "mount (external schema and table)",
    "subset (scan, filter, copy)",
    "load RIIS list and boundaries",
    "grid cells of the boundaries",
    "regions (point in polygon)",
    "RIIS status (marks table)",
    "counts per site and species",
    "UNLOAD",
    "UNLOAD CSV copies",
    "summary",
    "drops",
)


@dataclass(frozen=True)
class SampleFiles:
    """The inputs a run puts into S3: the snapshot's parts, both boundary layers, the US-RIIS
    list with the species-match answers it is annotated from, and the month they belong to."""

    snapshot_dir: Path
    county_shapefile: Path
    aiannh_shapefile: Path
    riis_csv: Path
    species_match_json: Path
    month: str


def annotated_riis(riis_csv: Path, species_match_json: Path) -> bytes:
    """The US-RIIS list as annotate_riis writes it
    (bisonflow.riis.master_list.annotated_csv), each name judged from the sample's
    species-match answers as the task judges GBIF's: written by the running tree's own
    functions, so a baseline commit loads the columns it expects."""
    species_api = _module("bisonflow.gbif.species_api", "bisonflow.gbif_api")
    master_list = _module("bisonflow.riis.master_list", "bisonflow.riis")
    interpret_match = species_api.interpret_match
    annotated_csv, decode, parse_riis = (
        master_list.annotated_csv,
        master_list.decode,
        master_list.parse_riis,
    )

    table = json.loads(species_match_json.read_text("utf-8"))
    parsed = parse_riis(decode(riis_csv.read_bytes()))
    matches = {r.query: interpret_match(table[r.query.name], r.query) for r in parsed.records}
    return annotated_csv(parsed.records, matches).encode("utf-8")


@dataclass
class Timing:
    """One run: seconds per step (statement durations) and CPU seconds per step (each
    batch's process CPU shared among its statements by duration), the wall and CPU time of
    both SQL steps, and the step's summary (the counts the check compares)."""

    steps: dict[str, float] = field(default_factory=dict)
    cpu: float = 0.0
    wall: float = 0.0
    statements: list[tuple[str, float]] = field(default_factory=list)
    cpu_steps: dict[str, float] = field(default_factory=dict)
    result: Any = None

    def add(self, step: str, seconds: float) -> None:
        self.steps[step] = self.steps.get(step, 0.0) + seconds


def step_of(sql: str, layout: MonthLayout) -> str:
    """Which of STEPS a statement belongs to, from what it creates or does."""
    head = " ".join(sql.split())[:200]
    created = re.match(r"CREATE TABLE (\S+) AS", head)
    if head.startswith(("CREATE EXTERNAL", "DROP TABLE IF EXISTS gbif")) or " EXTERNAL " in head:
        return STEPS[0]
    if created:
        name = created.group(1)
        if name == layout.subset_table:
            return STEPS[1]
        if name.endswith(("_cells", "_tiles")):
            return STEPS[3]
        if name.endswith("_hits"):
            return STEPS[4]
        if name == layout.marks_table:
            return STEPS[5]
        return STEPS[6]
    if head.startswith(("COPY", "CREATE TABLE")):
        return STEPS[2]
    if head.startswith("UNLOAD"):
        return STEPS[8] if re.search(r"\bFORMAT AS CSV\b", sql) else STEPS[7]
    if head.startswith("SELECT"):
        return STEPS[9]
    return STEPS[10]


def upload(s3: Any, sample: SampleFiles, layout: MonthLayout) -> None:
    """The inputs where the workflow finds them (the GBIF and BISON buckets)."""
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
    riis = annotated_riis(sample.riis_csv, sample.species_match_json)
    s3.put_object(Bucket=BISON_BUCKET, Key=layout.riis_annotated_key, Body=riis)


def run(sample: SampleFiles, workgroup: str = "bench") -> Timing:
    """Upload the sample and run `subset` then `aggregate` on the stand-in, inside moto
    (the caller's mock_aws or the child's own), timed per step."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    layout = MonthLayout.for_month(sample.month)
    s3 = boto3.client("s3", region_name=REGION)
    data = boto3.client("redshift-data", region_name=REGION)
    upload(s3, sample, layout)
    target = SqlTarget(gbif_bucket=GBIF_BUCKET, bison_bucket=BISON_BUCKET, region=REGION)
    timing = Timing()
    started, cpu_started = time.perf_counter(), time.process_time()
    last = ""
    for step in ("subset", "aggregate"):
        for batch in statement_batches(step, layout, target):
            cpu_before = time.process_time()
            described = _run_batch(data, batch, workgroup)
            last = described["Id"]
            subs = described.get("SubStatements") or [described]
            seconds = [max(int(sub["Duration"]), 0) / 1e9 for sub in subs]
            # The batch's CPU, shared among its statements by their durations.
            cpu = (time.process_time() - cpu_before) / max(sum(seconds), 1e-9)
            for sub, spent in zip(subs, seconds, strict=True):
                name = step_of(sub["QueryString"], layout)
                timing.add(name, spent)
                timing.cpu_steps[name] = timing.cpu_steps.get(name, 0.0) + spent * cpu
                timing.statements.append((" ".join(sub["QueryString"].split())[:90], spent))
    timing.wall = time.perf_counter() - started
    timing.cpu = time.process_time() - cpu_started
    timing.result = summary(data, last)
    return timing


def _run_batch(data: Any, batch: list[str], workgroup: str) -> dict[str, Any]:
    """Submit one batch and wait for it, polling every POLL_SECONDS: the measured figures
    are the statements' own durations, and each poll costs CPU in this very process (moto
    answers in-process), which a tighter loop would add to the CPU time."""
    where = {"WorkgroupName": workgroup, "Database": "dev"}
    if len(batch) == 1:
        statement_id = data.execute_statement(Sql=batch[0], **where)["Id"]
    else:
        statement_id = data.batch_execute_statement(Sqls=batch, **where)["Id"]
    while True:
        described = data.describe_statement(Id=statement_id)
        if described["Status"] in ("FINISHED", "FAILED", "ABORTED"):
            break
        time.sleep(POLL_SECONDS)
    if described["Status"] != "FINISHED":
        raise SystemExit(
            f"batch {batch[0][:80]!r}... {described['Status']}: {described.get('Error')}"
        )
    return described


def in_moto(fn: Callable[[], Timing]) -> Timing:
    """fn() inside moto with the stand-in installed, its databases freed afterwards."""
    from moto import mock_aws

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        redshift_duckdb.install()
        try:
            return fn()
        finally:
            redshift_duckdb.shutdown()
            redshift_duckdb.uninstall()
