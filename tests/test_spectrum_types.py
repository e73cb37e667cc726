"""The Data API stand-in refuses what Spectrum refuses: a declared type the parquet lacks.

Spectrum's words are those of the Redshift Database Developer Guide ("Troubleshooting
queries in Amazon Redshift Spectrum", "Incompatible data formats"). The defect this makes
visible: an external table declaring GBIF's taxon keys INT over a snapshot from 2025-08 on,
whose keys are strings, fails the subset on AWS while DuckDB would have cast the digits.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bisonflow.layout import MonthLayout
from bisonflow.local.redshift.parsed_sql import ExternalTableStmt, SqlStmt
from bisonflow.local.redshift.spectrum_types import (
    columns_read,
    failing_expression,
    refused_columns,
)
from bisonflow.local.redshift.sql_parse import parse_statement
from bisonflow.local.runtime import LocalRuntime
from bisonflow.sample import SampleManifest, generate_sample, month_parts
from bisonflow.sql.workflow_sql import SqlTarget, statement_batches
from bisonflow.steps.statements import SqlStatementFailed, run_batches

REGION = "us-east-1"
BUCKET = "bisonflow-spectrum-types-test"
WORKGROUP = "bisonflow-spectrum-types-test"


def _external(columns: str, location: str = "s3://b/loc/") -> ExternalTableStmt:
    stmt = parse_statement(
        f"CREATE EXTERNAL TABLE s.t ({columns}) STORED AS PARQUET LOCATION '{location}'"
    )
    assert isinstance(stmt, ExternalTableStmt)
    return stmt


def _raised(expression: str) -> str:
    """The error DuckDB raises evaluating an expression for one row."""
    with pytest.raises(duckdb.InvalidInputException) as raised:
        duckdb.connect().execute(f"SELECT {expression} FROM range(1)").fetchall()
    return str(raised.value)


def _parquet(path: Path, table: pa.Table) -> dict[str, Path]:
    pq.write_table(table, path)
    return {"loc/file": path}


def test_the_guides_example_error(tmp_path: Path) -> None:
    """VARCHAR declared over an int64 column, as in the guide's SVL_S3LOG example."""
    parts = _parquet(tmp_path / "f", pa.table({"l_orderkey": pa.array([1], pa.int64())}))
    refused = refused_columns(
        _external("l_orderkey VARCHAR(MAX)").columns, "s3://b/loc/", REGION, parts
    )
    assert refused == {
        "l_orderkey": "Spectrum Scan Error. File 'https://s3.us-east-1.amazonaws.com/b/loc/file' "
        "has an incompatible Parquet schema for column 's3://b/loc.l_orderkey'. Column type: "
        "VARCHAR, Parquet schema:\\noptional int64 l_orderkey [i:0 d:1 r:0]"
    }
    # The view's backstop raises the same words if a row of the column is ever evaluated.
    assert refused["l_orderkey"] in _raised(failing_expression(refused["l_orderkey"], "VARCHAR"))


@pytest.mark.parametrize(
    ("declared", "arrow", "refused"),
    [
        ("INT", pa.int32(), False),
        ("INT", pa.string(), True),  # GBIF's taxon keys from 2025-08 under the old DDL
        ("INT", pa.int64(), True),  # no widening or narrowing
        ("BIGINT", pa.int32(), True),
        ("BIGINT", pa.int64(), False),
        ("VARCHAR(MAX)", pa.int32(), True),
        ("VARCHAR(20)", pa.string(), False),
        ("DOUBLE PRECISION", pa.float64(), False),
        ("DOUBLE PRECISION", pa.float32(), True),
        ("TIMESTAMP", pa.timestamp("us"), False),
        ("TIMESTAMP", pa.string(), True),  # GBIF's dates before 2022-05
        ("ARRAY<VARCHAR(MAX)>", pa.list_(pa.string()), False),
        ("ARRAY<VARCHAR(MAX)>", pa.string(), True),
        ("VARCHAR(MAX)", pa.list_(pa.string()), True),
    ],
)
def test_declared_type_against_the_files_type(
    tmp_path: Path, declared: str, arrow: pa.DataType, refused: bool
) -> None:
    parts = _parquet(tmp_path / "f", pa.table({"c": pa.array([None], arrow)}))
    found = refused_columns(_external(f"c {declared}").columns, "s3://b/loc/", REGION, parts)
    assert bool(found) == refused


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    return generate_sample(tmp_path_factory.mktemp("spectrum"), records=300, seed=11)


