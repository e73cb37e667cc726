"""The annotate_riis task end to end against the emulator's S3 and the loopback GBIF stand-in."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import gzip
import io
import json
from concurrent.futures import ThreadPoolExecutor, wait

import pytest
from conftest import SCRATCH_BUCKET
from test_riis import (
    EXPECTED_KEYS,
    GBIF_TABLE,
    HEADER,
    MALFORMED_LINES,
    MASTER_LIST,
    REAL_HEADER,
    REAL_ROWS,
    _row,
    _stray_quote_list,
    real_list,
)

from bisonflow.gbif import name_cache
from bisonflow.gbif.species_api import GbifApiError, NameQuery
from bisonflow.layout import NAME_CACHE_KEY, RIIS_INPUT_KEY, MonthLayout
from bisonflow.local.gbif_standin import STALL, GbifStandin
from bisonflow.riis.columns import ANNOTATED_COLUMNS, RESOLVED_COLUMNS, RIIS_COLUMNS
from bisonflow.riis.master_list import RiisFormatError
from bisonflow.steps.ec2_tasks import task_spec
from bisonflow.steps.taskspec import AnnotateRiisSpec
from tasks import annotate_riis

LAYOUT = MonthLayout.for_month("2024-02")
NAMES = 11  # distinct (name, authorship, kingdom) triples in MASTER_LIST


@pytest.fixture
def gbif(tmp_path, monkeypatch):
    """The stand-in with one 429 to get through; the task finds it through GBIF_API_URL."""
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps(GBIF_TABLE), "utf-8")
    with GbifStandin(path, fail_first={"Eichhornia crassipes": [429]}) as standin:
        monkeypatch.setenv("GBIF_API_URL", standin.base_url)
        monkeypatch.setenv("GBIF_API_CONCURRENCY", "3")
        yield standin


def _spec(source: str = RIIS_INPUT_KEY, max_age_days: int = 30) -> AnnotateRiisSpec:
    """The spec launch_task writes (the `s3` fixture sets BISON_BUCKET), with test inputs."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("NAME_CACHE_MAX_AGE_DAYS", str(max_age_days))
        spec = task_spec("annotate_riis", LAYOUT, "test-execution")
    assert spec.bucket == SCRATCH_BUCKET
    assert isinstance(spec, AnnotateRiisSpec)
    return dataclasses.replace(spec, inputs=dataclasses.replace(spec.inputs, riis=source))


def _text(s3, key: str) -> str:
    return s3.get_object(Bucket=SCRATCH_BUCKET, Key=key)["Body"].read().decode("utf-8")


def _keys(s3) -> list[str]:
    listing = s3.list_objects_v2(Bucket=SCRATCH_BUCKET)
    return sorted(obj["Key"] for obj in listing.get("Contents", []))


