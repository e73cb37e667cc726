"""Benchmarks of the science steps (not part of the test suite; `./scripts/bench` runs them).

Each benchmark measures its figure and a baseline in the same run on the same machine, and
prints both with their ratio, so a noisy machine moves both rather than the conclusion.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Measurement:
    """One line of a benchmark table. `goal` is an upper bound in `unit` (None: no goal)."""

    name: str
    value: float
    unit: str = "s"
    goal: float | None = None
    baseline_name: str | None = None
    baseline: float | None = None

    @property
    def ratio(self) -> float | None:
        """How many times better than the baseline (baseline / value)."""
        if self.baseline is None or self.value <= 0:
            return None
        return self.baseline / self.value

    @property
    def verdict(self) -> str:
        if self.goal is None:
            return ""
        if self.value <= self.goal:
            return "goal met"
        return f"{self.value / self.goal:.2f}x over goal"


def print_table(title: str, rows: list[Measurement]) -> None:
    """A plain-text table (it goes into docs/benchmarks.md as is)."""
    header = ("measurement", "value", "goal", "baseline", "ratio", "")
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.name,
                f"{row.value:.2f} {row.unit}",
                "" if row.goal is None else f"<= {row.goal:g} {row.unit}",
                ""
                if row.baseline is None
                else f"{row.baseline_name}: {row.baseline:.2f} {row.unit}",
                "" if row.ratio is None else f"{row.ratio:.1f}x",
                row.verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"\n{title}")
    for i, line in enumerate(lines):
        print(
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        )
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """fn() and its wall time in seconds."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    From VmHWM, which exec resets: ru_maxrss would not do for a benchmark's child process,
    since Linux carries the parent's high-water mark across fork and exec, so a child would
    report the parent's peak (e.g. the moto server holding the inputs) rather than its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # No procfs: ru_maxrss (kilobytes on Linux) is an upper bound.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
