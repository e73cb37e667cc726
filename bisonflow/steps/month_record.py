"""Everything calc_stats publishes about a month besides its statistics.

The statistics say what was found; this says where it came from and what changed: the GBIF
snapshot's citation.txt copied beside the outputs (bisonflow.stats.provenance) and what is new this
month against the previous published month (bisonflow.stats.changes). The CSV copies of the
UNLOADed tables are not here: the aggregate step UNLOADs them from Redshift, as BISON does
(bisonflow.sql.unload `unload_csv`). Kept apart from the provenance
module so the launch Lambda, which only needs the citation's location, never imports the
plotting and table libraries this needs. A step of the library, not a statistic: it finds the
previous month through the marker that publishes it (bisonflow.steps.publish).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bisonflow.graphics.figures import changes_figure
from bisonflow.layout import SUMMARY_ROOT, MonthLayout
from bisonflow.stats import changes
from bisonflow.stats.provenance import SnapshotCitation
from bisonflow.stats.s3_ranged import RangedObject
from bisonflow.steps.publish import previous_published

#: A table folder's parquet part keys, as the reader of UNLOADed tables lists them
#: (tasks/calc_stats.part_keys: the manifest's parts, or every part without one).
PartKeys = Callable[[str], list[str]]


@dataclass(frozen=True)
class MonthRecord:
    """Files calc_stats publishes besides the statistics, and what it says about them."""

    files: dict[str, bytes] = field(default_factory=dict)  # key in the BISON bucket -> body
    record: dict[str, Any] = field(default_factory=dict)  # for `_SUCCESS` and the step output


def month_record(
    s3: Any,
    bucket: str,
    layout: MonthLayout,
    citation: SnapshotCitation,
    county: str,
    part_keys: PartKeys,
) -> MonthRecord:
    """The citation copy and the new-this-month table and figure: this month's county
    species list (`county`, the prefix of its parts) against the previous published
    month's, read through the same `part_keys` from the run its marker publishes
    (bisonflow.steps.publish)."""
    published_before = previous_published(s3, bucket, layout)  # through its marker
    previous = published_before.layout if published_before else None
    prefixes = [county]
    if previous is not None:
        prefixes.append(previous.species_counts_prefix(changes.COUNTY.name))
    keys = {prefix: part_keys(prefix) for prefix in prefixes}

    def parts(prefix: str) -> Iterator[bytes]:
        """The prefix's part bodies, each fetched when it is consumed: a national month's
        tables are gigabytes of parquet, which reading them all first held at once."""
        return (s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys[prefix])

    def footers(prefix: str) -> Iterator[RangedObject]:
        """The prefix's parts as files of which only the footer is fetched
        (bisonflow.stats.s3_ranged): a first month's comparison reads each part's columns
        and none of its rows. A later month's reads 2 and 7 of 9 columns, one ranged request
        per column chunk, and gets whole parts: the stand-in reads the whole object for every
        range it serves."""
        return (RangedObject(s3, bucket, k) for k in keys[prefix])

    where = f"s3://{bucket}/{county}"
    if previous is None:
        reason = (
            f"no earlier month: no month before {layout.month} was published "
            f"(no {SUMMARY_ROOT}<YYYY_MM_DD>/_SUCCESS before {layout.done_marker_key} "
            f"in s3://{bucket})"
        )
        found = changes.compare_lists(
            changes.CountyList(lambda: footers(county), where), None, None
        )
    else:
        reason = None
        prior = previous.species_counts_prefix(changes.COUNTY.name)
        found = changes.compare_lists(
            changes.CountyList(lambda: parts(county), where),
            changes.CountyList(lambda: parts(prior), f"s3://{bucket}/{prior}"),
            previous.month,
        )
    files = {
        layout.citation_copy_key: citation.body,
        layout.new_in_county_key: changes.csv_bytes(found.new_records),
        layout.county_changes_key: changes.csv_bytes(found.county_changes),
        layout.new_this_month_figure_key: changes_figure(found, layout.month, reason),
    }
    return MonthRecord(
        files,
        {
            "provenance": citation.record(layout.citation_copy_key),
            "changes": found.summary(reason),
        },
    )
