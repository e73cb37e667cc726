"""GBIF name matches kept in S3 between months, keyed by the (name, authorship, kingdom) triple.

The US-RIIS list changes little from month to month, and the backbone a few times a year, so
asking GBIF again for every name every month costs an hour for nothing. An entry is trusted
for `max_age_days` after GBIF was last asked; older ones are asked again.

The cache is an optimisation, never a reason to fail a month: a missing object (the first
month) starts empty; an unreadable or corrupt one is reported and starts empty; a malformed
entry is dropped. So is an entry written before the match's rank, speciesKey and usageKey
were kept (NameMatch.from_dict refuses it): its name is asked again rather than read with
keys the marks need missing.

The cache is only ever grown: what is written back is every unexpired entry loaded plus this
month's answers (`CacheWriter`), so a short month (a truncated list) no longer shrinks it to
its own names (issue 11: 283 entries became 39); only the age limit removes entries. It is
written whole in one PUT each time (S3 replaces objects atomically: "Amazon S3 never adds
partial objects; if you receive a success response, Amazon S3 added the entire object",
Amazon S3 API Reference, PutObject), so no reader ever sees half a cache, and it is written
as answers arrive, at most every `checkpoint_seconds`, so a task lost mid-resolution (a
reclaimed Spot instance, a killed container) loses at most that much of its calls: the rerun
finds the answers in the cache. Two months annotating at once would each write their own
union ("If it receives multiple write requests for the same object simultaneously, it
overwrites all but the last object written", same page): the loser's new answers are asked
again next time, nothing worse.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bisonflow.aws import OBJECT_MISSING, error_code
from bisonflow.gbif.species_api import NameMatch, NameQuery

#: Bumped when the entry layout changes; a cache of another version is ignored (asked again).
FORMAT_VERSION = 1


@dataclass(frozen=True)
class CacheEntry:
    match: NameMatch
    checked: dt.datetime  # when GBIF last answered for this triple (UTC)


@dataclass
class NameCache:
    """Fresh entries plus what loading found, for the step's output and log."""

    entries: dict[NameQuery, CacheEntry] = field(default_factory=dict)
    status: str = "empty"  # loaded, missing, disabled, corrupt, unreadable
    expired: int = 0  # entries older than the max age (asked again)
    dropped: int = 0  # malformed entries
    warning: str = ""

    def get(self, query: NameQuery) -> NameMatch | None:
        entry = self.entries.get(query)
        return None if entry is None else entry.match

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "fresh": len(self.entries),
            "expired": self.expired,
            "dropped": self.dropped,
        }


def load(s3: Any, bucket: str, key: str, max_age_days: int, now: dt.datetime) -> NameCache:
    """The cache's entries checked within max_age_days of now (0: use none, do not read)."""
    if max_age_days <= 0:
        return NameCache(status="disabled")
    try:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        if code in OBJECT_MISSING:
            return NameCache(status="missing")
        return _unusable("unreadable", f"cannot read s3://{bucket}/{key} ({code}: {exc})")
    except BotoCoreError as exc:
        return _unusable("unreadable", f"cannot read s3://{bucket}/{key}: {exc}")
    try:
        document = json.loads(gzip.decompress(data).decode("utf-8"))
        raw_entries = _entries_of(document)
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        return _unusable("corrupt", f"s3://{bucket}/{key} is not a name cache: {exc}")
    cache = NameCache(status="loaded")
    oldest = now - dt.timedelta(days=max_age_days)
    for raw in raw_entries:
        try:
            query, entry = _entry(raw)
        except (KeyError, TypeError, ValueError):
            cache.dropped += 1
            continue
        if entry.checked < oldest:
            cache.expired += 1
        else:
            cache.entries[query] = entry
    if cache.dropped:
        cache.warning = f"s3://{bucket}/{key}: dropped {cache.dropped} malformed entries"
    return cache


