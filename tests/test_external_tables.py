"""The Data API stand-in reads an external table in place, as Redshift Spectrum does.

CREATE EXTERNAL TABLE only writes the catalog; each query scans the files the LOCATION holds
when it runs (Amazon Redshift Database Developer Guide, "Querying external data using Amazon
Redshift Spectrum" and CREATE EXTERNAL TABLE, LOCATION). The old stand-in copied the files
when the table was created: a file put or deleted afterwards was not seen, and a location
with no files failed CREATE EXTERNAL TABLE. Every test here goes through the Data API of the
session's emulator, as the workflow does.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bisonflow.local.redshift import moto_s3
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.statements import SqlStatementFailed, run_batches

REGION = "us-east-1"
BUCKET = "bisonflow-external-tables-test"
WORKGROUP = "bisonflow-external-tables-test"
SCHEMA = "ext_in_place"
CREATE_SCHEMA = (
    f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {SCHEMA} FROM DATA CATALOG DATABASE 'ext_in_place' "
    "IAM_ROLE default CREATE EXTERNAL DATABASE IF NOT EXISTS"
)


@pytest.fixture(scope="module")
def clients(runtime: LocalRuntime) -> tuple[Any, Any]:
    s3, data = runtime.clients["s3"], runtime.clients["redshift-data"]
    s3.create_bucket(Bucket=BUCKET)
    run_batches(data, [[CREATE_SCHEMA]], WORKGROUP)
    return s3, data


@pytest.fixture
def table(clients: tuple[Any, Any]) -> Iterator[tuple[str, str]]:
    """A fresh external table (name, key prefix) over an empty location, dropped after."""
    _, data = clients
    name = f"{SCHEMA}.t_{uuid.uuid4().hex[:8]}"
    prefix = f"{name}/"
    run_batches(
        data,
        [
            [
                f"CREATE EXTERNAL TABLE {name} (k INT, label VARCHAR(20)) "
                f"STORED AS PARQUET LOCATION 's3://{BUCKET}/{prefix}'"
            ]
        ],
        WORKGROUP,
    )
    yield name, prefix
    run_batches(data, [[f"DROP TABLE IF EXISTS {name}"]], WORKGROUP)


def _part(keys: list[int], wide: bool = False, labelled: bool = True) -> bytes:
    """A part with INT keys (int32), or BIGINT ones (int64) when `wide`; with no label
    column unless `labelled` (the table then reads every label as NULL)."""
    sink = io.BytesIO()
    columns: dict[str, pa.Array] = {"k": pa.array(keys, pa.int64() if wide else pa.int32())}
    if labelled:
        columns["label"] = pa.array([f"r{k}" for k in keys])
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


def _keys(data: Any, name: str) -> list[int]:
    statement_id = run_batches(data, [[f"SELECT k FROM {name} ORDER BY k"]], WORKGROUP)
    records = data.get_statement_result(Id=statement_id)["Records"]
    return [int(r[0]["longValue"]) for r in records]


def test_a_location_with_no_files_is_an_empty_table(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    """Spectrum scans no file and returns no rows; the old stand-in refused the CREATE."""
    _, data = clients
    name, _ = table
    assert _keys(data, name) == []


def test_files_put_and_deleted_after_create_are_seen_by_later_queries(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    s3, data = clients
    name, prefix = table
    s3.put_object(Bucket=BUCKET, Key=prefix + "part-0.parquet", Body=_part([1, 2]))
    assert _keys(data, name) == [1, 2]
    s3.put_object(Bucket=BUCKET, Key=prefix + "part-1.parquet", Body=_part([3]))
    s3.put_object(Bucket=BUCKET, Key=prefix + "_SUCCESS", Body=b"")  # hidden: not a part
    s3.put_object(Bucket=BUCKET, Key=prefix + "sub/part-2.parquet", Body=_part([4]))
    assert _keys(data, name) == [1, 2, 3, 4]  # subfolders are scanned too
    s3.put_object(Bucket=BUCKET, Key=prefix + "part-0.parquet", Body=_part([10]))  # replaced
    s3.delete_object(Bucket=BUCKET, Key=prefix + "part-1.parquet")
    assert _keys(data, name) == [4, 10]
    for key in ("part-0.parquet", "sub/part-2.parquet", "_SUCCESS"):
        s3.delete_object(Bucket=BUCKET, Key=prefix + key)
    assert _keys(data, name) == []


def test_create_reads_nothing_and_a_query_fetches_each_part_once(
    clients: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is not copied at mount (the old stand-in copied every part there): the
    first query fetches each part once, later queries read the cached copy."""
    s3, data = clients
    name, prefix = f"{SCHEMA}.mount_{uuid.uuid4().hex[:8]}", f"mount-{uuid.uuid4().hex[:8]}/"
    for n in range(3):
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}part-{n}.parquet", Body=_part([n]))
    fetched: list[str] = []
    read = moto_s3.MotoS3.read

    def counting_read(self: moto_s3.MotoS3, bucket: str, key: str) -> bytes:
        fetched.append(key)
        return read(self, bucket, key)

    monkeypatch.setattr(moto_s3.MotoS3, "read", counting_read)
    create = (
        f"CREATE EXTERNAL TABLE {name} (k INT, label VARCHAR(20)) "
        f"STORED AS PARQUET LOCATION 's3://{BUCKET}/{prefix}'"
    )
    try:
        run_batches(data, [[create]], WORKGROUP)
        assert fetched == []
        assert _keys(data, name) == [0, 1, 2]
        assert sorted(fetched) == [f"{prefix}part-{n}.parquet" for n in range(3)]
        assert _keys(data, name) == [0, 1, 2]
        assert len(fetched) == 3
    finally:
        run_batches(data, [[f"DROP TABLE IF EXISTS {name}"]], WORKGROUP)