def test_first_month_writes_annotated_list_report_and_cache(s3, gbif, capsys):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode("utf-8-sig"))
    result = annotate_riis.run(_spec())
    assert result == {
        "annotated_key": LAYOUT.riis_annotated_key,
        "report_key": LAYOUT.riis_report_key,
        "rows": 12,
        "names": NAMES,
        "resolved": 9,
        "doubtful": 2,
        "unresolved": 3,
        "resolved_names": 8,
        "doubtful_names": 2,
        "unresolved_names": 3,
        "malformed_rows": 6,
        "malformed_lines": MALFORMED_LINES,
        "unknown_column_count": 0,
        "unknown_columns": [],
        "missing_columns": [],
        "api_calls": NAMES + 2,  # one /species/300 lookup, one retry after the 429
        "api_retries": 1,
        "cache_hits": 0,
        "cache": {
            "status": "missing",
            "fresh": 0,
            "expired": 0,
            "dropped": 0,
            "written": True,
            "entries": NAMES,
            "saves": 1,  # the final one: no checkpoint falls due in a few seconds
        },
        "previous_rows": None,  # the first month: nothing to compare with
        "previous_names": None,
        "forced_problems": [],
    }
    assert len(json.dumps(result)) < 2048  # the Step Functions output stays small
    rows = list(csv.reader(io.StringIO(_text(s3, LAYOUT.riis_annotated_key))))
    assert tuple(rows[0]) == ANNOTATED_COLUMNS
    key_at = ANNOTATED_COLUMNS.index("gbif_res_taxonkey")
    assert [row[key_at] for row in rows[1:]] == [
        "" if EXPECTED_KEYS[line] is None else str(EXPECTED_KEYS[line])
        for line in sorted(EXPECTED_KEYS)
    ]
    # The match's rank, species and the listed name's own key (a synonym's: 301, 401).
    resolved = {
        line: tuple(row[len(RIIS_COLUMNS) :])
        for line, row in zip(sorted(EXPECTED_KEYS), rows[1:], strict=True)
    }
    assert resolved[4] == ("300", "Festuca rubra L.", "SUBSPECIES", "300", "301")
    assert resolved[5][2:] == ("VARIETY", "99", "100")
    assert resolved[11] == ("400", "Pontederia crassipes Mart.", "SPECIES", "400", "401")
    unresolved = {resolved[line] for line, key in EXPECTED_KEYS.items() if key is None}
    assert unresolved == {("",) * len(RESOLVED_COLUMNS)}
    report = list(csv.DictReader(io.StringIO(_text(s3, LAYOUT.riis_report_key))))
    assert [int(r["line"]) for r in report] == [8, 9, 10, 12, 13, 14, 15, 16, 17, 18, 19]
    cache_object = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)
    cache = json.loads(gzip.decompress(cache_object["Body"].read()))
    assert len(cache["entries"]) == NAMES
    log = capsys.readouterr().out
    assert "leaving out line 8: locality 'XX'" in log
    assert "asking GBIF for 11, 3 at a time" in log


def test_the_task_takes_its_settings_from_the_spec_not_its_environment(
    s3, gbif, capsys, monkeypatch
):
    """One route for task settings (bisonflow.steps.taskspec): launch_task read them into the
    spec (the gbif fixture's GBIF_API_CONCURRENCY=3); the task's own environment at run time
    changes nothing, and the spec records what the month ran with."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode("utf-8-sig"))
    monkeypatch.setenv("GBIF_RETRY_BUDGET_SECONDS", "2")  # as the fault matrix's gbif-down
    spec = _spec()
    monkeypatch.delenv("GBIF_RETRY_BUDGET_SECONDS")
    assert spec.settings.gbif_limit.concurrency == 3
    with annotate_riis._CheckpointingClient(lambda query, match: None, spec.settings) as client:
        assert (client.retry_budget_seconds, client.limit.ceiling) == (2, 3)
    monkeypatch.setenv("GBIF_API_CONCURRENCY", "1")
    monkeypatch.setenv("NAME_CACHE_MAX_AGE_DAYS", "0")
    annotate_riis.run(spec)
    assert "asking GBIF for 11, 3 at a time" in capsys.readouterr().out
    assert annotate_riis.run(spec)["cache_hits"] == NAMES  # the spec's 30 days, not 0


def test_a_month_where_nothing_changed_costs_no_calls(s3, gbif):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    first = annotate_riis.run(_spec())
    annotated = _text(s3, LAYOUT.riis_annotated_key)
    requests_before = gbif.requests
    second = annotate_riis.run(_spec())
    assert gbif.requests == requests_before
    assert (second["api_calls"], second["cache_hits"]) == (0, NAMES)
    assert second["cache"]["status"] == "loaded"
    assert _text(s3, LAYOUT.riis_annotated_key) == annotated
    ignore = ("api_calls", "api_retries", "cache_hits", "cache")
    assert {k: v for k, v in second.items() if k not in ignore} == {
        k: v for k, v in first.items() if k not in ignore
    }
    # A new name on the list is the only call of the next month.
    changed = f"{MASTER_LIST}\n{_row('AK', 'Festuca rubra')}"
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=changed.encode())
    third = annotate_riis.run(_spec())
    assert (third["api_calls"], third["cache_hits"], third["names"]) == (1, NAMES, NAMES + 1)


def test_max_age_zero_asks_every_name_again(s3, gbif):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    annotate_riis.run(_spec())
    again = annotate_riis.run(_spec(max_age_days=0))
    assert (again["cache_hits"], again["api_calls"]) == (0, NAMES + 1)  # + the synonym lookup
    assert again["cache"]["status"] == "disabled"


def test_a_corrupt_cache_does_not_fail_the_month_and_is_replaced(s3, gbif, capsys):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY, Body=b"\x1f\x8b half a gzip")
    result = annotate_riis.run(_spec())
    assert result["cache"]["status"] == "corrupt"
    assert result["resolved"] == 9
    assert "WARNING: s3://" in capsys.readouterr().out
    assert annotate_riis.run(_spec())["cache_hits"] == NAMES  # the new cache is whole


def test_cache_entries_from_before_rank_and_keys_were_kept_are_resolved_again(s3, gbif):
    """A cache written before the match's rank, speciesKey and usageKey were kept: every
    entry is dropped and its name asked again, so the annotated list carries them."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    annotate_riis.run(_spec())
    cache_object = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)
    document = json.loads(gzip.decompress(cache_object["Body"].read()))
    for entry in document["entries"]:
        for field in ("rank", "species_key", "usage_key"):
            del entry["match"][field]
    body = gzip.compress(json.dumps(document).encode())
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY, Body=body)
    again = annotate_riis.run(_spec())
    assert again["cache"]["dropped"] == NAMES
    assert (again["cache_hits"], again["api_calls"]) == (0, NAMES + 1)  # + the synonym lookup
    annotated = list(csv.DictReader(io.StringIO(_text(s3, LAYOUT.riis_annotated_key))))
    festuca = next(r for r in annotated if r["scientificName"] == "Festuca rubra ssp. fallax")
    assert (festuca["gbif_res_rank"], festuca["gbif_res_usagekey"]) == ("SUBSPECIES", "301")


