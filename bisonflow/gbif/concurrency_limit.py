"""An adaptive limit on requests in flight: AIMD, as TCP finds a path's capacity.

A fixed number of parallel GBIF requests is either too slow (16 at 200 ms missed the name
resolution goal) or too aggressive for a shared public API. GBIF publishes no number: its
"restricted" page (www.gbif.org/restricted) says only that "excessive API queries ... may be
limited" and that some query patterns "cause heavy load on our servers". So the client
measures instead, the way TCP congestion control does (RFC 5681 section 3.1, slow start and
congestion avoidance; the request-level form follows Netflix/concurrency-limits
`AIMDLimit.java`, which grows only while the limit is in use):

* **slow start**: below `ssthresh` (at first the ceiling) each clean answer to a request sent
  while the limit was at least half used adds 1 (Netflix's rule: a limit not in use proves
  nothing), nearly doubling the limit every round trip;
* **congestion avoidance**: above it, each such answer adds `additive_increase`/limit, so the
  limit grows by `additive_increase` (0.5) per round trip;
* **multiplicative decrease**: a 429, a 5xx, a timeout or a connection error, or clean
  answers whose short-term latency rises above `latency_tolerance` times its long-term
  average (and by more than `LATENCY_NOISE_SECONDS`, which loopback jitter never reaches),
  multiplies the limit by `backoff_ratio` and sets `ssthresh` there. Like TCP's one reduction
  per window of losses, only a request sent after the last cut can cut again, so a burst of
  429s from one overshoot halves the limit once, not eight times.

Why a backoff ratio of 0.5 and not Netflix's 0.9: against a server that rejects above 8 in
flight, 0.9 returns to the rejection point every round trip (about one 429 per 8 requests).
Halving, and growing back by TCP's one per round trip, returns every ~4.5 round trips: about
one 429 per 30 requests, 3.3%, measured 4% with the slow start's overshoot, too close to the
5% the issue allows. Growing back by half a request per round trip halves that (one per
~60), and costs nothing against such a server (the sawtooth between 4.5 and 9 has the same
mean); it slows only the climb back after a cut, which slow start does not redo.

The limit stays between `floor` (1) and `ceiling`. `adaptive=False` pins it at the ceiling,
the client's old fixed fan-out (the benchmark's baseline).
"""

from __future__ import annotations

import enum
import os
import threading
from dataclasses import dataclass

from bisonflow.config import ConfigError, env_int
from bisonflow.gbif.retry_budget import REAL_CLOCK, Clock

#: GBIF_API_CONCURRENCY's default: the ceiling of the adaptive limit. 15,755 calls at 200 ms
#: in 100 s need 32 in flight; 64 leaves room for the ramp and a slower GBIF, and the limit only
#: gets there while answers stay fast and clean.
DEFAULT_CONCURRENCY = 64
#: GBIF_API_CONCURRENCY_START's default: where the limit starts (slow start doubles it every
#: round trip, so 8 reaches 64 in three).
DEFAULT_START_CONCURRENCY = 8
#: A latency rise smaller than this is noise (scheduling on a loaded machine), not congestion.
LATENCY_NOISE_SECONDS = 0.05
#: EWMA weights: the short average follows ~10 answers, the long one ~200.
SHORT_WEIGHT, LONG_WEIGHT = 0.1, 0.005


class Outcome(enum.Enum):
    CLEAN = "clean"  # an answer (2xx, 404): the server coped
    CONGESTED = "congested"  # 429, 5xx, timeout, connection error: too much, back off
    IGNORED = "ignored"  # another client error: says nothing about load


@dataclass(frozen=True)
class Ticket:
    """One admitted request: when it started, the limit's epoch then, and whether the limit
    was in use (at least half full: only then do clean answers prove more would be welcome)."""

    started: float
    epoch: int
    limit_in_use: bool


@dataclass(frozen=True)
class LimitStats:
    """What the limit did: for logs and the benchmark's "settled at" figure."""

    start: int
    ceiling: int
    final: int
    lowest: int
    highest: int
    mean_second_half: float  # time-weighted mean limit over the second half of its use
    in_flight_second_half: float  # time-weighted mean of requests in flight, same span
    decreases: int