def test_a_part_added_in_another_type_is_refused_by_the_next_query(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    """Spectrum checks the types when it scans, so the check follows the files listed then."""
    s3, data = clients
    name, prefix = table
    s3.put_object(Bucket=BUCKET, Key=prefix + "a.parquet", Body=_part([1]))
    assert _keys(data, name) == [1]
    s3.put_object(Bucket=BUCKET, Key=prefix + "b.parquet", Body=_part([2], wide=True))
    with pytest.raises(SqlStatementFailed) as refused:
        _keys(data, name)
    assert (
        f"Spectrum Scan Error. File 'https://s3.{REGION}.amazonaws.com/{BUCKET}/{prefix}"
        f"b.parquet' has an incompatible Parquet schema for column 's3://{BUCKET}/"
        f"{prefix.rstrip('/')}.k'. Column type: INT, Parquet schema:\\noptional int64 k"
    ) in str(refused.value)
    statement_id = run_batches(data, [[f"SELECT count(label) FROM {name}"]], WORKGROUP)
    (record,) = data.get_statement_result(Id=statement_id)["Records"]
    assert record[0]["longValue"] == 2  # a query not reading k still runs


#: Statements reading the refused k of a part holding no label, where `label IS NOT NULL`
#: keeps no row: Spectrum refuses them all the same (the error is about the file's schema).
READING_K_OVER_NO_ROWS = [
    "SELECT k FROM {t} WHERE label IS NOT NULL",
    "SELECT * FROM {t} WHERE label IS NOT NULL",
    "SELECT count(*) FROM {t} WHERE label IS NOT NULL AND k = 1",  # k only in WHERE
    "SELECT label, count(*) FROM {t} WHERE label IS NOT NULL GROUP BY label, k",
    "SELECT count(*) FROM {t} AS e JOIN (SELECT 1 AS one) AS o ON e.k = o.one "
    "WHERE e.label IS NOT NULL",
    "SELECT 1 WHERE 1 IN (SELECT k FROM {t} WHERE label IS NOT NULL)",
    "CREATE TABLE never_made AS SELECT k FROM {t} WHERE label IS NOT NULL",  # as the subset
]


@pytest.mark.parametrize("query", READING_K_OVER_NO_ROWS)
def test_a_refused_column_fails_the_statement_whichever_rows_pass(
    clients: tuple[Any, Any], table: tuple[str, str], query: str
) -> None:
    """The old stand-in raised Spectrum's error only when a row reached the refused column,
    so these statements, whose WHERE keeps no row, succeeded where Spectrum fails them."""
    s3, data = clients
    name, prefix = table
    s3.put_object(
        Bucket=BUCKET, Key=prefix + "a.parquet", Body=_part([1], wide=True, labelled=False)
    )
    with pytest.raises(SqlStatementFailed) as refused:
        run_batches(data, [[query.format(t=name)]], WORKGROUP)
    assert (
        f"ERROR: Spectrum Scan Error. File 'https://s3.{REGION}.amazonaws.com/{BUCKET}/"
        f"{prefix}a.parquet' has an incompatible Parquet schema for column 's3://{BUCKET}/"
        f"{prefix.rstrip('/')}.k'. Column type: INT, Parquet schema:\\noptional int64 k"
    ) in str(refused.value)


def test_statements_not_reading_the_refused_column_run(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    """Spectrum reads only the columns a query needs: scanning the table without k runs."""
    s3, data = clients
    name, prefix = table
    s3.put_object(Bucket=BUCKET, Key=prefix + "a.parquet", Body=_part([1, 2], wide=True))
    statement_id = run_batches(
        data,
        [
            [
                f"SELECT label, (SELECT count(*) FROM {name}) AS n FROM {name} AS e "
                "WHERE e.label <> 'r9' ORDER BY label"
            ]
        ],
        WORKGROUP,
    )
    records = data.get_statement_result(Id=statement_id)["Records"]
    assert [(r[0]["stringValue"], r[1]["longValue"]) for r in records] == [("r1", 2), ("r2", 2)]


def test_a_rolled_back_batch_does_not_leave_the_view_behind_the_files(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    """A batch is one transaction: the view it rebuilt is undone with it, and the next
    statement must rebuild it rather than trust what it last listed."""
    s3, data = clients
    name, prefix = table
    s3.put_object(Bucket=BUCKET, Key=prefix + "a.parquet", Body=_part([7]))
    with pytest.raises(SqlStatementFailed, match="no_such_table"):
        run_batches(
            data, [[f"SELECT count(*) FROM {name}", "SELECT * FROM no_such_table"]], WORKGROUP
        )
    assert _keys(data, name) == [7]


def test_external_ddl_stays_outside_transactions(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    _, data = clients
    name, _ = table
    with pytest.raises(SqlStatementFailed, match="cannot run inside a transaction block"):
        run_batches(data, [[f"DROP TABLE {name}", "SELECT 1"]], WORKGROUP)
    with pytest.raises(SqlStatementFailed, match="already exists"):
        run_batches(
            data,
            [
                [
                    f"CREATE EXTERNAL TABLE {name} (k INT) STORED AS PARQUET "
                    f"LOCATION 's3://{BUCKET}/elsewhere/'"
                ]
            ],
            WORKGROUP,
        )
    run_batches(data, [[f"DROP TABLE {name}"]], WORKGROUP)
    with pytest.raises(SqlStatementFailed, match="does not exist"):
        run_batches(data, [[f"DROP TABLE {name}"]], WORKGROUP)
    with pytest.raises(SqlStatementFailed, match="does not exist"):
        _keys(data, name)


def test_an_unreadable_location_fails_only_the_queries_that_scan_it(
    clients: tuple[Any, Any], table: tuple[str, str]
) -> None:
    """Each statement lists every external table, but a table whose location cannot be read
    must not fail statements that do not scan it (Spectrum reads a table only when scanned)."""
    s3, data = clients
    name, prefix = table
    s3.put_object(Bucket=BUCKET, Key=prefix + "bad.parquet", Body=b"not parquet at all")
    for query in (f"SELECT k FROM {name}", f"SELECT count(*) FROM {name} WHERE k = 5"):
        with pytest.raises(SqlStatementFailed, match=f"{name}: cannot read parquet under s3://"):
            run_batches(data, [[query]], WORKGROUP)  # whichever rows the WHERE would keep
    statement_id = run_batches(data, [["SELECT 41 + 1"]], WORKGROUP)
    (record,) = data.get_statement_result(Id=statement_id)["Records"]
    assert record[0]["longValue"] == 42
    s3.put_object(Bucket=BUCKET, Key=prefix + "bad.parquet", Body=_part([5]))
    assert _keys(data, name) == [5]
    s3.delete_object(Bucket=BUCKET, Key=prefix + "bad.parquet")
