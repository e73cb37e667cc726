"""GBIF's snapshot schema by snapshot date, and everything that derives from it.

The dates and types are GBIF's own (aws-public-data.md in gbif/occurrence, "Change
history"); the external table DDL, the subset's casts, the sample generator's parquet and the
snapshot the local runtime publishes must all follow the month.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bisonflow.gbif.schema import COLUMN_NAMES, TYPE_CHANGES, Kind, snapshot_columns
from bisonflow.layout import MonthLayout
from bisonflow.local.deploy import upload_snapshot
from bisonflow.sample import SampleManifest, generate_sample, month_parts, snapshot_schema
from bisonflow.sample.schema import ARROW_TYPES
from bisonflow.sql.workflow_sql import SqlTarget, statement_batches

TARGET = SqlTarget(gbif_bucket="gbif-open-data-us-east-1", bison_bucket="bison-bucket")

#: (snapshot, gbifid, taxonkey and specieskey, eventdate, identifiedby), as GBIF documents.
DOCUMENTED = [
    (dt.date(2021, 4, 13), Kind.BIGINT, Kind.INTEGER, Kind.STRING, Kind.STRING),
    (dt.date(2022, 4, 1), Kind.BIGINT, Kind.INTEGER, Kind.STRING, Kind.STRING),
    (dt.date(2022, 5, 1), Kind.BIGINT, Kind.INTEGER, Kind.TIMESTAMP, Kind.STRING_ARRAY),
    (dt.date(2023, 1, 1), Kind.BIGINT, Kind.INTEGER, Kind.TIMESTAMP, Kind.STRING_ARRAY),
    (dt.date(2023, 2, 1), Kind.STRING, Kind.INTEGER, Kind.TIMESTAMP, Kind.STRING_ARRAY),
    (dt.date(2025, 7, 1), Kind.STRING, Kind.INTEGER, Kind.TIMESTAMP, Kind.STRING_ARRAY),
    (dt.date(2025, 8, 1), Kind.STRING, Kind.STRING, Kind.TIMESTAMP, Kind.STRING_ARRAY),
    (dt.date(2026, 11, 1), Kind.STRING, Kind.STRING, Kind.TIMESTAMP, Kind.STRING_ARRAY),
]


@pytest.mark.parametrize(("snapshot", "gbifid", "taxon", "event", "ident"), DOCUMENTED)
def test_types_follow_gbifs_change_history(
    snapshot: dt.date, gbifid: Kind, taxon: Kind, event: Kind, ident: Kind
) -> None:
    kinds = dict(snapshot_columns(snapshot))
    assert tuple(kinds) == COLUMN_NAMES and len(kinds) == 50
    assert kinds["gbifid"] == gbifid
    assert kinds["taxonkey"] == kinds["specieskey"] == taxon
    assert kinds["eventdate"] == kinds["dateidentified"] == kinds["lastinterpreted"] == event
    assert kinds["identifiedby"] == kinds["recordedby"] == kinds["typestatus"] == ident
    assert kinds["mediatype"] == kinds["issue"] == Kind.STRING_ARRAY  # arrays from the start
    assert kinds["individualcount"] == kinds["year"] == Kind.INTEGER
    assert kinds["decimallatitude"] == Kind.DOUBLE


def test_the_taxon_key_change_quotes_gbif() -> None:
    (change,) = [c for c in TYPE_CHANGES if "taxonkey" in c.columns]
    assert change.since == dt.date(2025, 8, 1)
    assert change.columns == ("taxonkey", "specieskey")
    assert "Catalogue of Life" in change.why


def _declared(month: str) -> dict[str, str]:
    """Column -> declared type of the month's CREATE EXTERNAL TABLE."""
    create = statement_batches("subset", MonthLayout.for_month(month), TARGET)[2][0]
    assert create.startswith("CREATE EXTERNAL TABLE")
    body = create.split("(", 1)[1].rsplit(")", 1)[0]
    pairs = re.findall(r'^\s+"?(\w+)"? (.+?),?$', body, re.M)
    return dict(pairs)


@pytest.mark.parametrize(
    ("month", "gbifid", "taxonkey"),
    [
        ("2023-01", "BIGINT", "INT"),  # before gbifid's change
        ("2023-02", "VARCHAR(MAX)", "INT"),
        ("2024-06", "VARCHAR(MAX)", "INT"),
        ("2025-07", "VARCHAR(MAX)", "INT"),  # the last month of integer taxon keys
        ("2025-08", "VARCHAR(MAX)", "VARCHAR(MAX)"),
        ("2025-09", "VARCHAR(MAX)", "VARCHAR(MAX)"),
    ],
)
def test_external_table_declares_the_months_types(month: str, gbifid: str, taxonkey: str) -> None:
    declared = _declared(month)
    assert list(declared) == list(COLUMN_NAMES)
    assert declared["gbifid"] == gbifid
    assert declared["taxonkey"] == declared["specieskey"] == taxonkey
    assert declared["eventdate"] == "TIMESTAMP"
    assert declared["recordedby"] == "ARRAY<VARCHAR(MAX)>"


