"""Output files written to S3 while they are produced, and made visible only when published.

A national month's outputs are large (its matrices and statistics are 0.5 GB; the CSV copies
of its species lists, 5.8 GB, which calc_stats once wrote too, now come from the aggregate
step's UNLOAD): held whole in memory before the first write, as calc_stats once did, they
need more memory than the task has. Each output is instead a writable file
(`StreamedObject`) that pyarrow's CSV and parquet writers write into batch by batch:

* up to PART_SIZE bytes stay in memory, and `publish()` sends them in one PutObject;
* beyond that, a multipart upload is started and every full part goes up as it fills, at
  most IN_FLIGHT parts per object in the air while the next one fills, so memory per object
  is bounded whatever its size. `publish()` sends the last part and completes the upload.

An object is not visible in its bucket until CompleteMultipartUpload: "After all parts of
your object are uploaded, Amazon S3 assembles these parts and creates the object" (S3 User
Guide, "Uploading and copying objects using multipart upload"). So streaming keeps the task's
rule that nothing appears before everything is computed: the parts of a task that fails are
discarded with AbortMultipartUpload (`abort()`), and a task killed outright leaves only
invisible parts (a bucket lifecycle rule `AbortIncompleteMultipartUpload` reclaims those).

Part sizes follow "Amazon S3 multipart upload limits" (S3 User Guide): "Part size: 5 MiB to
5 GiB. There is no minimum size limit on the last part of your multipart upload", part
numbers 1 to 10,000. S3 checks the minimum when the upload is completed (a smaller part that
is not the last fails CompleteMultipartUpload with EntityTooSmall); moto 5.2.5 makes the same
check (its S3_UPLOAD_PART_MIN_SIZE, 5 MiB unless that variable is set, which nothing here
does), and tests/test_streamed_outputs.py holds both to it, so no seam is needed. A single
PutObject holds at most 5 GB ("Uploading objects"), so an output that large could not be
written in one request anyway. Parts grow with the part number (PART_SIZE doubled every
PARTS_PER_DOUBLING parts, never above 5 GiB), so 10,000 parts hold 7.8 TiB, far beyond any
output here.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import posixpath
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code

#: Bytes kept before a multipart upload starts, and the size of its first parts: 8 MiB, above
#: S3's 5 MiB minimum part size. Small enough that a dozen objects streaming at once hold
#: under 200 MB; large enough that a 4.5 GB file is about 550 requests.
PART_SIZE = 8 * 1024 * 1024
#: S3's part size limits (S3 User Guide, "Amazon S3 multipart upload limits"); the minimum
#: binds every part but the last.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
#: S3's largest part number; parts double in size every PARTS_PER_DOUBLING of them.
MAX_PARTS = 10_000
PARTS_PER_DOUBLING = 1_000
#: Parts of one object uploading while the writer fills the next (memory per object is at
#: most (IN_FLIGHT + 1) parts).
IN_FLIGHT = 2

CONTENT_TYPES = {
    ".csv": "text/csv",
    ".png": "image/png",
    ".parquet": "application/vnd.apache.parquet",
    ".txt": "text/plain",
    ".json": "application/json",
}


def content_type(key: str) -> str:
    """The Content-Type an output is published with, by its extension."""
    return CONTENT_TYPES.get(posixpath.splitext(key)[1], "application/octet-stream")


def multipart_etag(part_etags: list[str]) -> str:
    """The ETag of an object completed from parts with these ETags (unquoted): the MD5 of the
    parts' binary MD5 ETags, "-", the number of parts. S3's documentation says only that such
    an ETag is not the object's MD5 ("Checking object integrity", S3 User Guide); this is
    the form S3 gives unencrypted and SSE-S3 objects, and moto's (tested)."""
    digests = b"".join(bytes.fromhex(etag.strip('"')) for etag in part_etags)
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"


