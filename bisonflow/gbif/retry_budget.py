"""How long one GBIF request keeps retrying: a time budget, not a count of attempts.

A count is the wrong unit for a public API's rate limiting: eight attempts told "Retry-After:
1" are spent in eight seconds, so a 40 s storm of 429s failed the whole month (issue 11).
What an operator can reason about is time: GBIF_RETRY_BUDGET_SECONDS (default 600, ten
minutes per request) bounds how long one name may keep retrying before the task fails naming
the URL, the attempts and the time spent.

Why ten minutes: it outlasts the one 429 storm measured (40 s) fifteen times over, yet a GBIF
that is really down fails the task in ten minutes, 4% of its default 4 h TimeoutSeconds
(`TASK_TIMEOUT_SECONDS`), while the runner's heartbeats keep the callback step alive. The
first name that exhausts its budget aborts all the others (gbif_api.resolve_all), so a long
outage costs one budget, not one per name.

The wait before each retry honours `Retry-After` (RFC 9110 section 10.2.3: delay-seconds or
an HTTP-date; RFC 6585 section 4 for 429), is never sooner than the capped exponential
backoff with full jitter would wait ("Exponential Backoff And Jitter", AWS Architecture Blog,
2015: sleep = random(0, min(cap, base * 2 ** attempt))), and adds up to `base` of jitter to
the server's delay so that threads told the same moment do not return in the same
millisecond. A delay that would end past the budget stops the retries at once instead of
sleeping in vain.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from bisonflow.config import env_int

#: GBIF_RETRY_BUDGET_SECONDS' default: see the module docstring.
DEFAULT_RETRY_BUDGET_SECONDS = 600


class Clock:
    """Real time. Tests pass a fake whose `wait` advances it at once, so a 40 s storm of 429s
    is replayed in milliseconds; the stand-in reads the same clock to end its storm."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        """Wall-clock seconds: an HTTP-date Retry-After is a wall-clock time."""
        return time.time()

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        """Sleep `seconds` unless `interrupt` is set first; True when interrupted."""
        return interrupt.wait(max(0.0, seconds))


REAL_CLOCK = Clock()


def retry_budget_from_env() -> int:
    """GBIF_RETRY_BUDGET_SECONDS: seconds one request may spend retrying (0: no retry)."""
    return env_int("GBIF_RETRY_BUDGET_SECONDS", DEFAULT_RETRY_BUDGET_SECONDS, minimum=0)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """A Retry-After value (delay-seconds or HTTP-date, RFC 9110 10.2.3) as seconds from
    `now` (wall clock); None when absent or unreadable (the backoff alone then decides)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


@dataclass
class RetrySchedule:
    """One request's retries: attempts made, time spent, and when (or whether) to try again.

    `max_attempts` (None: no count limit) stays for callers that want a short, bounded test
    of failure; the budget is what production relies on.
    """

    budget_seconds: float
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_attempts: int | None = None
    clock: Clock = REAL_CLOCK
    attempts: int = 0
    started: float = field(default=0.0, init=False)
    stop_reason: str = field(default="", init=False)

    def __post_init__(self) -> None:
        self.started = self.clock.monotonic()

    @property
    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    def next_delay(self, retry_after: float | None) -> float | None:
        """Seconds to wait before the next attempt, or None (with `stop_reason`) when the
        attempt count or the time budget says stop. Call after each failed attempt."""
        if self.max_attempts is not None and self.attempts >= self.max_attempts:
            self.stop_reason = f"max_attempts={self.max_attempts} reached"
            return None
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (self.attempts - 1))
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after + random.uniform(0, self.backoff_seconds))
        left = self.budget_seconds - self.elapsed
        if delay > left:
            asked = f"Retry-After {retry_after:g} s" if retry_after is not None else "backoff"
            self.stop_reason = (
                f"the retry budget of {self.budget_seconds:g} s is spent "
                f"({asked} would wait {delay:.1f} s, {max(left, 0.0):.1f} s left)"
            )
            return None
        return delay

    def summary(self) -> str:
        """'gave up after N attempts in S s: why', for the error message."""
        return (
            f"gave up after {self.attempts} attempt{'s' * (self.attempts != 1)} "
            f"in {self.elapsed:.1f} s: {self.stop_reason}"
        )