def _month_files(sample: SampleManifest, snapshot: dt.date, folder: Path) -> dict[str, Path]:
    files = {}
    for name, body in month_parts(sample.snapshot_dir, snapshot):
        (folder / name).write_bytes(body)
        files[f"occurrence/{snapshot.isoformat()}/occurrence.parquet/{name}"] = folder / name
    return files


@pytest.mark.parametrize(
    ("ddl_month", "files_month", "refused"),
    [
        ("2021-06", "2021-06", set()),
        ("2023-01", "2023-01", set()),
        ("2025-07", "2025-07", set()),
        ("2025-09", "2025-09", set()),
        ("2025-07", "2025-09", {"taxonkey", "specieskey"}),  # the defect, as on AWS
        ("2025-09", "2025-07", {"taxonkey", "specieskey"}),
        ("2023-01", "2023-02", {"gbifid"}),
        ("2022-04", "2022-05", {"eventdate", "dateidentified", "lastinterpreted",
                                "identifiedby", "recordedby", "typestatus"}),
    ],
)  # fmt: skip
def test_each_months_ddl_fits_exactly_that_months_files(
    sample: SampleManifest, tmp_path: Path, ddl_month: str, files_month: str, refused: set[str]
) -> None:
    target = SqlTarget(gbif_bucket=BUCKET, bison_bucket=BUCKET)
    ddl = statement_batches("subset", MonthLayout.for_month(ddl_month), target)[2][0]
    stmt = parse_statement(ddl)
    assert isinstance(stmt, ExternalTableStmt)
    files = _month_files(sample, MonthLayout.for_month(files_month).snapshot, tmp_path)
    assert set(refused_columns(stmt.columns, stmt.location, REGION, files)) == refused


def test_the_stand_in_fails_a_scan_of_int_declared_over_string_keys(
    runtime: LocalRuntime, sample: SampleManifest
) -> None:
    """Through the Data API: CREATE EXTERNAL TABLE succeeds, a query reading the column
    fails with Spectrum's error, a query not reading it runs; the month's own DDL works."""
    s3, data = runtime.clients["s3"], runtime.clients["redshift-data"]
    s3.create_bucket(Bucket=BUCKET)
    layout = MonthLayout.for_month("2025-09")
    for name, body in month_parts(sample.snapshot_dir, layout.snapshot):
        s3.put_object(Bucket=BUCKET, Key=layout.gbif_prefix + name, Body=body)
    target = SqlTarget(gbif_bucket=BUCKET, bison_bucket=BUCKET, region=REGION)
    batches = statement_batches("subset", layout, target)
    old_ddl = batches[2][0].replace("taxonkey VARCHAR(MAX)", "taxonkey INT")
    assert old_ddl != batches[2][0]
    ext = "gbif_spectrum.occurrence_2025_09_01"
    run_batches(data, [batches[0], [f"DROP TABLE IF EXISTS {ext}"], [old_ddl]], WORKGROUP)
    try:
        run_batches(data, [[f"SELECT species, decimallatitude FROM {ext}"]], WORKGROUP)
        with pytest.raises(SqlStatementFailed) as failed:
            run_batches(data, [[f"SELECT count(*) FROM {ext} WHERE taxonkey = 1"]], WORKGROUP)
        first = sorted(month_parts(sample.snapshot_dir, layout.snapshot))[0][0]
        message = str(failed.value)
        assert (
            f"Spectrum Scan Error. File 'https://s3.{REGION}.amazonaws.com/{BUCKET}/"
            f"{layout.gbif_prefix}{first}' has an incompatible Parquet schema for column "
            f"'s3://{BUCKET}/{layout.gbif_prefix.rstrip('/')}.taxonkey'. Column type: INT, "
            "Parquet schema:\\noptional byte_array taxonkey [i:33 d:1 r:0]"
        ) in message
        # The old subset:
        with pytest.raises(SqlStatementFailed, match="incompatible Parquet schema"):
            run_batches(data, [batches[3]], WORKGROUP)
    finally:
        run_batches(data, [[f"DROP TABLE IF EXISTS {ext}"]], WORKGROUP)
    run_batches(data, batches, WORKGROUP)  # the month's own types: the subset is made
    rows = _count(data, f"SELECT count(*) FROM {layout.subset_table} WHERE taxonkey <> ''")
    assert rows > 0


