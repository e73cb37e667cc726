"""The aggregate benchmark's scale curve (issue 13 item 2): the same run at several sizes.

Printed as a table of seconds per step at each size with the cost per million records, and
written to RESULTS_DIR as `aggregate_scale.md` (the same table) and `aggregate_scale.png`
(seconds per step against records, and seconds per million records). A step whose cost per
million records grows from the second-smallest size to the largest by more than
GROWTH_TOLERANCE is named under the table: the sizes below 2M carry the fixed costs (loading
the boundaries and listing their cells do not depend on the records), so the comparison starts
at the second size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.aggregate_steps import STEPS, Timing

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: How much a step's seconds per million records may grow with size before it is named:
#: a shared machine's load moves single steps by about this much between runs.
GROWTH_TOLERANCE = 1.25


@dataclass(frozen=True)
class ScalePoint:
    records: int
    timing: Timing
    load: str  # 1-minute load average before and after the run

    @property
    def millions(self) -> float:
        return self.records / 1_000_000

    @property
    def total(self) -> float:
        return sum(self.timing.steps.values())


def _steps(points: list[ScalePoint]) -> list[str]:
    return [s for s in STEPS if any(p.timing.steps.get(s, 0.0) >= 0.005 for p in points)]


def curve_lines(points: list[ScalePoint]) -> list[str]:
    """The table (Markdown, which also reads as plain text) and the growth verdict."""
    head = ["step"] + [f"{p.millions:g}M" for p in points]
    rows = [head, ["---"] * len(head)]
    for step in _steps(points):
        rows.append([step] + [f"{p.timing.steps.get(step, 0.0):.2f} s" for p in points])
    rows.append(["**total (statements)**"] + [f"{p.total:.2f} s" for p in points])
    rows.append(["wall, polling included"] + [f"{p.timing.wall:.2f} s" for p in points])
    rows.append(["process CPU"] + [f"{p.timing.cpu:.2f} s" for p in points])
    rows.append(["**s per million records**"] + [f"{p.total / p.millions:.2f}" for p in points])
    rows.append(
        ["CPU s per million records"] + [f"{p.timing.cpu / p.millions:.2f}" for p in points]
    )
    rows.append(["load average (1 min)"] + [p.load for p in points])
    for step in _steps(points):
        rows.append(
            [f"CPU: {step}"] + [f"{p.timing.cpu_steps.get(step, 0.0):.2f} s" for p in points]
        )
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", *growth(points)]
    return lines


def growth(points: list[ScalePoint]) -> list[str]:
    """Which steps cost more per million records at the largest size than at the second,
    judged twice: by the statements' seconds and by the process CPU seconds, the figure a
    shared machine's load moves least (a step that grows in seconds only waited longer)."""
    if len(points) < 3:
        return ["(fewer than three sizes: no growth verdict)"]
    first, last = points[1], points[-1]
    lines = []
    for measure, of in (
        ("seconds", lambda p: p.timing.steps),
        ("CPU seconds", lambda p: p.timing.cpu_steps),
    ):
        grown = []
        for step in _steps(points):
            before = of(first).get(step, 0.0) / first.millions
            after = of(last).get(step, 0.0) / last.millions
            if before > 0.01 and after > before * GROWTH_TOLERANCE:
                grown.append(f"{step} ({before:.2f} -> {after:.2f} per million records)")
        totals = [sum(of(p).values()) / p.millions for p in (first, last)]
        verdict = (
            f"{measure} per million records from {first.millions:g}M to {last.millions:g}M: "
            f"{totals[0]:.2f} -> {totals[1]:.2f}"
        )
        if grown:
            lines.append(verdict + "; grows per million records: " + "; ".join(grown))
        else:
            lines.append(verdict + f"; no step grows by more than {GROWTH_TOLERANCE:g}x")
    return lines


def print_curve(points: list[ScalePoint]) -> None:
    print("\nScale curve: subset + regions + RIIS status + aggregation, today's SQL")
    for line in curve_lines(points):
        print("  " + line)


def write_curve(points: list[ScalePoint], folder: Path) -> Path:
    """aggregate_scale.md and aggregate_scale.png in `folder`; returns the PNG's path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "aggregate_scale.md").write_text("\n".join(curve_lines(points)) + "\n", "utf-8")
    millions = [p.millions for p in points]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    for step in _steps(points):
        seconds = [p.timing.steps.get(step, 0.0) for p in points]
        left.plot(millions, seconds, marker="o", label=step)
        right.plot(millions, [s / m for s, m in zip(seconds, millions, strict=True)], marker="o")
    left.plot(millions, [p.total for p in points], marker="s", color="black", label="total")
    right.plot(millions, [p.total / p.millions for p in points], marker="s", color="black", lw=2)
    cpu = [p.timing.cpu / p.millions for p in points]
    right.plot(millions, cpu, marker="s", color="grey", lw=2, ls="--", label="process CPU")
    left.set(xlabel="records (millions)", ylabel="seconds", title="seconds per step")
    right.set(
        xlabel="records (millions)",
        ylabel="seconds per million records",
        title="cost per million records",
    )
    for axis in (left, right):
        axis.grid(alpha=0.3)
        axis.set_xticks(millions)
    left.legend(fontsize=8)
    right.legend(fontsize=8)
    loads = ", ".join(p.load for p in points)
    fig.suptitle(
        "subset + regions + RIIS status + aggregation on the DuckDB Data API stand-in "
        f"(load averages {loads})",
        fontsize=10,
    )
    fig.tight_layout()
    png = folder / "aggregate_scale.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png
