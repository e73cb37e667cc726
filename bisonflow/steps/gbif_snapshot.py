"""Is a month's GBIF open-data snapshot published, and has BISON already processed it?

"Processed" means published: the month's marker exists (bisonflow.steps.publish). Its ETag goes
into the state (`published_etag`), so PublishMonth writes the new marker only over the
version this run saw when it started.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.aws import error_code
from bisonflow.layout import MonthLayout
from bisonflow.steps.publish import published


@dataclass(frozen=True)
class SnapshotCheck:
    month: str
    snapshot_exists: bool
    already_processed: bool
    reason: str
    gbif_uri: str
    published_etag: str | None  # the month marker's ETag, None when the month is unpublished

    def to_dict(self) -> dict:
        return asdict(self)


def _prefix_has_objects(bucket: str, prefix: str) -> bool:
    try:
        page = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as exc:
        code = error_code(exc)
        raise RuntimeError(f"cannot list s3://{bucket}/{prefix}: {code} {exc}") from exc
    return page.get("KeyCount", 0) > 0


def check_month(layout: MonthLayout, force: bool = False) -> SnapshotCheck:
    gbif_bucket, bison_bucket = config.gbif_bucket(), config.bison_bucket()
    gbif_uri = f"s3://{gbif_bucket}/{layout.gbif_prefix}"
    exists = _prefix_has_objects(gbif_bucket, layout.gbif_prefix)
    try:
        current = published(aws.client("s3"), bison_bucket, layout)
    except ClientError as exc:
        raise RuntimeError(
            f"cannot read s3://{bison_bucket}/{layout.done_marker_key}: {exc}"
        ) from exc
    done = current is not None
    if not exists:
        reason = f"GBIF has not published the {layout.month} snapshot: {gbif_uri} is empty"
    elif done and not force:
        run = f"run {current.execution}" if current and current.execution else "in place"
        reason = (
            f"{layout.month} is already processed: s3://{bison_bucket}/{layout.done_marker_key}"
            f" publishes it ({run}; start with force=true to redo it)"
        )
    else:
        reason = f"processing the {layout.month} snapshot at {gbif_uri}"
    etag = current.etag if current else None
    return SnapshotCheck(layout.month, exists, done and not force, reason, gbif_uri, etag)