def test_gbif_down_fails_the_task_and_writes_nothing(s3, gbif, monkeypatch):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    monkeypatch.setenv("GBIF_API_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setattr(annotate_riis.GbifClient, "__init__", _impatient_init)
    with pytest.raises(GbifApiError, match="could not resolve"):
        annotate_riis.run(_spec())
    assert _keys(s3) == [RIIS_INPUT_KEY]  # no annotated list, no report, no cache


_client_init = annotate_riis.GbifClient.__init__


def _impatient_init(self, base_url=None, **kwargs):
    """Two quick attempts instead of eight with backoff: the test is about what is written."""
    _client_init(self, base_url, max_attempts=2, backoff_seconds=0.001)


def test_missing_input_names_the_key(s3, gbif):
    with pytest.raises(FileNotFoundError, match=f"s3://{SCRATCH_BUCKET}/input/riis/missing.csv"):
        annotate_riis.run(_spec("input/riis/missing.csv"))
    assert _keys(s3) == []


def test_a_list_with_no_valid_rows_is_refused(s3, gbif):
    body = f"{HEADER}\n{_row('XX', 'Aus bus')}\n"
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=body.encode())
    with pytest.raises(RiisFormatError, match=r"no valid RIIS rows \(1 malformed\)"):
        annotate_riis.run(_spec())
    assert _keys(s3) == [RIIS_INPUT_KEY]


def test_a_bad_max_age_is_named(s3, gbif):
    spec = _spec()
    settings = dataclasses.replace(spec.settings, name_cache_max_age_days="30")
    with pytest.raises(ValueError, match=r"settings\.name_cache_max_age_days = \"30\" is invalid"):
        annotate_riis.run(dataclasses.replace(spec, settings=settings))


# --- the list as USGS publishes it ---------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "line_end"), [("utf-8-sig", "\r\n"), ("cp1252", "\r\n"), ("utf-8", "\n")]
)
def test_the_real_header_round_trips_every_column_and_value(s3, gbif, encoding, line_end):
    """The 32 columns as USGS spells them, from a UTF-8 (BOM) or cp1252 spreadsheet export
    with CRLF line ends: every column and value comes out in the annotated list."""
    body = real_list(REAL_HEADER, REAL_ROWS, line_end).encode(encoding)
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=body)
    result = annotate_riis.run(_spec())
    assert (result["rows"], result["resolved"], result["malformed_rows"]) == (3, 3, 0)
    assert (result["unknown_columns"], result["missing_columns"]) == ([], [])
    rows = list(csv.reader(io.StringIO(_text(s3, LAYOUT.riis_annotated_key))))
    assert rows[0] == [*REAL_HEADER, *RESOLVED_COLUMNS]
    assert [row[: len(REAL_HEADER)] for row in rows[1:]] == REAL_ROWS
    # Accepted species: key, name, rank SPECIES, the species' own key, the usage's own key.
    assert [row[len(REAL_HEADER) :] for row in rows[1:]] == [
        [str(key := GBIF_TABLE[r[1]]["usageKey"]), GBIF_TABLE[r[1]]["scientificName"], "SPECIES"]
        + [str(key)] * 2
        for r in REAL_ROWS
    ]


