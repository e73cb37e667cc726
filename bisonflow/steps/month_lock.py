"""One run per month at a time: a lock object in the BISON bucket naming the owning execution.

Two executions of one month would both pay for a whole month's work, and one of them fails on
tables the other created ("relation already exists") or overwrites the other's outputs. The
state machine's LockMonth step takes `locks/<YYYY_MM_DD>.json` before any work, with an S3
conditional write, `If-None-Match: *`: "Amazon S3 returns a 412 Precondition Failed error if
an object with the same key name already exists", and of concurrent conditional writes of one
key only one succeeds (S3 User Guide, "Add preconditions to S3 operations with conditional
requests"). The lock names the execution ARN and a lease (its start plus the state machine's
TimeoutSeconds, bisonflow.steps.waits).

A killed run cannot leave it stale: a lock whose holder is no longer RUNNING (stopped, timed
out, failed without its cleanup) or whose lease expired is taken over with `If-Match` on the
lock's ETag, so of two runs taking over the same stale lock only one wins. The run releases its
lock at the end, on success (ReleaseMonthLock) and on failure (CleanupTasks): `release()`
deletes only locks that name the releasing execution.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.aws import CONDITIONAL_WRITE_LOST, OBJECT_MISSING, error_code
from bisonflow.layout import MonthLayout
from bisonflow.steps.waits import EXECUTION_TIMEOUT_SECONDS

LOCK_PREFIX = "locks/"


def lock_key(layout: MonthLayout) -> str:
    return f"{LOCK_PREFIX}{layout.datestamp}.json"


@dataclass(frozen=True)
class Lock:
    acquired: bool
    holder: str  # the execution ARN the lock names now
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _body(layout: MonthLayout, execution: str) -> bytes:
    now = _now()
    lease = now + dt.timedelta(seconds=EXECUTION_TIMEOUT_SECONDS)
    return json.dumps(
        {
            "month": layout.month,
            "execution": execution,
            "acquired": now.isoformat(timespec="seconds"),
            "lease_until": lease.isoformat(timespec="seconds"),
        }
    ).encode()


def _put(layout: MonthLayout, execution: str, **condition: str) -> bool:
    """Write the lock under `condition` (IfNoneMatch / IfMatch); False if the write lost."""
    try:
        aws.client("s3").put_object(
            Bucket=config.bison_bucket(),
            Key=lock_key(layout),
            Body=_body(layout, execution),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if error_code(exc) in CONDITIONAL_WRITE_LOST:
            return False
        raise
    return True


def _read(layout: MonthLayout) -> tuple[dict[str, Any], str] | None:
    """The lock's content and ETag, or None if there is none (released meanwhile)."""
    try:
        got = aws.client("s3").get_object(Bucket=config.bison_bucket(), Key=lock_key(layout))
    except ClientError as exc:
        if error_code(exc) in OBJECT_MISSING:
            return None
        raise
    return json.loads(got["Body"].read()), got["ETag"]


def execution_status(execution: str) -> str:
    """DescribeExecution's status of an execution (ARN); GONE if Step Functions no longer knows
    it."""
    try:
        return aws.client("stepfunctions").describe_execution(executionArn=execution)["status"]
    except ClientError as exc:
        if error_code(exc) == "ExecutionDoesNotExist":
            return "GONE"
        raise


def acquire(layout: MonthLayout, execution: str) -> Lock:
    """Take the month's lock for `execution` (an execution ARN), or say who holds it."""
    for _ in range(3):  # a lock released or taken over between our reads: look again
        if _put(layout, execution, IfNoneMatch="*"):
            return Lock(True, execution, f"{layout.month} locked for this execution")
        current = _read(layout)
        if current is None:
            continue
        lock, etag = current
        holder = lock["execution"]
        if holder == execution:  # a retried or redriven step of the holder itself
            return Lock(True, execution, f"{layout.month} already locked for this execution")
        status = execution_status(holder)
        expired = dt.datetime.fromisoformat(lock["lease_until"]) < _now()
        if status == "RUNNING" and not expired:
            return Lock(
                False,
                holder,
                f"{layout.month} is being processed by execution {holder} (since "
                f"{lock['acquired']}); this run is refused so the month is not processed "
                "twice. Wait for it to end, or stop it, and start again",
            )
        if _put(layout, execution, IfMatch=etag):
            why = "its lease expired" if status == "RUNNING" else f"it is {status}"
            return Lock(True, execution, f"{layout.month} locked, taken over from {holder}: {why}")
    raise RuntimeError(f"the {layout.month} lock kept changing while taking it; try again")


def release(execution: str, layout: MonthLayout | None = None) -> list[str]:
    """Delete the locks `execution` holds (the month's, or any month's); their keys."""
    s3, bucket = aws.client("s3"), config.bison_bucket()
    if layout is not None:
        keys = [lock_key(layout)]
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=LOCK_PREFIX)
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    released = []
    for key in keys:
        current = _read(MonthLayout.from_datestamp(key[len(LOCK_PREFIX) : -len(".json")]))
        if current is None or current[0]["execution"] != execution:
            continue
        try:
            s3.delete_object(Bucket=bucket, Key=key, IfMatch=current[1])
        except ClientError as exc:
            if error_code(exc) not in CONDITIONAL_WRITE_LOST + OBJECT_MISSING:
                raise
            continue  # taken over meanwhile: not ours any more
        released.append(key)
    return released
