"""The S3 name cache: hits, expiry, and caches that are missing, corrupt or unreadable."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import pytest
from conftest import SCRATCH_BUCKET

from bisonflow.gbif import name_cache
from bisonflow.gbif.species_api import NameMatch, NameQuery

KEY = "cache/gbif_name_matches.json.gz"
NOW = dt.datetime(2026, 11, 2, 6, 0, tzinfo=dt.UTC)
FESTUCA = NameQuery("Festuca rubra ssp. fallax", "(Thuill.) Nyman", "Plantae")
NOMEN = NameQuery("Nomen ignotum", "", "Animalia")
#: A subspecies name GBIF treats as a synonym of the species: its own key 301, accepted 300.
RESOLVED = NameMatch(
    300, "Festuca rubra L.", "EXACT", 97, "SYNONYM", "Festuca rubra fallax", "SUBSPECIES", 300, 301
)
NO_MATCH = NameMatch(None, "", "NONE", 100, "", "", "", None, None, "no match in the GBIF backbone")


def _entries(**ages_in_days: float) -> dict[NameQuery, name_cache.CacheEntry]:
    queries = {"festuca": (FESTUCA, RESOLVED), "nomen": (NOMEN, NO_MATCH)}
    return {
        queries[label][0]: name_cache.CacheEntry(queries[label][1], NOW - dt.timedelta(days=age))
        for label, age in ages_in_days.items()
    }


def _load(s3, max_age_days: int = 30) -> name_cache.NameCache:
    return name_cache.load(s3, SCRATCH_BUCKET, KEY, max_age_days, NOW)


def test_round_trip_answers_both_resolved_and_unmatched_names(s3):
    name_cache.save(s3, SCRATCH_BUCKET, KEY, _entries(festuca=1, nomen=29.9))
    cache = _load(s3)
    assert (cache.status, cache.warning) == ("loaded", "")
    assert cache.get(FESTUCA) == RESOLVED
    assert cache.get(NOMEN) == NO_MATCH  # a name GBIF cannot place is not asked every month
    assert cache.get(NameQuery(FESTUCA.name, "", "Plantae")) is None  # another triple
    assert cache.summary() == {"status": "loaded", "fresh": 2, "expired": 0, "dropped": 0}


def test_entries_older_than_the_max_age_are_asked_again(s3):
    name_cache.save(s3, SCRATCH_BUCKET, KEY, _entries(festuca=31, nomen=3))
    cache = _load(s3, max_age_days=30)
    assert cache.get(FESTUCA) is None
    assert cache.get(NOMEN) == NO_MATCH
    assert (cache.expired, len(cache.entries)) == (1, 1)
    assert _load(s3, max_age_days=2).expired == 2


def test_max_age_zero_uses_no_cached_answer_and_does_not_read(s3):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=KEY, Body=b"not even gzip")
    cache = _load(s3, max_age_days=0)
    assert (cache.status, cache.entries, cache.warning) == ("disabled", {}, "")


def test_a_missing_cache_is_the_first_month(s3):
    cache = _load(s3)
    assert (cache.status, cache.entries, cache.warning) == ("missing", {}, "")


# mtime=0: gzip stamps the time into its header, and the bodies make the test ids, which
# must not differ between pytest-xdist workers collecting a second apart.
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not even gzip", "Not a gzipped file"),
        (gzip.compress(b"{truncated", mtime=0), "Expecting"),
        (gzip.compress(b"\xff\xfe", mtime=0), "codec"),
        (gzip.compress(json.dumps({"version": 99, "entries": []}).encode(), mtime=0), "version 99"),
        (gzip.compress(json.dumps([1, 2]).encode(), mtime=0), "not a JSON object"),
        (gzip.compress(b'{"version": 1, "entries": {}}', mtime=0), "'entries' is not a list"),
    ],
)
def test_a_corrupt_cache_warns_and_starts_empty(s3, body, detail):
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=KEY, Body=body)
    cache = _load(s3)
    assert (cache.status, cache.entries) == ("corrupt", {})
    assert f"s3://{SCRATCH_BUCKET}/{KEY} is not a name cache" in cache.warning
    assert detail in cache.warning
    assert cache.warning.endswith("starting with an empty name cache")


def test_malformed_entries_are_dropped_and_the_rest_kept(s3):
    good = json.loads(gzip.decompress(name_cache.dump(_entries(festuca=1))))
    entry = good["entries"][0]
    bad = [
        {**entry, "checked": "yesterday"},
        {**entry, "checked": "2026-11-01T00:00:00"},  # no time zone
        {**entry, "name": ""},
        {**entry, "match": {**entry["match"], "key": "300"}},
        {**entry, "match": {**entry["match"], "species_key": "300"}},
        {**entry, "match": {**entry["match"], "rank": None}},
        {key: value for key, value in entry.items() if key != "kingdom"},
    ]
    document = {"version": 1, "entries": [*bad, entry]}
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=KEY, Body=gzip.compress(json.dumps(document).encode()))
    cache = _load(s3)
    assert (cache.status, cache.dropped, cache.get(FESTUCA)) == ("loaded", 7, RESOLVED)
    assert "dropped 7 malformed entries" in cache.warning


@pytest.mark.parametrize("field", ["rank", "species_key", "usage_key"])
def test_an_entry_written_before_rank_and_keys_were_kept_is_asked_again(s3, field):
    """An earlier month's cache has entries without the match's rank, speciesKey and
    usageKey, which the marks need: such an entry is dropped (so the name is resolved again),
    not read with a guessed rank."""
    entry = json.loads(gzip.decompress(name_cache.dump(_entries(festuca=1))))["entries"][0]
    old = {**entry, "match": {k: v for k, v in entry["match"].items() if k != field}}
    document = {"version": 1, "entries": [old]}
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=KEY, Body=gzip.compress(json.dumps(document).encode()))
    cache = _load(s3)
    assert (cache.status, cache.dropped, cache.get(FESTUCA)) == ("loaded", 1, None)


def test_an_unreadable_cache_warns_and_starts_empty(s3):
    cache = name_cache.load(s3, "bisonflow-no-such-bucket", KEY, 30, NOW)
    assert (cache.status, cache.entries) == ("unreadable", {})
    assert "cannot read s3://bisonflow-no-such-bucket/" in cache.warning
    assert "NoSuchBucket" in cache.warning


def test_dump_is_deterministic_and_sorted():
    entries = _entries(nomen=1, festuca=2)
    assert name_cache.dump(entries) == name_cache.dump(dict(reversed(entries.items())))
    names = [e["name"] for e in json.loads(gzip.decompress(name_cache.dump(entries)))["entries"]]
    assert names == sorted(names)


class _Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_writer_keeps_what_it_was_given_and_saves_when_a_checkpoint_falls_due(s3):
    clock, warnings = _Clock(), []
    kept = _entries(festuca=1)
    writer = name_cache.CacheWriter(s3, SCRATCH_BUCKET, KEY, kept, 60, warnings.append, clock)
    writer.add(NOMEN, NO_MATCH, NOW)
    clock.now = 59.0
    writer.add(NameQuery("Aus bus"), NO_MATCH, NOW)
    assert (writer.saves, _load(s3).status) == (0, "missing")  # no minute has passed yet
    clock.now = 60.0
    writer.add(NameQuery("Aus cus"), NO_MATCH, NOW)
    assert writer.saves == 1
    assert len(_load(s3).entries) == 4  # the entry it was given and the three answers
    clock.now = 61.0
    writer.add(NameQuery("Aus dus"), NO_MATCH, NOW)
    assert (writer.saves, len(_load(s3).entries)) == (1, 4)
    assert writer.flush() is True
    assert (writer.saves, len(_load(s3).entries), len(writer)) == (2, 5, 5)
    assert writer.flush() is True and writer.saves == 2  # nothing new: no PUT
    assert writer.flush(always=True) is True and writer.saves == 3
    assert warnings == []


def test_a_checkpoint_that_cannot_be_saved_warns_and_is_tried_again(s3):
    warnings: list[str] = []
    writer = name_cache.CacheWriter(
        s3, "bisonflow-no-such-bucket", KEY, {}, 0, warnings.append, _Clock()
    )
    writer.add(NOMEN, NO_MATCH, NOW)
    assert writer.saves == 0
    assert (
        warnings
        and "could not save the name cache to s3://bisonflow-no-such-bucket/" in (warnings[0])
    )
    assert writer.flush() is False  # still unsaved: flush tries again, and says so
    assert len(warnings) == 2


def test_a_cache_that_could_not_be_read_is_never_overwritten(s3):
    """An unreadable cache (S3 refused the GET) may hold entries this run never saw: writing
    its answers back would shrink it, so the writer saves nothing."""
    name_cache.save(s3, SCRATCH_BUCKET, KEY, _entries(festuca=1, nomen=1))
    writer = name_cache.CacheWriter(s3, SCRATCH_BUCKET, KEY, {}, 0, [].append, saving=False)
    writer.add(NameQuery("Aus bus"), NO_MATCH, NOW)
    assert writer.flush(always=True) is False
    assert writer.saves == 0
    assert sorted(q.name for q in _load(s3).entries) == sorted([FESTUCA.name, NOMEN.name])