def test_columns_the_parser_does_not_know_are_named_in_the_step_output(s3, gbif, capsys):
    known = [name != "occurrenceRemarks" for name in REAL_HEADER]
    header = [n for n, keep in zip(REAL_HEADER, known, strict=True) if keep]
    rows = [[v for v, keep in zip(row, known, strict=True) if keep] for row in REAL_ROWS]
    body = real_list([*header, "curatorNote", ""], [[*row, "check", ""] for row in rows])
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=body.encode())
    result = annotate_riis.run(_spec())
    assert result["unknown_column_count"] == 2
    assert result["unknown_columns"] == ["curatorNote", "(column 33, no name)"]
    assert result["missing_columns"] == ["occurrenceRemarks"]
    assert "WARNING: column(s) ['curatorNote', '(column 33, no name)']" in capsys.readouterr().out
    annotated = list(csv.DictReader(io.StringIO(_text(s3, LAYOUT.riis_annotated_key))))
    assert tuple(annotated[0]) == ANNOTATED_COLUMNS  # what Redshift loads by position
    assert [r["occurrenceRemarks"] for r in annotated] == ["", "", ""]
    assert [r["occurrenceID"] for r in annotated] == [row[-1] for row in REAL_ROWS]


def test_an_unclosed_quote_is_in_the_step_output_and_later_rows_are_annotated(s3, gbif):
    text, later_names = _stray_quote_list()
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=text.encode())
    result = annotate_riis.run(_spec())
    assert (result["rows"], result["malformed_rows"], result["malformed_lines"]) == (8, 1, [3])
    annotated = list(csv.DictReader(io.StringIO(_text(s3, LAYOUT.riis_annotated_key))))
    assert [r["scientificName"] for r in annotated[1:]] == later_names
    report = list(csv.DictReader(io.StringIO(_text(s3, LAYOUT.riis_report_key))))
    assert report[0]["line"] == "3"
    assert report[0]["reason"].startswith("unclosed quote: the quoted field opened on line 3")


# --- the name cache grows and is saved as names resolve (issue 11) --------------------------


def _cached_names(s3) -> list[str]:
    cache_object = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)
    return sorted(
        e["name"] for e in json.loads(gzip.decompress(cache_object["Body"].read()))["entries"]
    )


