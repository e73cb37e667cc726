"""Is this month's US-RIIS list whole enough to publish? A check against last month's.

A truncated upload, or a file mostly mangled by a spreadsheet, still parses: the rows that
survive are valid, so the month used to publish with a fraction of the list (issue 11: a
list cut to 10% of its bytes published 114 invasive occurrences instead of 1,582). Nothing
in one file tells a short list from a shrunken one, so this month's list is compared with
the annotated list of the latest earlier month that was published (the run its marker names,
bisonflow.steps.publish; the first month has none and passes), and a list that lost more than a
share of its rows or of its distinct names, or whose rows are mostly malformed, fails the
task with one message naming both counts and the setting that allows it. A forced run (the
workflow's `force` input) accepts it, with the same message as a warning, for an upstream
list that really did shrink.

Why the defaults: real editions of the list change by a few percent. USGS's data releases
count 15,264 records in v1.0 (as of 2021-11-08: AK 532, HI 6,075, L48 8,657; doi
10.5066/P95XL09Q) and 14,700 in v2.0 (as of 2022-10-23: AK 545, HI 5,628, L48 8,527;
doi 10.5066/P9KFFTOD, ScienceBase item 62d59ae5d34e87fffb2dda99): 3.7% fewer records
between editions, 7.4% fewer in Hawaii's list, the largest drop. A loss above 10% is
therefore not an edition but damage; a list whose rows are more than half malformed is not a
list with a few typos.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

# No import of gbif_api here: launch_task (a Lambda) imports this module through ec2_tasks,
# and the Lambda layer carries what its code imports (requests is not needed there).
from bisonflow.config import ConfigError, env_int

#: Each limit's field of ListLimits (and of the task spec's settings, bisonflow.steps.taskspec)
#: and the launch Lambda's environment variable, in percent.
MAX_ROW_LOSS = ("max_row_loss_percent", "RIIS_MAX_ROW_LOSS_PERCENT")
MAX_NAME_LOSS = ("max_name_loss_percent", "RIIS_MAX_NAME_LOSS_PERCENT")
MAX_MALFORMED = ("max_malformed_percent", "RIIS_MAX_MALFORMED_PERCENT")
DEFAULT_PERCENTS = {MAX_ROW_LOSS: 10, MAX_NAME_LOSS: 10, MAX_MALFORMED: 50}


class RiisListDamaged(ValueError):
    """This month's list lost too much against last month's, or is mostly malformed."""


@dataclass(frozen=True)
class ListSize:
    """Valid rows and distinct (name, authorship, kingdom) triples: what one GBIF call and
    one cache entry stand for, and what the task reports as `names`."""

    rows: int
    names: int

    @classmethod
    def of_queries(cls, queries: Iterable[Hashable]) -> ListSize:
        """One query per valid row (a NameQuery, or any value equal for the same triple)."""
        listed = list(queries)
        return cls(len(listed), len(set(listed)))

    @classmethod
    def of_annotated(cls, text: str) -> ListSize:
        """The size of a published annotated list (header ANNOTATED_COLUMNS)."""
        rows = csv.DictReader(io.StringIO(text))
        needed = ("scientificName", "scientificNameAuthorship", "kingdom")
        missing = [c for c in needed if c not in (rows.fieldnames or [])]
        if missing:
            raise ValueError(f"not an annotated RIIS list: no column(s) {', '.join(missing)}")
        return cls.of_queries(tuple(r[c] or "" for c in needed) for r in rows)


@dataclass(frozen=True)
class ListLimits:
    """How much a month's list may lose against the previous month's, and how much of it may
    be malformed, each in percent (0-100)."""

    max_row_loss_percent: int
    max_name_loss_percent: int
    max_malformed_percent: int

    @classmethod
    def from_env(cls) -> ListLimits:
        """The launch Lambda's environment (template parameters), for the task spec."""
        values = []
        for (_, var), default in _defaults():
            value = env_int(var, default)
            if value > 100:
                raise ConfigError(f"environment variable {var} is a percentage, got {value}")
            values.append(value)
        return cls(*values)


def problems(
    current: ListSize, malformed: int, previous: ListSize | None, limits: ListLimits
) -> list[str]:
    """Each way this month's list looks damaged, as one sentence naming the counts and the
    setting that would allow it; empty when it looks whole (or there is nothing to compare)."""
    found = []
    read = current.rows + malformed
    if read and malformed * 100 > limits.max_malformed_percent * read:
        found.append(
            f"{malformed} of {read} rows are malformed ({_share(malformed, read)}), more than "
            f"{MAX_MALFORMED[1]}={limits.max_malformed_percent}% allows"
        )
    if previous is not None:
        for what, now, before, (_, var), limit in (
            ("rows", current.rows, previous.rows, MAX_ROW_LOSS, limits.max_row_loss_percent),
            ("names", current.names, previous.names, MAX_NAME_LOSS, limits.max_name_loss_percent),
        ):
            lost = before - now
            if lost > 0 and lost * 100 > limit * before:
                found.append(
                    f"{now} valid {what} against {before} in the previous month's annotated "
                    f"list: {lost} lost ({_share(lost, before)}), more than {var}={limit}% allows"
                )
    return found


def check(
    current: ListSize,
    malformed: int,
    previous: ListSize | None,
    limits: ListLimits,
    force: bool,
) -> list[str]:
    """Raise RiisListDamaged naming every problem unless forced; forced, return them (the
    task logs them and names them in its output)."""
    found = problems(current, malformed, previous, limits)
    if found and not force:
        raise RiisListDamaged(
            "the US-RIIS list looks damaged, refusing to publish it: "
            + "; ".join(found)
            + ". If the list really is this short, raise the setting or start the month "
            "with force=true"
        )
    return found


def _defaults() -> list[tuple[tuple[str, str], int]]:
    return list(DEFAULT_PERCENTS.items())


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%"
