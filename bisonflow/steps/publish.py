"""Publish a month in one step, and find the month a reader should read.

Every execution writes its whole output tree under its own staging folders (bisonflow.layout,
`MonthLayout.for_run`); nothing it writes is visible as "the month" until PublishMonth, the
step after CalcStats, writes the month's marker `summary/<YYYY_MM_DD>/_SUCCESS`: one JSON
object naming the execution and every file of its run, with each file's size and ETag. That
single PutObject is the publish. S3 cannot rename or update several keys at once ("There is
no way to make atomic updates across keys"), but "updates to a single key are atomic" and
reads after a write are strongly consistent (S3 User Guide, "Amazon S3 data consistency
model"), so a reader that reads the marker first and then the files it names sees either the
old complete month or the new complete month, never a mix. A run that fails or is stopped
before PublishMonth never touches the marker, so the published month stays byte-identical.

The marker is written with a precondition on what the run saw when it started (CheckGbif's
`published_etag`): `If-Match: <ETag>` when a month was published, `If-None-Match: *` when
none was (S3 User Guide, "Add preconditions to S3 operations with conditional requests"). The
month lock already serialises runs; the precondition also refuses a run whose lock was taken
over (its lease expired) from clobbering a month another run published meanwhile. A retried
or redriven PublishMonth whose first write did land finds the marker naming itself and
succeeds again, so the step is idempotent.

Readers (CheckGbif's "already processed", the previous month that "new this month" and the
RIIS guard compare with, the local runtime's download) go through `published()` and
`previous_published()`. A month published before runs existed has a marker that names no
execution (calc_stats's record, or nothing); its files are read where they were written, in
the month's own folders.

Old runs are never deleted by the workflow: a failed run's folder, and the folder of a run
that was published and then replaced, stay until someone removes them
(docs/outputs.md). An S3 Lifecycle rule cannot do it: its filter selects by prefix, tags or size
(S3 User Guide, "Lifecycle configuration elements"), and a published run's folder has the same
shape as an unpublished one's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import CONDITIONAL_WRITE_LOST, OBJECT_MISSING, error_code
from bisonflow.layout import SUMMARY_ROOT, MonthError, MonthLayout


class RunIncomplete(RuntimeError):
    """The run has no record from calc_stats: it did not finish, so it is not published."""


class MonthPublishedMeanwhile(RuntimeError):
    """The month's marker changed after this run started: another run published it."""


@dataclass(frozen=True)
class Published:
    """A month as its marker publishes it."""

    layout: MonthLayout  # where its files are: the run's folders, or the month's own (legacy)
    etag: str  # the marker's ETag, for a conditional write over it
    marker: dict[str, Any]  # the marker's content ({} when it is not a JSON object)

    @property
    def execution(self) -> str | None:
        """The execution whose run is published; None for a month published in place."""
        return self.layout.run

    def keys(self) -> list[str]:
        """The marker and every file it publishes (a legacy marker lists its summaries, and
        the annotated list and report are where that month wrote them)."""
        listed = self.marker.get("files", [])
        files = [f["key"] if isinstance(f, dict) else f for f in listed]
        if self.execution is None:
            files += [self.layout.riis_annotated_key, self.layout.riis_report_key]
        return [self.layout.done_marker_key, *files]


def published(s3: Any, bucket: str, layout: MonthLayout) -> Published | None:
    """The month's published version, read from its marker; None when it is not published."""
    month = layout.month_layout
    try:
        got = s3.get_object(Bucket=bucket, Key=month.done_marker_key)
    except ClientError as exc:
        if error_code(exc) in OBJECT_MISSING:
            return None
        raise
    try:
        marker = json.loads(got["Body"].read())
    except ValueError:
        marker = None  # an empty or foreign _SUCCESS: the month published in place
    if not isinstance(marker, dict):
        marker = {}
    run = marker.get("execution")
    where = MonthLayout.for_run(month.month, run) if isinstance(run, str) else month
    return Published(where, got["ETag"], marker)


