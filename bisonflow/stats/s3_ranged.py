"""A seekable, read-only file over an S3 object that fetches only the byte ranges read.

A parquet reader needs only the footer (the file's last bytes) for the schema. In a first
month the new-this-month comparison (bisonflow.stats.changes) checks a county species list's
columns and reads none of its rows: fetching every part whole, as it did, moved a national
list (720 MB of parquet) through S3 for its column names. `RangedObject` is handed to
`pyarrow.parquet.ParquetFile` instead of the part's bytes, and the schema costs one request.

It is not used to read columns. pyarrow reads a Python file one column chunk at a time, so
three columns of a national part (12 row groups) are 36 requests, and moto 5.2.5, the local
stand-in, reads the whole object for every range it serves (moto/s3/responses.py
`_handle_range_header` slices the full body): 36 copies of a 180 MB part in the stand-in.

GetObject's `Range` header takes one HTTP byte range (S3 API Reference, GetObject, "Range":
"Downloads the specified byte range of an object", RFC 9110 ranges); a suffix range
`bytes=-N` gives the last N bytes, or the whole object when it is shorter, and the answer's
`Content-Range` (`bytes first-last/size`) gives the object's size. The first request fetches
TAIL_BYTES from the end, which holds a parquet footer of any table here, so a schema costs
one request.
"""

from __future__ import annotations

import io
import re
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code

#: Bytes fetched from the end of the object at first: pyarrow reads the footer with a
#: 64 KiB read from the end (its default footer read size), served from this.
TAIL_BYTES = 1 << 16
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class RangedObject(io.RawIOBase):
    """s3://bucket/key as a seekable binary file; each read outside the fetched tail is one
    ranged GetObject."""

    def __init__(self, s3: Any, bucket: str, key: str) -> None:
        super().__init__()
        self.s3, self.bucket, self.key = s3, bucket, key
        try:
            answer = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=-{TAIL_BYTES}")
        except ClientError as error:
            if error_code(error) != "InvalidRange":
                raise
            # No byte range of an empty object can be satisfied (RFC 9110, 416): it is empty.
            answer = {"Body": io.BytesIO(b"")}
        self._tail = answer["Body"].read()
        match = _CONTENT_RANGE.fullmatch(answer.get("ContentRange") or "")
        # An answer without Content-Range is the whole object (a server ignoring the range).
        self.size = int(match.group(3)) if match else len(self._tail)
        self._tail_start = self.size - len(self._tail)
        self._position = 0
        self.requests = 1  # GetObject calls made, for tests and logs

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"s3://{self.bucket}/{self.key}: seek before the start")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        first = self._position
        last = min(first + len(view), self.size)  # exclusive
        if last <= first:
            return 0
        if first >= self._tail_start:
            data = self._tail[first - self._tail_start : last - self._tail_start]
        else:
            answer = self.s3.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={first}-{last - 1}"
            )
            data = answer["Body"].read()
            self.requests += 1
        view[: len(data)] = data
        self._position += len(data)
        return len(data)
