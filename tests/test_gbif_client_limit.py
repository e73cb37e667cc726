"""The GBIF client's adaptive concurrency (issue 13 item 4): AIMD between 1 and a ceiling.

Unit tests drive the limit by hand on a fake clock; the stand-in tests run resolve_all against
a server that rejects above 8 requests at once (the limit must settle at or below 8 with under
5% rejected) and against a clean one (the limit must grow).
"""

from __future__ import annotations

import json
import threading

import pytest

from bisonflow.config import ConfigError
from bisonflow.gbif.concurrency_limit import AimdLimit, Outcome
from bisonflow.gbif.species_api import GbifClient, NameQuery, limit_from_env, resolve_all
from bisonflow.local.gbif_standin import GbifStandin, accepted_match
from tests.test_gbif_client import FakeClock

NAMES = 600


@pytest.fixture
def table_path(tmp_path):
    table = {f"Name {i}": accepted_match(i + 1, f"Name {i} L.") for i in range(NAMES)}
    path = tmp_path / "gbif.json"
    path.write_text(json.dumps(table), "utf-8")
    return path


def _round_trip(limit: AimdLimit, clock: FakeClock, outcome: Outcome, latency: float = 0.2):
    """Fill the limit, then answer every request with `outcome` after `latency` seconds."""
    tickets = [limit.acquire() for _ in range(limit.limit)]
    clock.now += latency
    for ticket in tickets:
        limit.release(ticket, outcome)


def test_slow_start_nearly_doubles_then_congestion_avoidance_adds_at_most_one_per_round_trip():
    clock = FakeClock()
    limit = AimdLimit(4, 64, clock=clock)
    sizes = [limit.limit]
    for _ in range(3):
        _round_trip(limit, clock, Outcome.CLEAN)
        sizes.append(limit.limit)
    assert sizes == [4, 7, 11, 17]  # +1 for each answer sent while at least half in use
    ticket = limit.acquire()
    limit.release(ticket, Outcome.CONGESTED)
    assert limit.limit == 8  # halved, and slow start ends there
    sizes = [limit.limit]
    for _ in range(8):
        _round_trip(limit, clock, Outcome.CLEAN)
        sizes.append(limit.limit)
    steps = [b - a for a, b in zip(sizes, sizes[1:], strict=False)]
    assert all(0 <= step <= 1 for step in steps), sizes  # half a request per round trip
    assert sizes[-1] - sizes[0] >= 2, sizes
    for _ in range(400):
        _round_trip(limit, clock, Outcome.CLEAN)
    assert limit.limit == 64  # never above the ceiling


def test_a_burst_of_429s_from_one_overshoot_cuts_once():
    clock = FakeClock()
    limit = AimdLimit(16, 64, clock=clock)
    tickets = [limit.acquire() for _ in range(16)]
    for ticket in tickets:
        limit.release(ticket, Outcome.CONGESTED)
    assert limit.limit == 8
    assert limit.stats().decreases == 1
    ticket = limit.acquire()  # sent after the cut: its 429 cuts again
    limit.release(ticket, Outcome.CONGESTED)
    assert limit.limit == 4


def test_the_limit_never_goes_below_one_and_other_errors_say_nothing():
    clock = FakeClock()
    limit = AimdLimit(2, 8, clock=clock)
    for _ in range(5):
        limit.release(limit.acquire(), Outcome.CONGESTED)
    assert limit.limit == 1
    limit.release(limit.acquire(), Outcome.IGNORED)
    assert limit.limit == 1


def test_rising_latency_cuts_the_limit():
    clock = FakeClock()
    limit = AimdLimit(16, 16, clock=clock)
    for _ in range(30):
        _round_trip(limit, clock, Outcome.CLEAN, latency=0.2)
    assert limit.limit == 16
    for _ in range(5):
        _round_trip(limit, clock, Outcome.CLEAN, latency=1.0)
    assert limit.limit < 16
    assert limit.stats().decreases >= 1


def test_a_fixed_limit_does_not_move():
    clock = FakeClock()
    limit = AimdLimit(4, 16, adaptive=False, clock=clock)
    assert limit.limit == 16
    limit.release(limit.acquire(), Outcome.CONGESTED)
    _round_trip(limit, clock, Outcome.CLEAN)
    assert (limit.limit, limit.stats().decreases) == (16, 0)


def test_interrupt_wakes_a_thread_waiting_for_a_slot():
    limit = AimdLimit(1, 1)
    held = limit.acquire()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(limit.acquire()))
    waiter.start()
    waiter.join(0.1)
    assert waiter.is_alive()  # the single slot is taken
    limit.interrupt()
    waiter.join(2.0)
    assert got == [None]
    limit.release(held, Outcome.CLEAN)


def test_limit_from_env(monkeypatch):
    for name in ("GBIF_API_CONCURRENCY", "GBIF_API_CONCURRENCY_START", "GBIF_API_ADAPTIVE"):
        monkeypatch.delenv(name, raising=False)
    default = limit_from_env()
    assert (default.limit, default.ceiling, default.adaptive) == (8, 64, True)
    monkeypatch.setenv("GBIF_API_CONCURRENCY", "3")  # an old setting keeps its promise
    assert (limit_from_env().limit, limit_from_env().ceiling) == (3, 3)
    monkeypatch.setenv("GBIF_API_CONCURRENCY", "16")
    monkeypatch.setenv("GBIF_API_ADAPTIVE", "false")
    fixed = limit_from_env()
    assert (fixed.limit, fixed.adaptive) == (16, False)
    monkeypatch.setenv("GBIF_API_ADAPTIVE", "maybe")
    with pytest.raises(ConfigError, match="GBIF_API_ADAPTIVE must be true or false"):
        limit_from_env()


def _resolve(gbif: GbifStandin, limit: AimdLimit) -> GbifClient:
    queries = [NameQuery(f"Name {i}") for i in range(NAMES)]
    with GbifClient(gbif.base_url, limit=limit, backoff_seconds=0.01) as api:
        resolved = resolve_all(api, queries)
    assert len(resolved) == NAMES
    assert all(match.key is not None for match in resolved.values())
    return api


def test_against_a_server_rejecting_above_8_it_settles_at_or_below_8(table_path):
    # 50 ms answers: long against the client's own per-request work, so CPU contention from
    # other tests (the suite runs three workers on two cores) does not read as overload
    with GbifStandin(table_path, latency_seconds=0.05, max_in_flight=8) as gbif:
        limit = AimdLimit(16, 64)  # starts above the server's limit: the worst first burst
        _resolve(gbif, limit)
        rejected_share = gbif.rejected / gbif.requests
        assert gbif.peak_in_flight <= 8
    stats = limit.stats()
    assert stats.in_flight_second_half <= 8  # what the client sends at once, settled
    assert stats.mean_second_half <= 9  # the limit probes one above, then halves
    assert rejected_share < 0.05, f"{gbif.rejected} of {gbif.requests} rejected"


def test_against_a_clean_fast_server_it_grows(table_path):
    with GbifStandin(table_path, latency_seconds=0.02) as gbif:
        limit = AimdLimit(4, 64)
        _resolve(gbif, limit)
        assert gbif.rejected == 0
        assert gbif.peak_in_flight > 8  # more than twice where it started
    stats = limit.stats()
    assert stats.highest >= 16  # four times its start (more on a quiet machine: 64)
    assert stats.mean_second_half > 8