def month_folders(s3: Any, bucket: str) -> Iterator[MonthLayout]:
    """Every month with a folder under SUMMARY_ROOT, published or not: one listing of the
    folders (Delimiter "/"), not of their files."""
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=SUMMARY_ROOT, Delimiter="/"
    ):
        for folder in page.get("CommonPrefixes", []):
            name = folder["Prefix"].removeprefix(SUMMARY_ROOT).rstrip("/")
            try:
                yield MonthLayout.from_datestamp(name)
            except MonthError:
                continue  # not a month's folder


def previous_published(s3: Any, bucket: str, layout: MonthLayout) -> Published | None:
    """The latest month before `layout` that was published (its marker exists), or None.

    Not simply the previous calendar month: a month that failed or was skipped left no
    marker (its run's tables may be partial), and a comparison must then reach back to the
    last month curators actually saw, or a gap would hide every change that came during it."""
    earlier = [month for month in month_folders(s3, bucket) if month.snapshot < layout.snapshot]
    for month in sorted(earlier, key=lambda m: m.snapshot, reverse=True):
        found = published(s3, bucket, month)
        if found is not None:
            return found
    return None


def published_keys(s3: Any, bucket: str, layout: MonthLayout) -> list[str]:
    """Every key of the month's published version, marker first; [] when unpublished."""
    found = published(s3, bucket, layout)
    return [] if found is None else found.keys()


def run_files(s3: Any, bucket: str, run: MonthLayout) -> list[dict[str, Any]]:
    """Key, size and ETag of every object of the run (its summary and annotated folders)."""
    files: list[dict[str, Any]] = []
    for prefix in (run.annotated_prefix, run.summary_prefix):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            files.extend(
                {"key": o["Key"], "size": o["Size"], "etag": o["ETag"]}
                for o in page.get("Contents", [])
            )
    return sorted(files, key=lambda f: f["key"])


def publish(
    s3: Any,
    bucket: str,
    run: MonthLayout,
    execution_arn: str,
    expected_etag: str | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Make `run` the month's published version with one conditional PutObject of the
    marker; returns the marker. `expected_etag` is the marker's ETag when the run started
    (None: no month was published), and the write fails unless it still is."""
    if run.run is None:
        raise ValueError(f"{run.month}: only an execution's run can be published")
    files = run_files(s3, bucket, run)
    # Told by the listing, not by a GetObject's 404: this role may list only the run folders,
    # and S3 answers a missing key 403 to a caller without s3:ListBucket on the bucket (S3 API
    # reference, GetObject, "Permissions").
    if run.record_key not in {f["key"] for f in files}:
        raise RunIncomplete(
            f"run {run.run} of {run.month} is incomplete: s3://{bucket}/{run.record_key} "
            "(written last by calc_stats) does not exist, so the month is not published"
        )
    record = json.loads(s3.get_object(Bucket=bucket, Key=run.record_key)["Body"].read())
    marker = {
        "month": run.month,
        "execution": run.run,
        "execution_arn": execution_arn,
        "published": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "snapshot": record.get("provenance", {}).get("gbif_snapshot"),
        "record": run.record_key,
        "files": files,
    }
    condition = {"IfMatch": expected_etag} if expected_etag else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=run.done_marker_key,
            Body=json.dumps(marker, indent=2).encode("utf-8"),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if error_code(exc) not in CONDITIONAL_WRITE_LOST:
            raise
        try:
            current = published(s3, bucket, run)
        except ClientError:  # removed meanwhile: 403 to this role (see above)
            current = None
        if current is not None and current.marker.get("execution_arn") == execution_arn:
            return current.marker  # this run's own earlier write (a retry or a redrive)
        by = "its marker was removed" if current is None else f"now {current.execution} is"
        raise MonthPublishedMeanwhile(
            f"the {run.month} marker s3://{bucket}/{run.done_marker_key} changed after run "
            f"{run.run} started ({by} published; it was "
            f"{expected_etag or 'absent'}): this run is not published"
        ) from None
    return marker