def dump(entries: dict[NameQuery, CacheEntry]) -> bytes:
    """The gzipped JSON document `load` reads, entries in a stable order."""
    document = {
        "version": FORMAT_VERSION,
        "entries": [
            {
                "name": query.name,
                "authorship": query.authorship,
                "kingdom": query.kingdom,
                "checked": entry.checked.isoformat(),
                "match": entry.match.to_dict(),
            }
            for query, entry in sorted(entries.items())
        ],
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), mtime=0)


def save(s3: Any, bucket: str, key: str, entries: dict[NameQuery, CacheEntry]) -> None:
    """Replace the cache object whole (one PUT)."""
    s3.put_object(Bucket=bucket, Key=key, Body=dump(entries), ContentType="application/gzip")


def _unusable(status: str, warning: str) -> NameCache:
    return NameCache(status=status, warning=f"{warning}; starting with an empty name cache")


def _entries_of(document: Any) -> list[Any]:
    if not isinstance(document, dict):
        raise ValueError("the document is not a JSON object")
    if document.get("version") != FORMAT_VERSION:
        raise ValueError(f"version {document.get('version')!r}, expected {FORMAT_VERSION}")
    entries = document.get("entries")
    if not isinstance(entries, list):
        raise ValueError("'entries' is not a list")
    return entries


def _entry(raw: dict[str, Any]) -> tuple[NameQuery, CacheEntry]:
    texts = [raw["name"], raw["authorship"], raw["kingdom"]]
    if not all(isinstance(t, str) for t in texts) or not texts[0]:
        raise TypeError("name, authorship and kingdom must be strings, name non-empty")
    checked = dt.datetime.fromisoformat(raw["checked"])
    if checked.tzinfo is None:
        raise ValueError("checked has no time zone")
    return NameQuery(*texts), CacheEntry(NameMatch.from_dict(raw["match"]), checked)


class CacheWriter:
    """The cache to write back: the entries loaded (unexpired) plus each answer as it arrives,
    saved whole when `checkpoint_seconds` have passed since the last save (0: after every
    answer) and once more by `flush`. Thread-safe: resolution threads call `add`.

    A save that fails is reported through `warn` and retried at the next checkpoint: the
    cache is an optimisation, never a reason to fail a month. A writer whose cache could not
    be read (`load`'s "unreadable": S3 refused or failed the GET) saves nothing: writing would
    replace entries it never saw, the very shrinking the union exists to prevent.
    """

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        kept: dict[NameQuery, CacheEntry],
        checkpoint_seconds: float,
        warn: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        saving: bool = True,
    ) -> None:
        self._s3, self._bucket, self._key = s3, bucket, key
        self._saving = saving
        self._entries = dict(kept)
        self._checkpoint_seconds = checkpoint_seconds
        self._warn = warn
        self._clock = clock
        self._lock = threading.Lock()
        self._last_save = clock()
        self._unsaved = 0
        self.saves = 0  # successful PUTs (checkpoints and the final one)

    def add(self, query: NameQuery, match: NameMatch, checked: dt.datetime) -> None:
        with self._lock:
            self._entries[query] = CacheEntry(match, checked)
            self._unsaved += 1
            if self._clock() - self._last_save >= self._checkpoint_seconds:
                self._save_locked()

    def flush(self, always: bool = False) -> bool:
        """Save the answers not saved yet (`always`: save even if there are none, so a month
        that asked nothing still drops expired entries); True if S3 holds every answer."""
        with self._lock:
            return self._save_locked() if self._unsaved or always else self._unsaved == 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _save_locked(self) -> bool:
        self._last_save = self._clock()
        if not self._saving:
            return False
        try:
            save(self._s3, self._bucket, self._key, self._entries)
        except (ClientError, BotoCoreError) as exc:
            self._warn(f"could not save the name cache to s3://{self._bucket}/{self._key}: {exc}")
            return False
        self._unsaved = 0
        self.saves += 1
        return True