class AimdLimit:
    """Shared by the worker threads: `acquire()` before a request, `release()` after it."""

    def __init__(
        self,
        start: int,
        ceiling: int,
        *,
        floor: int = 1,
        adaptive: bool = True,
        backoff_ratio: float = 0.5,
        additive_increase: float = 0.5,
        latency_tolerance: float = 2.0,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.floor = max(1, floor)
        self.ceiling = max(self.floor, ceiling)
        self.adaptive = adaptive
        self.backoff_ratio = backoff_ratio
        self.additive_increase = additive_increase
        self.latency_tolerance = latency_tolerance
        self.clock = clock
        self._limit = float(min(max(start, self.floor), self.ceiling))
        if not adaptive:
            self._limit = float(self.ceiling)
        self._start = int(self._limit)
        self._ssthresh = float(self.ceiling)
        self._in_flight = 0
        self._epoch = 0
        self._short: float | None = None
        self._long: float | None = None
        self._interrupted = False
        self._decreases = 0
        self._history: list[tuple[float, int]] = [(clock.monotonic(), int(self._limit))]
        self._in_flight_history: list[tuple[float, int]] = [(clock.monotonic(), 0)]
        self._cond = threading.Condition()

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def acquire(self) -> Ticket | None:
        """Wait for a free slot under the limit; None when interrupted (the run is aborting)."""
        with self._cond:
            while not self._interrupted and self._in_flight >= int(self._limit):
                self._cond.wait()
            if self._interrupted:
                return None
            self._in_flight += 1
            self._in_flight_history.append((self.clock.monotonic(), self._in_flight))
            in_use = self._in_flight * 2 >= int(self._limit)
            return Ticket(self.clock.monotonic(), self._epoch, in_use)

    def release(self, ticket: Ticket, outcome: Outcome) -> None:
        """Return the slot and let the request's outcome move the limit."""
        with self._cond:
            self._in_flight -= 1
            self._in_flight_history.append((self.clock.monotonic(), self._in_flight))
            if self.adaptive:
                if outcome is Outcome.CLEAN:
                    rising = self._latency_rising(self.clock.monotonic() - ticket.started)
                    if rising:
                        self._decrease(ticket)
                    elif ticket.limit_in_use:
                        self._increase()
                elif outcome is Outcome.CONGESTED:
                    self._decrease(ticket)
            self._cond.notify_all()

    def interrupt(self) -> None:
        """Wake every waiting thread with None: another request failed for good."""
        with self._cond:
            self._interrupted = True
            self._cond.notify_all()

    def stats(self) -> LimitStats:
        with self._cond:
            now = self.clock.monotonic()
            history = [*self._history, (now, int(self._limit))]
            in_flight = [*self._in_flight_history, (now, self._in_flight)]
        limits = [limit for _, limit in history]
        middle = (history[0][0] + now) / 2
        return LimitStats(
            self._start,
            self.ceiling,
            limits[-1],
            min(limits),
            max(limits),
            _time_weighted_mean(history, since=middle),
            _time_weighted_mean(in_flight, since=middle),
            self._decreases,
        )

    # --- under self._cond -------------------------------------------------------------------

    def _latency_rising(self, latency: float) -> bool:
        """Update the two averages; True when the short one rose well above the long one."""
        if self._short is None or self._long is None:
            self._short = self._long = latency
            return False
        self._short += SHORT_WEIGHT * (latency - self._short)
        self._long += LONG_WEIGHT * (latency - self._long)
        return (
            self._short > self.latency_tolerance * self._long
            and self._short - self._long > LATENCY_NOISE_SECONDS
        )

    def _increase(self) -> None:
        if self._limit < self._ssthresh:
            self._set(self._limit + 1)
        else:
            self._set(self._limit + self.additive_increase / self._limit)

    def _decrease(self, ticket: Ticket) -> None:
        if ticket.epoch != self._epoch:
            return  # sent before the last cut: that cut already answered this overload
        self._epoch += 1
        self._decreases += 1
        self._ssthresh = max(float(self.floor), self._limit * self.backoff_ratio)
        self._set(self._ssthresh)
        if self._short is not None and self._long is not None:
            self._short = self._long  # judge the new limit's latency afresh

    def _set(self, value: float) -> None:
        value = min(max(value, float(self.floor)), float(self.ceiling))
        changed = int(value) != int(self._limit)
        self._limit = value
        if changed:
            self._history.append((self.clock.monotonic(), int(value)))


def _time_weighted_mean(history: list[tuple[float, int]], since: float) -> float:
    """Mean of a step function given as (time, value) changes, over [since, last time]."""
    total = weight = 0.0
    for (t0, value), (t1, _) in zip(history, history[1:], strict=False):
        span = min(t1, history[-1][0]) - max(t0, since)
        if span > 0:
            total += value * span
            weight += span
    return total / weight if weight else float(history[-1][1])


@dataclass(frozen=True)
class LimitSettings:
    """What an AimdLimit is made from, as settings: here, without the HTTP client, because
    launch_task (a Lambda, whose layer carries no requests) reads them into the annotate_riis
    task's spec (bisonflow.steps.taskspec), and the task makes its limit from the spec."""

    concurrency: int  # the ceiling: the most requests ever in flight
    concurrency_start: int  # where the limit starts (at most the ceiling)
    adaptive: bool  # False: a fixed `concurrency`, the client's behaviour before the limit

    @classmethod
    def from_env(cls) -> LimitSettings:
        """GBIF_API_CONCURRENCY (ceiling), GBIF_API_CONCURRENCY_START (start, default 8) and
        GBIF_API_ADAPTIVE (`false`: a fixed GBIF_API_CONCURRENCY)."""
        raw = os.environ.get("GBIF_API_ADAPTIVE", "").strip().lower() or "true"
        if raw not in ("true", "false"):
            raise ConfigError(
                f"environment variable GBIF_API_ADAPTIVE must be true or false, got {raw!r}"
            )
        return cls(
            concurrency=concurrency_from_env(),
            concurrency_start=env_int(
                "GBIF_API_CONCURRENCY_START", DEFAULT_START_CONCURRENCY, minimum=1
            ),
            adaptive=raw == "true",
        )

    def limit(self, clock: Clock = REAL_CLOCK) -> AimdLimit:
        start = min(self.concurrency_start, self.concurrency)
        return AimdLimit(start, self.concurrency, adaptive=self.adaptive, clock=clock)


def concurrency_from_env() -> int:
    """GBIF_API_CONCURRENCY: the most requests ever in flight, the adaptive limit's ceiling.

    It kept its meaning for anyone who set it (never more than this many at once); the client
    may now use fewer, and the default rose from a fixed 16 to a ceiling of 64."""
    return env_int("GBIF_API_CONCURRENCY", DEFAULT_CONCURRENCY, minimum=1)