def test_external_table_before_2022_05_declares_strings_for_dates_and_lists() -> None:
    declared = _declared("2022-04")
    assert declared["eventdate"] == declared["lastinterpreted"] == "VARCHAR(MAX)"
    assert declared["recordedby"] == "VARCHAR(MAX)"
    assert declared["issue"] == "ARRAY<VARCHAR(MAX)>"


@pytest.mark.parametrize(
    ("month", "cast"),
    [
        ("2023-01", {"gbifid", "taxonkey", "specieskey"}),
        ("2025-07", {"taxonkey", "specieskey"}),
        ("2025-09", set()),
    ],
)
def test_subset_carries_the_identifiers_as_text(month: str, cast: set[str]) -> None:
    create = statement_batches("subset", MonthLayout.for_month(month), TARGET)[3][1]
    select = create.split("SELECT", 1)[1].split("FROM", 1)[0]
    found = set(re.findall(r"CAST\((\w+) AS VARCHAR\(20\)\) AS \1", select))
    assert found == cast
    for name in {"gbifid", "taxonkey", "specieskey"} - cast:
        assert re.search(rf"(^|, ){name}(,|$)", select.strip()), name


# --- the sample and the snapshot the local runtime publishes --------------------------------


def _matches_gbif_schema(schema: pa.Schema, snapshot: dt.date) -> None:
    assert schema.names == list(COLUMN_NAMES)
    for name, kind in snapshot_columns(snapshot):
        assert schema.field(name).type == ARROW_TYPES[kind], name


@pytest.fixture(scope="module")
def july(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    """A sample generated for 2025-07, the last month of integer taxon keys."""
    return generate_sample(
        tmp_path_factory.mktemp("july"), records=400, seed=5, snapshot=dt.date(2025, 7, 1)
    )


def test_generated_sample_is_written_in_the_requested_months_schema(
    july: SampleManifest, tmp_path: Path
) -> None:
    for part in july.snapshot_dir.iterdir():
        _matches_gbif_schema(pq.read_schema(part), dt.date(2025, 7, 1))
        assert pq.read_schema(part).field("taxonkey").type == pa.int32()
    september = generate_sample(tmp_path, records=400, seed=5, snapshot=dt.date(2025, 9, 1))
    for part in september.snapshot_dir.iterdir():
        _matches_gbif_schema(pq.read_schema(part), dt.date(2025, 9, 1))
        assert pq.read_schema(part).field("taxonkey").type == pa.string()
    # the same records either way: only the type of the keys differs
    keys = [pq.read_table(m.snapshot_dir, columns=["taxonkey"]) for m in (july, september)]
    assert keys[0]["taxonkey"].cast(pa.string()).to_pylist() == keys[1]["taxonkey"].to_pylist()


@pytest.mark.parametrize("snapshot", [d for d, *_ in DOCUMENTED])
def test_month_parts_rewrite_the_sample_in_each_months_schema(
    july: SampleManifest, snapshot: dt.date
) -> None:
    original = pq.read_table(july.snapshot_dir)
    parts = month_parts(july.snapshot_dir, snapshot)
    assert [name for name, _ in parts] == july.expected["part_files"]
    table = pa.concat_tables(pq.read_table(io.BytesIO(body)) for _, body in parts)
    assert table.schema.equals(snapshot_schema(snapshot), check_metadata=False)
    _matches_gbif_schema(table.schema, snapshot)
    for name in ("gbifid", "taxonkey", "specieskey"):
        as_text = [None if v is None else str(v) for v in table[name].to_pylist()]
        assert as_text == original[name].cast(pa.string()).to_pylist(), name
    if snapshot < dt.date(2022, 5, 1):  # dates as ISO 8601 text, lists joined
        first = original["eventdate"].drop_null()[0].as_py()
        assert first.isoformat() in table["eventdate"].to_pylist()
        joined = [" | ".join(v) or None for v in original["recordedby"].to_pylist()]
        assert table["recordedby"].to_pylist() == joined


class _RecordingS3:
    """put_object into a dict: what a publish sends."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: Any) -> None:  # noqa: N803
        self.objects[(Bucket, Key)] = Body


@pytest.mark.parametrize(
    ("month", "taxon_type"), [("2025-07", pa.int32()), ("2025-09", pa.string())]
)
def test_publishing_a_month_uploads_that_months_schema(
    july: SampleManifest, month: str, taxon_type: pa.DataType
) -> None:
    s3 = _RecordingS3()
    count = upload_snapshot(s3, "gbif-open-data-us-east-1", july.snapshot_dir, month)
    prefix = MonthLayout.for_month(month).gbif_prefix
    assert count == len(july.expected["part_files"])
    parts = {key: body for key, body in s3.objects.items() if key[1].startswith(prefix)}
    assert sorted(parts) == [
        ("gbif-open-data-us-east-1", prefix + name) for name in july.expected["part_files"]
    ]
    for body in parts.values():
        schema = pq.read_schema(io.BytesIO(body))
        _matches_gbif_schema(schema, MonthLayout.for_month(month).snapshot)
        assert schema.field("taxonkey").type == taxon_type
