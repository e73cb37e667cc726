"""What the bucket has published, as the console's Outputs page shows it: the months, each
month's files with their sizes, its figures in the report's order, and whether a key may be
served at all.

Everything goes through the month's marker (bisonflow.steps.publish), as every other reader
does: a month is published when its marker exists, and its files are the ones the marker
names, so a run that failed half-way, or one that was replaced, is never shown. The console
serves only those keys: it is a window on the published months, not a general bucket reader.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import OBJECT_MISSING, error_code
from bisonflow.history.report.gallery import caption, in_report_order
from bisonflow.layout import ANNOTATED_ROOT, SUMMARY_ROOT, MonthError, MonthLayout
from bisonflow.steps.publish import Published, month_folders, published, published_keys

#: Units of human_size above a byte, each 1024 of the one before.
_UNITS = ("KiB", "MiB", "GiB", "TiB")


@dataclass(frozen=True)
class OutputFile:
    """One published file: its key, its size in bytes (None: the marker names it but it is
    gone, which only a month published in place before runs can show)."""

    key: str
    size: int | None

    @property
    def name(self) -> str:
        return posixpath.basename(self.key)

    @property
    def is_image(self) -> bool:
        return self.key.endswith(".png")

    @property
    def caption(self) -> str:
        return caption(self.name)


@dataclass(frozen=True)
class MonthOutputs:
    """A published month: the marker's account of it and every file it publishes."""

    published: Published
    files: tuple[OutputFile, ...]  # the marker's own key excluded, sorted by key

    @property
    def month(self) -> str:
        return self.published.layout.month

    @property
    def execution_arn(self) -> str | None:
        """The execution that published the month; None for a month published in place."""
        arn = self.published.marker.get("execution_arn")
        return arn if isinstance(arn, str) and arn else None

    @property
    def published_at(self) -> str | None:
        when = self.published.marker.get("published")
        return when if isinstance(when, str) else None

    def figures(self) -> list[OutputFile]:
        """The month's images in the report's order (figures, then maps, then the rest)."""
        images = {f.name: f for f in self.files if f.is_image}
        return [images[name] for name in in_report_order(images)]


def published_months(s3: Any, bucket: str) -> list[MonthLayout]:
    """The months whose marker exists, newest first.

    One listing of SUMMARY_ROOT's folders (Delimiter "/": the month folders, not their
    runs' files), then per month one listing whose prefix is the marker's key (at most one
    key back): the bucket is never scanned, and no month's files are read."""
    months: list[MonthLayout] = []
    for month in month_folders(s3, bucket):
        marker = month.done_marker_key
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=marker, MaxKeys=1)
        if any(o["Key"] == marker for o in listed.get("Contents", [])):
            months.append(month)
    return sorted(months, key=lambda m: m.snapshot, reverse=True)


def month_outputs(s3: Any, bucket: str, month: MonthLayout) -> MonthOutputs | None:
    """The published version of `month` with every file's size; None when unpublished.

    Sizes come from the marker (PublishMonth records each file's size); a legacy marker
    records none, and its files are asked for theirs (HeadObject)."""
    found = published(s3, bucket, month)
    if found is None:
        return None
    recorded = {
        f["key"]: f["size"]
        for f in found.marker.get("files", [])
        if isinstance(f, dict) and isinstance(f.get("size"), int)
    }
    marker_key = found.layout.done_marker_key
    files = [
        OutputFile(key, recorded[key] if key in recorded else _head_size(s3, bucket, key))
        for key in sorted(set(found.keys()) - {marker_key})
    ]
    return MonthOutputs(found, tuple(files))


def month_of_key(key: str) -> MonthLayout | None:
    """The month whose folders hold `key` (summary/ or annotated_riis/<YYYY_MM_DD>/...)."""
    for root in (SUMMARY_ROOT, ANNOTATED_ROOT):
        if key.startswith(root):
            datestamp = key.removeprefix(root).partition("/")[0]
            try:
                return MonthLayout.from_datestamp(datestamp)
            except MonthError:
                return None
    return None


def is_published_key(s3: Any, bucket: str, key: str) -> bool:
    """Whether `key` is one of the files its month's marker publishes (the marker included):
    the only keys the console serves."""
    month = month_of_key(key)
    return month is not None and key in published_keys(s3, bucket, month)


def human_size(size: int) -> str:
    """`1536` -> `1.5 KiB`: binary units, one decimal above a KiB."""
    if size < 1024:
        return f"{size} bytes"
    value = size / 1024
    for unit in _UNITS[:-1]:
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


def _head_size(s3: Any, bucket: str, key: str) -> int | None:
    try:
        return int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if error_code(exc) in OBJECT_MISSING:
            return None
        raise
