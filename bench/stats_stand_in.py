"""A leaner CompleteMultipartUpload for the benchmark's moto server (bench.stats only).

moto 5.2.5 assembles a completed multipart upload in its server's memory four times over: the
parts joined in a bytearray, a bytes copy of it, and, for the default full-object checksum
(CRC64NVME; CRC32 when awscrt is missing, as here), a second bytearray of every part and a
bytes copy of that, before the object is spooled to disk. For the national case's 4.5 GB CSV
copy that is 18 GB in the benchmark's parent process, which the kernel killed at 15.3 GB
(2026-12-07 11:44 UTC). S3 itself assembles parts server-side; none of this is the task's
memory (the benchmark measures the task in a child process).

`install()` makes the benchmark's server join the parts once and compute the full-object
CRC part by part (binascii.crc32 continues a running value, so the checksum is the one moto
computes over the whole object). Everything moto checks is still checked: each part must
exist with its ETag (InvalidPart), every part but the last must be at least 5 MiB
(EntityTooSmall, moto's S3_UPLOAD_PART_MIN_SIZE), and a completion lists at least one part
(MalformedXML). The ETag is S3's multipart form, the MD5 of the parts' MD5s and "-<parts>".
tests/test_streamed_outputs.py checks that both give the same object, ETag and checksum.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from moto.s3 import models, utils
from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML

from bisonflow.stats.streamed_objects import multipart_etag

#: The algorithms whose full-object checksum moto computes with binascii.crc32 (CRC64NVME
#: falls back to CRC32 without awscrt).
_CRC32_ALGORITHMS = ("CRC32", "CRC64NVME")


def install() -> None:
    """Replaces moto's FakeMultipart.complete in this process (the benchmark's parent)."""
    models.FakeMultipart.complete = _complete


def _complete(
    self: models.FakeMultipart, body: Iterator[tuple[int, str]]
) -> tuple[bytearray, str, tuple[str, str, int] | None]:
    algorithm = self.metadata.get("x-amz-checksum-algorithm") or "CRC64NVME"
    kind = self.metadata.get("x-amz-checksum-type") or (
        "FULL_OBJECT" if algorithm == "CRC64NVME" else "COMPOSITE"
    )
    running = kind == "FULL_OBJECT" and algorithm in _CRC32_ALGORITHMS and not utils.HAS_CRT
    builder = None if running else models.MultipartChecksumBuilder(algorithm, kind)
    joined, etags, crc, previous = bytearray(), [], 0, None
    for number, etag in body:
        part = self.parts.get(number)
        if part is None or part.etag.strip('"') != etag.strip('"'):
            raise InvalidPart()
        if previous is not None and previous.contentsize < models.S3_UPLOAD_PART_MIN_SIZE:
            raise EntityTooSmall()
        value = part.value
        joined += value
        etags.append(part.etag)
        if builder is None:
            crc = binascii.crc32(value, crc)
        else:
            builder.addPart(value)
        previous = part
    if previous is None:
        raise MalformedXML
    etag = multipart_etag(etags)
    if builder is not None:
        return joined, etag, builder.build()
    return joined, etag, (kind, base64.b64encode(crc.to_bytes(4, "big")).decode(), 1)
