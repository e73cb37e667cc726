"""RangedObject reads a parquet part from S3 by byte ranges: its schema with one request, the
columns asked for without the rest, and the same values as the whole object."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from test_calc_stats import s3  # noqa: F401 (fixture)

from bisonflow.stats import changes, s3_ranged
from bisonflow.stats.s3_ranged import RangedObject


def _part(rows: int) -> bytes:
    rng = np.random.default_rng(9)
    table = pa.table(
        {
            "geoid": [f"{i % 300:05d}" for i in range(rows)],
            "specieskey": [str(v) for v in rng.integers(1_000_000, 2_000_000, rows)],
            "notes": [f"free text {v} " * 4 for v in rng.integers(0, 10**9, rows)],
            "occ_count": rng.integers(1, 50, rows),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=rows // 4)
    return sink.getvalue()


class CountingS3:
    """Counts GetObject calls and the bytes they return."""

    def __init__(self, real) -> None:
        self._real, self.gets, self.bytes = real, 0, 0

    def get_object(self, **kwargs):
        answer = self._real.get_object(**kwargs)
        body = answer["Body"].read()
        self.gets, self.bytes = self.gets + 1, self.bytes + len(body)
        return answer | {"Body": io.BytesIO(body)}

    def __getattr__(self, name):
        return getattr(self._real, name)


def test_a_schema_costs_one_request_of_the_tail(s3):  # noqa: F811
    body = _part(40_000)
    s3.put_object(Bucket=s3.bucket, Key="part.parquet", Body=body)
    counting = CountingS3(s3)
    ranged = RangedObject(counting, s3.bucket, "part.parquet")
    assert pq.ParquetFile(ranged).schema_arrow == pq.ParquetFile(io.BytesIO(body)).schema_arrow
    assert ranged.size == len(body) > 10 * s3_ranged.TAIL_BYTES
    assert counting.gets == 1 and counting.bytes == s3_ranged.TAIL_BYTES


def test_the_columns_read_are_those_of_the_whole_object_and_the_others_stay_unread(s3):  # noqa: F811
    body = _part(40_000)
    s3.put_object(Bucket=s3.bucket, Key="part.parquet", Body=body)
    counting = CountingS3(s3)
    read = pq.ParquetFile(RangedObject(counting, s3.bucket, "part.parquet")).read(["geoid"])
    assert read.equals(pq.read_table(io.BytesIO(body), columns=["geoid"]))
    assert counting.bytes < len(body) / 4  # the free-text column is most of the file


def test_an_object_shorter_than_the_tail_is_read_whole_from_the_first_answer(s3):  # noqa: F811
    s3.put_object(Bucket=s3.bucket, Key="small", Body=b"0123456789")
    ranged = RangedObject(s3, s3.bucket, "small")
    assert ranged.size == 10 and ranged.read() == b"0123456789"
    ranged.seek(-4, io.SEEK_END)
    assert ranged.read(2) == b"67" and ranged.tell() == 8
    assert ranged.requests == 1
    with pytest.raises(ValueError, match="seek before the start"):
        ranged.seek(-11, io.SEEK_END)


def test_a_first_month_fetches_only_the_footers_of_its_list(s3, monkeypatch):  # noqa: F811
    """changes.compare_lists checks a first month's columns: through RangedObject that is
    one tail request per part, not the part (month_record hands it such files)."""
    table = pa.table(
        {name: [f"{name}{i}" for i in range(30_000)] for name in changes.LABELS}
        | {"occ_count": np.ones(30_000, np.int64)}
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    assert len(sink.getvalue()) > 4 * s3_ranged.TAIL_BYTES
    s3.put_object(Bucket=s3.bucket, Key="list/0000_part_00", Body=sink.getvalue())
    counting = CountingS3(s3)
    first = changes.compare_lists(
        changes.CountyList(
            lambda: [RangedObject(counting, s3.bucket, "list/0000_part_00")], "s3://b/list/"
        ),
        None,
        None,
    )
    assert first.previous_month is None and first.new_records.num_rows == 0
    assert counting.gets == 1 and counting.bytes <= s3_ranged.TAIL_BYTES


def test_an_empty_object_s3_cannot_range_reads_as_empty():
    """S3 answers a range of a zero-byte object with 416 InvalidRange (moto gives it whole)."""

    class RangeRefusing:
        def get_object(self, **kwargs):
            raise ClientError({"Error": {"Code": "InvalidRange"}}, "GetObject")

    ranged = RangedObject(RangeRefusing(), "bucket", "empty")
    assert ranged.size == 0 and ranged.read() == b""
    with pytest.raises(pa.ArrowInvalid):  # refused as parquet, as the empty bytes were
        pq.ParquetFile(ranged)
