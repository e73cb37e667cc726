"""The loopback GBIF stand-in answers like /v1/species/match and fails on cue."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from bisonflow.gbif.species_api import NO_MATCH
from bisonflow.local.gbif_standin import STALL, GbifStandin, accepted_match

TABLE = {
    "Aus bus": {
        "usageKey": 11,
        "scientificName": "Aus bus L.",
        "canonicalName": "Aus bus",
        "rank": "SPECIES",
        "status": "ACCEPTED",
        "matchType": "EXACT",
        "confidence": 99,
        "synonym": False,
    },
    "Aus cus": {
        "usageKey": 12,
        "acceptedUsageKey": 11,
        "scientificName": "Aus cus Smith",
        "status": "SYNONYM",
        "matchType": "EXACT",
        "confidence": 98,
        "synonym": True,
    },
    # The same name by another author: GBIF tells such homonyms apart by authorship.
    "Aus bus Smith, 1900": {
        "usageKey": 13,
        "scientificName": "Aus bus Smith, 1900",
        "status": "ACCEPTED",
        "matchType": "EXACT",
        "confidence": 99,
        "synonym": False,
    },
    "Aus": {"usageKey": 10, "scientificName": "Aus", "matchType": "HIGHERRANK", "confidence": 90},
}


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "gbif.json"
    path.write_text(json.dumps(TABLE), "utf-8")
    return path


def _get(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, timeout=5)


def test_match_answers_from_table_and_unknown_names_get_none(table_path):
    with GbifStandin(table_path) as gbif:
        assert gbif.base_url.startswith("http://127.0.0.1:")
        assert gbif.base_url.endswith("/v1")
        known = _get(f"{gbif.base_url}/species/match", name="Aus bus", kingdom="Animalia")
        unknown = _get(f"{gbif.base_url}/species/match", name="Nobody here")
        assert known.status_code == 200
        assert known.headers["Content-Type"] == "application/json"
        assert known.json() == TABLE["Aus bus"]
        assert unknown.json() == NO_MATCH
        assert gbif.requests == 2


def test_species_by_key_and_unknown_paths(table_path):
    with GbifStandin(table_path) as gbif:
        usage = _get(f"{gbif.base_url}/species/11").json()
        assert usage["key"] == 11
        assert usage["scientificName"] == "Aus bus L."
        synonym = _get(f"{gbif.base_url}/species/12").json()
        assert synonym["acceptedKey"] == 11
        for path in ("/species/999", "/occurrence/search", "/species/abc"):
            response = _get(gbif.base_url + path)
            assert response.status_code == 404
            assert "error" in response.json()


def test_fail_first_then_normal(table_path):
    with GbifStandin(table_path, fail_first={"Aus bus": [429, 503]}) as gbif:
        url = f"{gbif.base_url}/species/match"
        first = _get(url, name="Aus bus")
        assert first.status_code == 429
        assert first.headers["Retry-After"] == "0"
        assert _get(url, name="Aus bus").status_code == 503
        assert _get(url, name="Aus bus").json()["usageKey"] == 11
        assert _get(url, name="Aus cus").status_code == 200  # other names unaffected


def test_latency(table_path):
    with GbifStandin(table_path, latency_seconds=0.2) as gbif:
        started = time.monotonic()
        _get(f"{gbif.base_url}/species/match", name="Aus bus")
        assert time.monotonic() - started >= 0.2


def test_start_stop_and_restart(table_path):
    gbif = GbifStandin(table_path)
    url = gbif.start()
    assert gbif.start() == url  # idempotent
    gbif.stop()
    with pytest.raises(RuntimeError):
        _ = gbif.base_url
    with pytest.raises(requests.ConnectionError):
        _get(f"{url}/species/match", name="Aus bus")
    gbif.stop()  # stopping twice is harmless


def test_authorship_picks_the_homonym_and_strict_refuses_higher_ranks(table_path):
    with GbifStandin(table_path) as gbif:
        url = f"{gbif.base_url}/species/match"
        assert _get(url, name="Aus bus", authorship="Smith, 1900").json()["usageKey"] == 13
        assert _get(url, name="Aus bus", authorship="L.").json()["usageKey"] == 11
        assert _get(url, name="Aus").json()["matchType"] == "HIGHERRANK"
        assert _get(url, name="Aus", strict="true").json() == NO_MATCH
        assert gbif.match_params[0] == {"name": "Aus bus", "authorship": "Smith, 1900"}
        assert len(gbif.match_params) == 4


def test_stall_answers_late(table_path):
    with GbifStandin(table_path, fail_first={"Aus bus": [STALL]}, stall_seconds=0.3) as gbif:
        url = f"{gbif.base_url}/species/match"
        with pytest.raises(requests.Timeout):
            requests.get(url, params={"name": "Aus bus"}, timeout=(1.0, 0.05))
        assert _get(url, name="Aus bus").json()["usageKey"] == 11


def test_serves_concurrent_requests(table_path):
    """Eight clients waiting out the latency at once, as a concurrent client needs."""
    with GbifStandin(table_path, latency_seconds=0.5) as gbif:
        url = f"{gbif.base_url}/species/match"
        threads = [threading.Thread(target=_get, args=(url,)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert gbif.requests == 8
        assert gbif.peak_in_flight == 8


def test_accepted_match_carries_the_species_key_gbif_gives():
    """GBIF's answer carries the accepted classification's speciesKey: a species' own key, a
    species-rank synonym's accepted key; below species the caller says which species, and
    above species there is none."""
    assert accepted_match(7, "Aus bus")["speciesKey"] == 7
    synonym = accepted_match(8, "Aus cus", status="SYNONYM", synonym=True, acceptedUsageKey=7)
    assert synonym["speciesKey"] == 7
    assert accepted_match(9, "Aus bus dus", rank="SUBSPECIES", speciesKey=7)["speciesKey"] == 7
    assert "speciesKey" not in accepted_match(6, "Aus", rank="GENUS")


def test_rate_limits_answer_429_at_once_with_retry_after(table_path):
    """A storm refuses every request for its length; a concurrency limit refuses a request
    arriving while that many are answered; both say Retry-After, in seconds or as a date."""
    with GbifStandin(table_path, storm_seconds=0.3, retry_after_seconds=2) as gbif:
        url = f"{gbif.base_url}/species/match"
        refused = _get(url, name="Aus bus")
        assert (refused.status_code, refused.headers["Retry-After"]) == (429, "2")
        time.sleep(0.35)
        assert _get(url, name="Aus bus").status_code == 200
        assert (gbif.requests, gbif.rejected) == (2, 1)
    with GbifStandin(table_path, retry_after_seconds=5, retry_after_date=True) as gbif:
        gbif.max_in_flight = 0  # every request finds the limit full
        refused = _get(f"{gbif.base_url}/species/match", name="Aus bus")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"].endswith(" GMT")
    with GbifStandin(table_path, latency_seconds=0.6, max_in_flight=3) as gbif:
        url = f"{gbif.base_url}/species/match"
        statuses: list[int] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(_get(url, name="Aus bus").status_code))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200, 200, 200, 429, 429, 429]
        assert (gbif.peak_in_flight, gbif.rejected) == (3, 3)
