"""Emulator seam: S3 conditional writes are atomic, as on AWS.

The month lock (bisonflow.steps.month_lock) relies on S3's conditional writes: "If multiple
conditional writes occur for the same object name, the first write operation to finish
succeeds", and the others fail with 412 Precondition Failed (S3 User Guide, "Add
preconditions to S3 operations with conditional requests"). moto 5.2.5 honours `If-None-Match`
and `If-Match` on PutObject and `If-Match` on DeleteObject, but it tests the precondition and
writes the object in two steps with nothing between them, and its threaded server handles
requests concurrently: two lock writes at the same instant could both succeed, which AWS
never allows. Fix: conditional writes (and conditional deletes) run one at a time, so each
precondition is tested against the outcome of the one before. Unconditional writes are left
as moto makes them (on AWS too the last of them wins).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3.responses import S3Response

from bisonflow.local.seams import Patch, Seam

CONDITIONS = ("If-None-Match", "If-Match")
_LOCK = threading.Lock()

_moto_put_object = S3Response.put_object
_moto_delete_object = S3Response.delete_object


def _conditional(self: S3Response) -> bool:
    return any(self.headers.get(name) for name in CONDITIONS)


def put_object(self: S3Response) -> Any:
    """PutObject; a conditional one tests and writes as one step."""
    if not _conditional(self):
        return _moto_put_object(self)
    with _LOCK:
        return _moto_put_object(self)


def delete_object(self: S3Response) -> Any:
    """DeleteObject; a conditional one tests and deletes as one step."""
    if not _conditional(self):
        return _moto_delete_object(self)
    with _LOCK:
        return _moto_delete_object(self)


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(S3Response.__module__, "S3Response.put_object", ("self",), replacement=put_object),
    Patch(S3Response.__module__, "S3Response.delete_object", ("self",), replacement=delete_object),
)