def _count(data: Any, sql: str) -> int:
    statement_id = run_batches(data, [[sql]], WORKGROUP)
    (record,) = data.get_statement_result(Id=statement_id)["Records"]
    return int(record[0]["longValue"])


def test_parts_are_read_in_the_order_spectrum_names_them(tmp_path: Path) -> None:
    """With several parts, the first (by key) holding the wrong type is the one named."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    pq.write_table(pa.table({"k": pa.array([1], pa.int32())}), good)
    pq.write_table(pa.table({"k": pa.array(["1"])}), bad)
    columns = _external("k INT").columns
    refused = refused_columns(columns, "s3://b/loc/", REGION, {"loc/0": good, "loc/1": bad})
    assert "File 'https://s3.us-east-1.amazonaws.com/b/loc/1'" in refused["k"]
    assert refused_columns(columns, "s3://b/loc/", REGION, {"loc/0": good}) == {}


DECLARED = {("ext", "occ"): ["k", "label", "specieskey"], ("ext", "other"): ["k", "x"]}


@pytest.mark.parametrize(
    ("redshift_sql", "read"),
    [
        ("SELECT count(*) FROM ext.occ", {("ext", "occ"): set()}),  # scanned, no column
        ("SELECT k FROM ext.occ WHERE specieskey IS NOT NULL",
         {("ext", "occ"): {"k", "specieskey"}}),
        ("SELECT count(*) FROM Ext.Occ WHERE LABEL = 'a'", {("ext", "occ"): {"label"}}),
        ("SELECT * FROM ext.occ", {("ext", "occ"): {"k", "label", "specieskey"}}),
        ("SELECT o.* FROM ext.occ AS o, r", {("ext", "occ"): {"k", "label", "specieskey"}}),
        ("SELECT r.* FROM ext.occ AS o, r", {("ext", "occ"): set()}),
        ("SELECT 1 AS label FROM ext.occ ORDER BY label", {("ext", "occ"): set()}),  # an alias
        ("SELECT count(*) FROM ext.occ AS o JOIN r ON o.k = r.k GROUP BY o.label",
         {("ext", "occ"): {"k", "label"}}),
        ("SELECT o.x FROM ext.occ AS o, ext.other AS p WHERE p.k = 1",
         {("ext", "occ"): set(), ("ext", "other"): {"k"}}),
        ("SELECT x FROM r WHERE r.x IN (SELECT k FROM ext.occ)", {("ext", "occ"): {"k"}}),
        ("WITH c AS (SELECT label FROM ext.occ) SELECT count(*) FROM c",
         {("ext", "occ"): {"label"}}),  # the strict side: the CTE's column counts
        ("CREATE TABLE t AS SELECT CAST(k AS VARCHAR(MAX)) AS k FROM ext.occ",
         {("ext", "occ"): {"k"}}),
        ("SELECT label FROM r WHERE k = 1", {}),  # another table's columns
        ("SELECT 1", {}),
    ],
)  # fmt: skip
def test_columns_read(redshift_sql: str, read: dict[tuple[str, str], set[str]]) -> None:
    """Which declared columns of which external tables a statement reads, as the stand-in
    checks them before running it (Spectrum reads only the columns a query needs)."""
    stmt = parse_statement(redshift_sql)
    assert isinstance(stmt, SqlStmt)
    assert columns_read(stmt.duckdb_sql, DECLARED) == read
