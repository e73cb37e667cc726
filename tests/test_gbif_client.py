"""The GBIF client retries within a time budget and honours Retry-After (issue 11).

A fake clock replays a 40 s storm of 429s in milliseconds: the client's waits advance it, and
the stand-in reads it to end the storm. The old client (8 attempts, Retry-After capped at
30 s) lost the month to such a storm.
"""

from __future__ import annotations

import json
import threading

import pytest

from bisonflow.config import ConfigError
from bisonflow.gbif.retry_budget import Clock, retry_after_seconds, retry_budget_from_env
from bisonflow.gbif.species_api import GbifApiError, GbifClient, NameQuery
from bisonflow.local.gbif_standin import GbifStandin, accepted_match

NAME = NameQuery("Aus bus", "", "Plantae")
STORM_SECONDS = 40.0


class FakeClock(Clock):
    """Time that passes only when someone waits; records every wait."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_700_000_000.0 + self.now

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        if interrupt.is_set():
            return True
        with self._lock:
            self.waits.append(seconds)
            self.now += seconds
        return False


@pytest.fixture
def table_path(tmp_path):
    path = tmp_path / "gbif.json"
    path.write_text(json.dumps({"Aus bus": accepted_match(11, "Aus bus L.")}), "utf-8")
    return path


def _storm(table_path, clock: FakeClock, retry_after: float, **kwargs) -> GbifStandin:
    return GbifStandin(
        table_path,
        storm_seconds=STORM_SECONDS,
        retry_after_seconds=retry_after,
        clock=clock,
        **kwargs,
    )


def _client(base_url: str, clock: FakeClock, **kwargs) -> GbifClient:
    """A tiny backoff, so the server's Retry-After alone paces the retries (as when it says
    `Retry-After: 1` to a client whose backoff is still short)."""
    kwargs.setdefault("retry_budget_seconds", 600)
    kwargs.setdefault("backoff_seconds", 0.001)
    kwargs.setdefault("max_backoff_seconds", 1.0)
    return GbifClient(base_url, clock=clock, **kwargs)


def test_a_40_second_storm_of_429s_is_outlasted(table_path):
    """Retry-After: 1 for 40 s: eight attempts were spent in eight seconds; the budget lasts."""
    clock = FakeClock()
    with _storm(table_path, clock, retry_after=1) as gbif, _client(gbif.base_url, clock) as api:
        match = api.resolve(NAME)
        assert match.key == 11
        assert gbif.rejected == api.throttled == api.calls - 1
        assert 40 <= api.calls <= 42  # the old fixed count of 8 would have given up
    assert clock.now - 1000.0 >= STORM_SECONDS
    assert all(wait >= 1 for wait in clock.waits)  # never sooner than the server asked


def test_the_old_attempt_count_would_have_failed_the_month(table_path):
    """max_attempts still bounds a caller who asks for it: 8 attempts lose to the storm."""
    clock = FakeClock()
    with (
        _storm(table_path, clock, retry_after=1) as gbif,
        _client(gbif.base_url, clock, max_attempts=8) as api,
        pytest.raises(GbifApiError) as info,
    ):
        url = f"{gbif.base_url}/species/match"
        api.resolve(NAME)
    message = str(info.value)
    assert url in message
    assert "HTTP 429" in message
    assert "gave up after 8 attempts in " in message
    assert "max_attempts=8 reached" in message


def test_retry_after_beyond_the_old_30_second_cap_is_honoured(table_path):
    clock = FakeClock()
    with _storm(table_path, clock, retry_after=45) as gbif, _client(gbif.base_url, clock) as api:
        assert api.resolve(NAME).key == 11
        assert api.calls == 2  # waited the 45 s asked, so the second try found the storm over
    assert clock.waits[0] >= 45


def test_retry_after_as_an_http_date(table_path):
    clock = FakeClock()
    with (
        _storm(table_path, clock, retry_after=10, retry_after_date=True) as gbif,
        _client(gbif.base_url, clock) as api,
    ):
        assert api.resolve(NAME).key == 11
        assert 5 <= api.calls <= 6  # every 10 s (the date rounds up to a whole second)
    assert all(9 <= wait <= 11.5 for wait in clock.waits)


def test_the_budget_running_out_names_url_attempts_and_time(table_path):
    clock = FakeClock()
    with (
        _storm(table_path, clock, retry_after=1) as gbif,
        _client(gbif.base_url, clock, retry_budget_seconds=20) as api,
        pytest.raises(GbifApiError) as info,
    ):
        url = f"{gbif.base_url}/species/match"
        api.resolve(NAME)
    message = str(info.value)
    assert f"GBIF API GET {url}" in message
    assert f"gave up after {api.calls} attempts in " in message
    spent = float(message.split(" attempts in ")[1].split(" s:")[0])
    assert 15 <= spent <= 20
    assert "the retry budget of 20 s is spent" in message


def test_a_retry_after_past_the_budget_gives_up_at_once(table_path):
    """Sleeping 120 s to fail at 60 s helps nobody."""
    clock = FakeClock()
    with (
        _storm(table_path, clock, retry_after=120) as gbif,
        _client(gbif.base_url, clock, retry_budget_seconds=60) as api,
        pytest.raises(GbifApiError, match=r"gave up after 1 attempt in 0\.0 s.*Retry-After 120 s"),
    ):
        api.resolve(NAME)
    assert clock.waits == []


def test_budget_comes_from_the_environment(monkeypatch, table_path):
    monkeypatch.delenv("GBIF_RETRY_BUDGET_SECONDS", raising=False)
    assert retry_budget_from_env() == 600
    assert GbifClient("http://127.0.0.1:9/v1").retry_budget_seconds == 600
    monkeypatch.setenv("GBIF_RETRY_BUDGET_SECONDS", "90")
    assert GbifClient("http://127.0.0.1:9/v1").retry_budget_seconds == 90
    monkeypatch.setenv("GBIF_RETRY_BUDGET_SECONDS", "ten minutes")
    with pytest.raises(ConfigError, match="GBIF_RETRY_BUDGET_SECONDS must be an integer"):
        retry_budget_from_env()


def test_retry_after_values():
    now = 1_700_000_000.0
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds(" 0 ", now) == 0.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:40 GMT", now) == 20.0
    assert retry_after_seconds("Tue, 14 Nov 2023 22:13:00 GMT", now) == 0.0  # past: at once
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("", now) is None
    assert retry_after_seconds(None, now) is None
