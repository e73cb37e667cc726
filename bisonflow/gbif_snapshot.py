"""Is a month's GBIF open-data snapshot published, and has BISON already processed it?"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.layout import MonthLayout


@dataclass(frozen=True)
class SnapshotCheck:
    month: str
    snapshot_exists: bool
    already_processed: bool
    reason: str
    gbif_uri: str

    def to_dict(self) -> dict:
        return asdict(self)


def _prefix_has_objects(bucket: str, prefix: str) -> bool:
    try:
        page = aws.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        raise RuntimeError(f"cannot list s3://{bucket}/{prefix}: {code} {exc}") from exc
    return page.get("KeyCount", 0) > 0


def _object_exists(bucket: str, key: str) -> bool:
    try:
        aws.client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise RuntimeError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    return True


def check_month(layout: MonthLayout, force: bool = False) -> SnapshotCheck:
    gbif_bucket, bison_bucket = config.gbif_bucket(), config.bison_bucket()
    gbif_uri = f"s3://{gbif_bucket}/{layout.gbif_prefix}"
    exists = _prefix_has_objects(gbif_bucket, layout.gbif_prefix)
    done = _object_exists(bison_bucket, layout.done_marker_key)
    if not exists:
        reason = f"GBIF has not published the {layout.month} snapshot: {gbif_uri} is empty"
    elif done and not force:
        reason = (
            f"{layout.month} is already processed: s3://{bison_bucket}/{layout.done_marker_key}"
            " exists (start with force=true to redo it)"
        )
    else:
        reason = f"processing the {layout.month} snapshot at {gbif_uri}"
    return SnapshotCheck(layout.month, exists, done and not force, reason, gbif_uri)