def test_a_short_list_adds_to_the_cache_and_only_the_age_limit_removes_entries(s3, gbif):
    """A truncated list wrote back only its own names (283 entries became 39); now the cache
    keeps every unexpired entry and adds the new answers."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    annotate_riis.run(_spec())
    full = _cached_names(s3)
    assert len(full) == NAMES
    loaded = name_cache.load(s3, SCRATCH_BUCKET, NAME_CACHE_KEY, 30, dt.datetime.now(dt.UTC))
    stale = name_cache.CacheEntry(
        next(iter(loaded.entries.values())).match,
        dt.datetime.now(dt.UTC) - dt.timedelta(days=31),
    )
    entries = {**loaded.entries, NameQuery("Oldus nomen", "", "Plantae"): stale}
    name_cache.save(s3, SCRATCH_BUCKET, NAME_CACHE_KEY, entries)
    short = "\n".join([HEADER, _row("L48", "Bellis perennis"), _row("AK", "Novus nomen")])
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=short.encode())
    result = annotate_riis.run(_spec())
    assert (result["names"], result["cache_hits"], result["api_calls"]) == (2, 1, 1)
    assert result["cache"]["entries"] == NAMES + 1
    assert _cached_names(s3) == sorted([*full, "Novus nomen"])  # the expired one is gone


def test_answers_are_saved_when_resolution_fails_and_the_rerun_asks_only_the_rest(
    s3, tmp_path, monkeypatch
):
    """One name at a time, in name order: GBIF fails on the fifth (Festuca), after four
    answers. They are in the cache; the rerun asks GBIF only for the names not in it."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps(GBIF_TABLE), "utf-8")
    monkeypatch.setenv("GBIF_API_CONCURRENCY", "1")
    monkeypatch.setattr(annotate_riis.GbifClient, "__init__", _impatient_init)
    with GbifStandin(path, fail_first={"Festuca rubra ssp. fallax": [503, 503]}) as standin:
        monkeypatch.setenv("GBIF_API_URL", standin.base_url)
        with pytest.raises(GbifApiError, match="could not resolve 'Festuca rubra ssp. fallax'"):
            annotate_riis.run(_spec())
        answered = _cached_names(s3)  # and the sixth, if the worker took it up meanwhile
        assert answered[:4] == _FIRST_FOUR
        assert "Festuca rubra ssp. fallax" not in answered
        assert not any(key.startswith("annotated_riis/") for key in _keys(s3))
        rerun = annotate_riis.run(_spec())
    asked = NAMES - len(answered) + 1  # + Festuca's accepted-name lookup
    assert (rerun["cache_hits"], rerun["api_calls"]) == (len(answered), asked)
    assert rerun["resolved"] == 9


def test_the_cache_is_saved_while_names_resolve(s3, tmp_path, monkeypatch):
    """A checkpoint every answer (NAME_CACHE_CHECKPOINT_SECONDS=0): while GBIF stalls on the
    fifth name, the four answers before it are already in S3, so a task killed then (a
    reclaimed instance) loses none of them."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    path = tmp_path / "gbif_table.json"
    path.write_text(json.dumps(GBIF_TABLE), "utf-8")
    monkeypatch.setenv("GBIF_API_CONCURRENCY", "1")
    monkeypatch.setenv("NAME_CACHE_CHECKPOINT_SECONDS", "0")
    stall = {"Festuca rubra ssp. fallax": [STALL]}
    with GbifStandin(path, fail_first=stall, stall_seconds=5.0) as standin:
        monkeypatch.setenv("GBIF_API_URL", standin.base_url)
        with ThreadPoolExecutor(max_workers=1) as pool:
            run = pool.submit(annotate_riis.run, _spec())
            seen: list[str] = []
            while len(seen) < 4 and not wait([run], timeout=0.05).done:
                if NAME_CACHE_KEY in _keys(s3):
                    seen = _cached_names(s3)
            assert not run.done()  # still waiting for GBIF's answer on Festuca
            assert seen == _FIRST_FOUR
            result = run.result(timeout=60)
    assert result["cache"]["saves"] == NAMES + 1  # one per answer, and the final one
    assert len(_cached_names(s3)) == NAMES


_FIRST_FOUR = [
    "Aira caryophyllea var. caryophyllea",
    "Banana bunchy top virus",
    "Bellis perennis",
    "Eichhornia crassipes",
]


def test_a_cache_that_could_not_be_read_is_left_as_it_is(s3, gbif, monkeypatch, capsys):
    """S3 failing the cache's GET (not a missing or corrupt object) says nothing about what
    it holds: the month goes on asking GBIF, and the cache is not replaced by its answers."""
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=MASTER_LIST.encode())
    annotate_riis.run(_spec())
    before = s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)["Body"].read()
    refused = name_cache.NameCache(status="unreadable", warning="cannot read (AccessDenied)")
    monkeypatch.setattr(name_cache, "load", lambda *args: refused)
    short = "\n".join([HEADER, _row("L48", "Bellis perennis")])
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=RIIS_INPUT_KEY, Body=short.encode())
    result = annotate_riis.run(_spec())
    assert (result["api_calls"], result["cache"]["written"]) == (1, False)
    assert s3.get_object(Bucket=SCRATCH_BUCKET, Key=NAME_CACHE_KEY)["Body"].read() == before
    assert "the name cache is not written back" in capsys.readouterr().out