def part_size(part_number: int) -> int:
    """Size of part `part_number` (1-based) of a streamed object: PART_SIZE doubled every
    PARTS_PER_DOUBLING parts, at most MAX_PART_SIZE."""
    return min(PART_SIZE << ((part_number - 1) // PARTS_PER_DOUBLING), MAX_PART_SIZE)


class StreamedObject(io.RawIOBase):
    """A write-only file whose bytes become the S3 object `key` when `publish()` is called.

    pyarrow's writers (pyarrow.csv.write_csv, pyarrow.parquet.ParquetWriter) accept it as
    their sink. `close()` only stops further writes; nothing is sent until `publish()`.
    """

    def __init__(self, s3: Any, bucket: str, key: str, uploads: ThreadPoolExecutor) -> None:
        super().__init__()
        self.s3, self.bucket, self.key = s3, bucket, key
        self._uploads = uploads
        self._buffer = bytearray()
        self._size = 0
        self._upload_id: str | None = None
        self._parts: list[Future[dict[str, Any]]] = []
        self._lock = threading.Lock()  # publish/abort may come from another thread

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def streaming(self) -> bool:
        """Whether a multipart upload was started (the object outgrew one part)."""
        return self._upload_id is not None

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._size

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"s3://{self.bucket}/{self.key} is closed")
        view = memoryview(data).cast("B")
        self._buffer += view
        self._size += len(view)
        while len(self._buffer) >= part_size(len(self._parts) + 1):
            size = part_size(len(self._parts) + 1)
            with memoryview(self._buffer) as whole:
                part = bytes(whole[:size])  # one copy (a bytearray slice would be two)
            del self._buffer[:size]
            self._send(part)
        return len(view)

    def close(self) -> None:
        """Ends writing; the bytes stay until `publish()` or `abort()`."""
        super().close()

    def publish(self) -> int:
        """Makes the object visible: one PutObject, or the last part and
        CompleteMultipartUpload. Returns its size in bytes."""
        with self._lock:
            if self._upload_id is None:
                self.s3.put_object(
                    Bucket=self.bucket,
                    Key=self.key,
                    Body=bytes(self._buffer),
                    ContentType=content_type(self.key),
                )
            else:
                if self._buffer or not self._parts:
                    self._send(bytes(self._buffer))
                parts = [future.result() for future in self._parts]
                self._complete(parts)
            self._buffer = bytearray()
            return self._size

    def _complete(self, parts: list[dict[str, Any]]) -> None:
        """CompleteMultipartUpload, where a retry may find the upload already completed.

        botocore retries a completion whose answer did not come in time (its read timeout,
        60 s), and a completion whose first attempt succeeded is then answered NoSuchUpload:
        "The upload ID may be invalid, or the upload may have been aborted or completed" (S3
        API Reference, Error codes). That answer is success only if the object now at the key
        is this upload: its ETag must be the one derived from the parts' ETags
        (`multipart_etag`); an object with another ETag is refused."""
        try:
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": parts},
            )
        except ClientError as error:
            if error_code(error) != "NoSuchUpload":
                raise
            expected = multipart_etag([part["ETag"] for part in parts])
            found = self.s3.head_object(Bucket=self.bucket, Key=self.key)["ETag"].strip('"')
            if found != expected:
                raise ValueError(
                    f"s3://{self.bucket}/{self.key}: upload {self._upload_id} is gone and the "
                    f"object there has ETag {found}, not this upload's {expected}"
                ) from error

    def abort(self) -> None:
        """Discards the object: its uploaded parts are deleted, nothing becomes visible."""
        with self._lock:
            self._buffer = bytearray()
            if self._upload_id is None:
                return
            for future in self._parts:
                future.exception()  # wait: a part landing after the abort would be kept
            self.s3.abort_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id
            )
            self._upload_id = None

    def _send(self, body: bytes) -> None:
        """Uploads the next part in the background, waiting while IN_FLIGHT are pending."""
        if self._upload_id is None:
            self._upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=content_type(self.key)
            )["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise ValueError(f"s3://{self.bucket}/{self.key}: more than {MAX_PARTS} parts")
        if len(self._parts) >= IN_FLIGHT:
            self._parts[-IN_FLIGHT].result()  # bounded memory, and the first error surfaces
        self._parts.append(self._uploads.submit(self._upload_part, number, body))

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        answer = self.s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": answer["ETag"]}


class StreamedOutputs:
    """Every StreamedObject of one task, so all of them are published, or all aborted."""

    def __init__(self, s3: Any, bucket: str, concurrency: int) -> None:
        self.s3, self.bucket = s3, bucket
        self._uploads = ThreadPoolExecutor(concurrency, thread_name_prefix="part-upload")
        self._objects: list[StreamedObject] = []
        self._lock = threading.Lock()

    def open(self, key: str) -> StreamedObject:
        """A new output at `key` in the bucket."""
        stream = StreamedObject(self.s3, self.bucket, key, self._uploads)
        with self._lock:
            self._objects.append(stream)
        return stream

    def abort(self) -> None:
        """Aborts every output that started a multipart upload (on any failure of the task)."""
        for stream in self._objects:
            with contextlib.suppress(Exception):  # the task's own error is the one to report
                stream.abort()

    def shutdown(self) -> None:
        self._uploads.shutdown(wait=True)
