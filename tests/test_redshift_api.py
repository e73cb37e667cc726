"""The Redshift Data API stand-in's API: moto's server with the stand-in installed, DuckDB
behind it (typed records in pages, errors naming the statement, batches as transactions,
cancel, list, parameters).

Every test talks to a real `ThreadedMotoServer` over HTTP with boto3, as the workflow does.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from redshift_data_api import (  # noqa: F401 (rsd_fixture, s3_fixture: the `rsd`, `s3` fixtures)
    BISON_BUCKET,
    WHERE,
    rows,
    rsd_fixture,
    run,
    s3_fixture,
    wait,
)

from bisonflow.local.redshift.api import PAGE_ROWS

# --- the Data API ---------------------------------------------------------------------------


def test_select_returns_typed_records_in_pages(rsd: Any) -> None:
    sql = (
        "SELECT i AS n, i * 0.5::float8 AS half, 'row' || i AS label, i % 2 = 0 AS even, "
        "NULL AS nothing, DATE '2024-03-01' AS day FROM generate_series(1, 2500) AS t(i)"
    )
    desc = run(rsd, sql)
    assert desc["HasResultSet"] is True
    assert desc["ResultRows"] == 2500
    assert desc["Duration"] > 0 and desc["RedshiftQueryId"] > 0
    first = rsd.get_statement_result(Id=desc["Id"])
    names = [c["name"] for c in first["ColumnMetadata"]]
    types = [c["typeName"] for c in first["ColumnMetadata"]]
    assert names == ["n", "half", "label", "even", "nothing", "day"]
    assert types[:4] == ["int8", "float8", "varchar", "bool"]
    assert types[5] == "date"
    assert first["TotalNumRows"] == 2500
    assert len(first["Records"]) == PAGE_ROWS
    assert first["Records"][0] == [
        {"longValue": 1},
        {"doubleValue": 0.5},
        {"stringValue": "row1"},
        {"booleanValue": False},
        {"isNull": True},
        {"stringValue": "2024-03-01"},
    ]
    assert first["NextToken"]
    all_rows = rows(rsd, sql)
    assert [r[0] for r in all_rows] == list(range(1, 2501))


def test_failing_sql_reports_the_error_and_the_statement(rsd: Any) -> None:
    desc = run(rsd, "SELECT no_such_column FROM generate_series(1, 3)", expect="FAILED")
    assert "no_such_column" in desc["Error"]
    assert desc["Error"].startswith("ERROR: ")
    assert "SELECT no_such_column" in desc["Error"]  # names the failing statement
    with pytest.raises(rsd.exceptions.ValidationException):
        rsd.get_statement_result(Id=desc["Id"])
    # The worker survives a failure.
    assert rows(rsd, "SELECT 41 + 1") == [(42,)]


def test_batch_runs_as_one_transaction_with_sub_statements(rsd: Any) -> None:
    desc = run(
        rsd,
        "CREATE TABLE batch_t (a INT, b VARCHAR(MAX))",
        "INSERT INTO batch_t VALUES (1, 'x'), (2, 'y')",
        "SELECT a, b FROM batch_t ORDER BY a",
    )
    subs = desc["SubStatements"]
    assert [s["Id"] for s in subs] == [f"{desc['Id']}:{n}" for n in (1, 2, 3)]
    assert [s["Status"] for s in subs] == ["FINISHED"] * 3
    assert [s["HasResultSet"] for s in subs] == [False, False, True]
    assert subs[1]["ResultRows"] == 2
    assert subs[2]["QueryString"] == "SELECT a, b FROM batch_t ORDER BY a"
    result = rsd.get_statement_result(Id=f"{desc['Id']}:3")
    assert result["Records"] == [
        [{"longValue": 1}, {"stringValue": "x"}],
        [{"longValue": 2}, {"stringValue": "y"}],
    ]
    sub_desc = rsd.describe_statement(Id=f"{desc['Id']}:2")
    assert sub_desc["Status"] == "FINISHED" and sub_desc["ResultRows"] == 2

    failed = run(
        rsd,
        "INSERT INTO batch_t VALUES (3, 'z')",
        "INSERT INTO no_such_table VALUES (1)",
        "SELECT 1",
        expect="FAILED",
    )
    statuses = [s["Status"] for s in failed["SubStatements"]]
    assert statuses == ["FINISHED", "FAILED", "ABORTED"]
    assert "no_such_table" in failed["SubStatements"][1]["Error"]
    assert "sub-statement 2 of 3" in failed["Error"]
    assert rows(rsd, "SELECT count(*) FROM batch_t") == [(2,)]  # the batch was rolled back


def test_external_ddl_is_refused_inside_a_batch(rsd: Any) -> None:
    failed = run(
        rsd,
        "CREATE EXTERNAL SCHEMA IF NOT EXISTS spectrum_in_tx FROM DATA CATALOG "
        "DATABASE 'x' IAM_ROLE default CREATE EXTERNAL DATABASE IF NOT EXISTS",
        "SELECT 1",
        expect="FAILED",
    )
    assert "cannot run inside a transaction block" in failed["Error"]


def test_missing_s3_objects_fail_the_statement_naming_them(rsd: Any, s3: Any) -> None:
    run(rsd, "CREATE TABLE copy_target (a VARCHAR(10))")
    missing = run(
        rsd,
        f"COPY copy_target FROM 's3://{BISON_BUCKET}/no/such.csv' IAM_ROLE default FORMAT CSV",
        expect="FAILED",
    )
    assert f"s3://{BISON_BUCKET}/no/such.csv" in missing["Error"]
    no_bucket = run(
        rsd,
        "COPY copy_target FROM 's3://no-such-bucket-here/x.csv' IAM_ROLE default FORMAT CSV",
        expect="FAILED",
    )
    assert "s3://no-such-bucket-here/" in no_bucket["Error"]
    s3.put_object(Bucket=BISON_BUCKET, Key="shapes/lonely.shp", Body=b"not really")
    shape = run(
        rsd,
        f"COPY copy_target FROM 's3://{BISON_BUCKET}/shapes/lonely.shp' FORMAT SHAPEFILE",
        expect="FAILED",
    )
    assert f"s3://{BISON_BUCKET}/shapes/lonely.shx" in shape["Error"]
    assert rows(rsd, "SELECT count(*) FROM copy_target") == [(0,)]


def test_unload_refuses_to_overwrite_without_allowoverwrite(rsd: Any, s3: Any) -> None:
    uri = f"s3://{BISON_BUCKET}/unload-test/"
    query = "UNLOAD ('SELECT 1 AS one') TO '" + uri + "' IAM_ROLE default FORMAT AS PARQUET"
    run(rsd, query)
    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket=BISON_BUCKET, Prefix="unload-test/")["Contents"]
    ]
    assert keys == ["unload-test/0000_part_00.parquet"]
    again = run(rsd, query, expect="FAILED")
    assert "ALLOWOVERWRITE" in again["Error"]
    run(rsd, query + " ALLOWOVERWRITE")


def test_cancel_aborts_queued_and_running_statements(rsd: Any) -> None:
    slow = rsd.execute_statement(
        Sql="SELECT sum(i * i % 7) FROM range(50000000000) AS t(i)", **WHERE
    )["Id"]
    queued = rsd.execute_statement(Sql="SELECT 1", **WHERE)["Id"]
    assert rsd.describe_statement(Id=queued)["Status"] in ("SUBMITTED", "PICKED")
    assert rsd.cancel_statement(Id=queued)["Status"] is True
    deadline = time.monotonic() + 10
    while rsd.describe_statement(Id=slow)["Status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rsd.cancel_statement(Id=slow)
    assert wait(rsd, slow)["Status"] == "ABORTED"
    assert wait(rsd, queued)["Status"] == "ABORTED"
    with pytest.raises(rsd.exceptions.ValidationException):
        rsd.cancel_statement(Id=queued)
    assert rows(rsd, "SELECT 'still here'") == [("still here",)]


def test_list_statements_shows_submissions(rsd: Any) -> None:
    statement_id = rsd.execute_statement(Sql="SELECT 7", StatementName="listed-one", **WHERE)["Id"]
    wait(rsd, statement_id)
    listed = rsd.list_statements(StatementName="listed-one")["Statements"]
    assert [s["Id"] for s in listed] == [statement_id]
    assert listed[0]["QueryString"] == "SELECT 7"


def test_parameters_reach_the_database(rsd: Any) -> None:
    statement_id = rsd.execute_statement(
        Sql="SELECT :word || '!' AS shout",
        Parameters=[{"name": "word", "value": "hello"}],
        **WHERE,
    )["Id"]
    assert wait(rsd, statement_id)["Status"] == "FINISHED"
    records = rsd.get_statement_result(Id=statement_id)["Records"]
    assert records == [[{"stringValue": "hello!"}]]
