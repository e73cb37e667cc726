"""US-RIIS parsing, GBIF resolution through the loopback stand-in, and the annotate_riis task."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import SCRATCH_BUCKET

from bisonflow.gbif_api import (
    GbifApiError,
    GbifClient,
    NameQuery,
    interpret_match,
    resolve_all,
)
from bisonflow.local.gbif_standin import GbifStandin
from bisonflow.riis import RiisFormatError, annotated_csv, decode, parse_riis
from bisonflow.riis_schema import ANNOTATED_COLUMNS, RIIS_COLUMNS
from bisonflow.taskspec import TaskSpec
from tasks import annotate_riis

BUCKET = SCRATCH_BUCKET
SOURCE_KEY = "input/riis/USRIISv2_MasterList.csv"
TARGET_KEY = "annotated_riis/2024_02_01/USRIISv2_MasterList_annotated.csv"


def _accepted(key: int, name: str) -> dict:
    return {
        "usageKey": key,
        "scientificName": name,
        "status": "ACCEPTED",
        "matchType": "EXACT",
        "confidence": 99,
        "synonym": False,
    }


GBIF_TABLE = {
    "Aira caryophyllea var. caryophyllea": _accepted(100, "Aira caryophyllea var. caryophyllea"),
    "Mentha X piperita": _accepted(200, "Mentha ×piperita L."),
    "Festuca rubra": _accepted(300, "Festuca rubra L."),
    # Synonym without the accepted name: the client looks it up by key (/species/300).
    "Festuca rubra ssp. fallax": {
        "usageKey": 301,
        "acceptedUsageKey": 300,
        "scientificName": "Festuca rubra subsp. fallax (Thuill.) Nyman",
        "status": "SYNONYM",
        "matchType": "EXACT",
        "confidence": 97,
        "synonym": True,
    },
    # Synonym that names its accepted taxon.
    "Eichhornia crassipes": {
        "usageKey": 401,
        "acceptedUsageKey": 400,
        "accepted": "Pontederia crassipes Mart.",
        "scientificName": "Eichhornia crassipes (Mart.) Solms",
        "status": "SYNONYM",
        "matchType": "EXACT",
        "confidence": 98,
        "synonym": True,
    },
    "Banana bunchy top virus": {
        "usageKey": 9,
        "scientificName": "Viruses",
        "status": "ACCEPTED",
        "matchType": "HIGHERRANK",
        "confidence": 90,
        "synonym": False,
    },
}

HEADER = ",".join(RIIS_COLUMNS)


def _row(locality: str, name: str, kingdom: str = "Plantae", **extra: str) -> str:
    values = dict.fromkeys(RIIS_COLUMNS, "")
    values.update(locality=locality, scientificName=name, kingdom=kingdom, **extra)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([values[c] for c in RIIS_COLUMNS])
    return out.getvalue().removesuffix("\n")


# line 1 header; lines 2.. data. Line 5's remark spans lines 5-6; line 7 is blank.
MASTER_LIST = "\n".join(
    [
        HEADER,
        _row("L48", "Mentha X piperita", occurrenceID="riis-1"),  # 2
        _row("AK", "Mentha X piperita", occurrenceID="riis-2"),  # 3 (same name: one request)
        _row("HI", "Festuca rubra ssp. fallax", occurrenceID="riis-3"),  # 4
        _row("L48", "Aira caryophyllea var. caryophyllea", eventRemarks="two\r\nlines"),  # 5-6
        "",  # 7
        _row("XX", "Bad locality"),  # 8 malformed
        _row("L48", "   "),  # 9 malformed: empty scientificName
        "L48,Too few fields",  # 10 malformed
        _row("HI", "Eichhornia crassipes"),  # 11
        _row("L48", "Banana bunchy top virus", kingdom="Viruses"),  # 12 HIGHERRANK
        _row("AK", "Nomen ignotum", kingdom="Animalia"),  # 13 NONE
    ]
)


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps(GBIF_TABLE), "utf-8")
    return path


def _client(base_url: str, **kwargs) -> GbifClient:
    kwargs.setdefault("backoff_seconds", 0.001)
    return GbifClient(base_url, **kwargs)


# --- parsing ---------------------------------------------------------------------------


def test_parse_reports_malformed_rows_with_line_numbers():
    parsed = parse_riis(MASTER_LIST)
    assert [r.line for r in parsed.records] == [2, 3, 4, 5, 11, 12, 13]
    assert [(m.line, m.reason.split()[0]) for m in parsed.malformed] == [
        (8, "locality"),
        (9, "empty"),
        (10, "has"),
    ]
    assert "2 fields" in parsed.malformed[2].reason


def test_parse_keeps_hybrid_and_infraspecific_names_verbatim():
    names = [r.values["scientificName"] for r in parse_riis(MASTER_LIST).records]
    assert "Mentha X piperita" in names
    assert "Festuca rubra ssp. fallax" in names
    assert "Aira caryophyllea var. caryophyllea" in names
    remark = parse_riis(MASTER_LIST).records[3].values["eventRemarks"]
    assert remark == "two\nlines"


def test_parse_tolerates_bom_and_reordered_partial_header():
    text = "\ufefflocality,kingdom,extraColumn,scientificName\r\nHI,Plantae,x,Aus bus\r\n"
    for data in (text.encode("utf-8"), text.removeprefix("\ufeff").encode("utf-8-sig")):
        parsed = parse_riis(decode(data))
        assert parsed.ignored_columns == ("extraColumn",)
        (record,) = parsed.records
        assert record.line == 2
        assert record.values["scientificName"] == "Aus bus"
        assert record.values["locality"] == "HI"
        assert record.values["occurrenceID"] == ""
        assert list(record.values) == list(RIIS_COLUMNS)


def test_decode_accepts_cp1252():
    assert decode("locality\nHI,Müller".encode("cp1252")).endswith("Müller")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("locality,scientificName\nHI,Aus bus\n", "kingdom"),
        ("locality,kingdom,scientificName,kingdom\n", "duplicate"),
    ],
)
def test_parse_rejects_unusable_files(text, message):
    with pytest.raises(RiisFormatError, match=message):
        parse_riis(text)


# --- resolution --------------------------------------------------------------------------


def test_interpret_match_rules():
    assert interpret_match(GBIF_TABLE["Mentha X piperita"]).key == 200
    assert interpret_match(GBIF_TABLE["Eichhornia crassipes"]).name == "Pontederia crassipes Mart."
    assert interpret_match(GBIF_TABLE["Festuca rubra ssp. fallax"]).name == ""  # look up
    assert not interpret_match(GBIF_TABLE["Banana bunchy top virus"]).resolved
    assert not interpret_match({"matchType": "NONE", "confidence": 100}).resolved


def test_resolve_through_standin(table_path):
    records = parse_riis(MASTER_LIST).records
    queries = {r.query for r in records}
    messages: list[str] = []
    with GbifStandin(table_path) as gbif, _client(gbif.base_url) as api:
        resolved = resolve_all(api, queries, concurrency=4, progress=messages.append)
        # 6 distinct names, plus one /species/300 lookup for the nameless synonym
        assert gbif.requests == 7
    by_name = {q.name: (t.key, t.name) for q, t in resolved.items()}
    assert by_name == {
        "Mentha X piperita": (200, "Mentha ×piperita L."),
        "Festuca rubra ssp. fallax": (300, "Festuca rubra L."),
        "Aira caryophyllea var. caryophyllea": (100, "Aira caryophyllea var. caryophyllea"),
        "Eichhornia crassipes": (400, "Pontederia crassipes Mart."),
        "Banana bunchy top virus": (None, ""),
        "Nomen ignotum": (None, ""),
    }
    assert messages[-1].endswith("(100%)")


def test_429_and_503_are_retried(table_path):
    failures = {"Mentha X piperita": [429, 503]}
    with GbifStandin(table_path, fail_first=failures) as gbif, _client(gbif.base_url) as api:
        taxon = api.accepted_taxon(NameQuery("Mentha X piperita", "Plantae"))
        assert (taxon.key, gbif.requests) == (200, 3)


def test_persistent_failure_raises_naming_the_url(table_path):
    failures = {"Mentha X piperita": [503] * 10}
    with GbifStandin(table_path, fail_first=failures) as gbif:
        with _client(gbif.base_url, max_attempts=3) as api, pytest.raises(GbifApiError) as info:
            resolve_all(api, [NameQuery("Mentha X piperita", "Plantae")], concurrency=2)
        assert gbif.requests == 3
    assert "HTTP 503" in str(info.value)
    assert "/species/match" in str(info.value)


def test_unreachable_api_raises():
    with _client("http://127.0.0.1:9/v1", max_attempts=2) as api, pytest.raises(GbifApiError):
        api.match(NameQuery("Aus bus"))


# --- annotated file ----------------------------------------------------------------------


def test_annotated_csv_header_and_values(table_path):
    records = parse_riis(MASTER_LIST).records
    with GbifStandin(table_path) as gbif, _client(gbif.base_url) as api:
        resolved = resolve_all(api, {r.query for r in records})
    rows = list(csv.DictReader(io.StringIO(annotated_csv(records, resolved))))
    assert tuple(rows[0]) == ANNOTATED_COLUMNS
    assert len(rows) == len(records)
    assert rows[0]["gbif_res_taxonkey"] == "200"
    assert rows[0]["occurrenceID"] == "riis-1"
    assert rows[3]["eventRemarks"] == "two\nlines"
    assert (rows[-1]["gbif_res_taxonkey"], rows[-1]["gbif_res_scientificname"]) == ("", "")


# --- the task against moto ---------------------------------------------------------------


def _spec(source: str = SOURCE_KEY) -> TaskSpec:
    return TaskSpec(
        task="annotate_riis",
        month="2024-02",
        bucket=BUCKET,
        execution="test-execution",
        token_parameter="/bison/test/token",
        inputs={"riis": source},
        outputs={"annotated": TARGET_KEY},
    )


def test_task_writes_annotated_list(s3, table_path, monkeypatch, capsys):
    s3.put_object(Bucket=BUCKET, Key=SOURCE_KEY, Body=MASTER_LIST.encode("utf-8-sig"))
    with GbifStandin(table_path, fail_first={"Eichhornia crassipes": [429]}) as gbif:
        monkeypatch.setenv("GBIF_API_URL", gbif.base_url)
        monkeypatch.setenv("GBIF_API_CONCURRENCY", "3")
        result = annotate_riis.run(_spec())
    assert result == {
        "annotated_key": TARGET_KEY,
        "rows": 7,
        "names": 6,
        "resolved": 5,
        "unresolved": 2,
        "malformed_rows": 3,
        "malformed_lines": [8, 9, 10],
    }
    text = s3.get_object(Bucket=BUCKET, Key=TARGET_KEY)["Body"].read().decode("utf-8")
    assert not text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == ANNOTATED_COLUMNS
    keys = [(row[1], row[-2]) for row in rows[1:]]
    assert ("Eichhornia crassipes", "400") in keys
    assert ("Festuca rubra ssp. fallax", "300") in keys
    log = capsys.readouterr().out
    assert "skipping line 8" in log
    assert "(100%)" in log


def test_task_missing_input_names_the_key(s3, table_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=f"s3://{BUCKET}/input/riis/missing.csv"):
        annotate_riis.run(_spec("input/riis/missing.csv"))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="annotated_riis/")


def test_task_refuses_a_list_with_no_valid_rows(s3):
    s3.put_object(Bucket=BUCKET, Key=SOURCE_KEY, Body=f"{HEADER}\n{_row('XX', 'Aus')}\n".encode())
    with pytest.raises(RiisFormatError, match="no valid RIIS rows"):
        annotate_riis.run(_spec())
