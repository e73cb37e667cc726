"""moto's S3 read and written in-process, for the DuckDB Data API stand-in.

The stand-in reaches moto's S3 through `moto.s3.models.s3_backends` rather than DuckDB's
httpfs against the server's HTTP endpoint: in-process access needs no endpoint (the server
may listen on any port), no credentials and no extension (httpfs is not installed, and
`INSTALL httpfs` needs the network), cannot deadlock on the server's own request threads,
and reports a missing object precisely (s3://bucket/key) instead of an HTTP 404 from inside a
DuckDB scan. The moto attributes used here are listed in `bisonflow.local.redshift.seam.SEAM`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["EmulatorError", "MotoS3", "split_s3_uri"]


class EmulatorError(RuntimeError):
    """A statement failed for a reason of the emulator's own (S3, a Redshift-only rule)."""


_S3_URI = re.compile(r"^s3://([^/]+)/?(.*)$", re.I)


def split_s3_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of s3://bucket/key; anything else fails the statement, naming it."""
    match = _S3_URI.match(uri.strip())
    if not match:
        raise EmulatorError(f"not an S3 location: {uri!r} (expected s3://bucket/key)")
    return match.group(1), match.group(2)


class MotoS3:
    """moto's S3 for one account, read and written in-process."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def _backend(self) -> Any:
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        return s3_backends[self.account_id][get_partition(self.region)]

    def _bucket(self, bucket: str) -> Any:
        from moto.s3.exceptions import MissingBucket

        try:
            return self._backend().get_bucket(bucket)
        except MissingBucket:
            raise EmulatorError(
                f"S3ServiceException: The specified bucket does not exist: s3://{bucket}/"
            ) from None

    def versions(self, bucket: str, prefix: str) -> list[tuple[str, str]]:
        """(key, ETag) of each object under `prefix`, sorted by key, leaving out folder
        markers and delete markers. The ETag tells a replaced object from the one a reader
        cached (moto computes it once, when the object is put)."""
        from moto.s3.models import FakeKey

        store = self._bucket(bucket).keys
        return sorted(
            (name, key.etag)
            for name, key in list(store.items())
            if name.startswith(prefix) and not name.endswith("/") and isinstance(key, FakeKey)
        )

    def list(self, bucket: str, prefix: str) -> list[str]:
        """Keys under `prefix` (sorted), leaving out folder markers and delete markers."""
        return [name for name, _ in self.versions(bucket, prefix)]

    def read(self, bucket: str, key: str) -> bytes:
        self._bucket(bucket)
        obj = self._backend().get_object(bucket, key)
        if obj is None:
            raise EmulatorError(
                f"S3ServiceException: The specified key does not exist: s3://{bucket}/{key}"
            )
        return bytes(obj.value)

    def download(self, bucket: str, key: str, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.read(bucket, key))
        return path

    def write(self, bucket: str, key: str, data: bytes) -> None:
        self._bucket(bucket)
        self._backend().put_object(bucket, key, data)

    def delete(self, bucket: str, key: str) -> None:
        self._backend().delete_object(bucket, key)
