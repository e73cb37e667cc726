"""Task: annotate the US-RIIS master list with GBIF accepted taxon keys and names.

Redshift later joins occurrences to RIIS by accepted taxon key, so a name GBIF cannot
resolve is kept (with empty keys) rather than dropped; it goes to the report CSV with every
malformed row and every doubtful match, for the curators.

Before any GBIF call, the list is compared with the annotated list of the latest earlier
month that was published, as its marker names it (bisonflow.steps.publish, bisonflow.riis.guard):
one that lost too many rows or names, or is mostly malformed, fails the task (RiisListDamaged)
unless the workflow was started with force=true.

Names answered within the cache's max age are not asked again. The cache written back is the
union of its unexpired entries and this month's answers (a hit keeps the time GBIF was asked,
so it still expires), saved as answers arrive, at most every name_cache_checkpoint_seconds of
the spec (launch_task's NAME_CACHE_CHECKPOINT_SECONDS, 60 by default), and once more at
the end or when resolution fails, so a lost task's rerun asks only the names not yet
answered. The month's outputs are written only after every name
was resolved: the report, then the annotated list. Header columns that are no
RIIS column (their values cannot go into the annotated list, which Redshift loads by position)
and RIIS columns the header lacks are named in the step output, so a renamed column in a new
edition of the list shows in the execution, not only in the task's log.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import client, error_code
from bisonflow.gbif import name_cache
from bisonflow.gbif.species_api import (
    GbifClient,
    NameMatch,
    NameQuery,
    resolve_all,
)
from bisonflow.layout import MonthLayout
from bisonflow.riis import guard as riis_guard
from bisonflow.riis.master_list import (
    RiisFormatError,
    annotated_csv,
    decode,
    parse_riis,
    report_csv,
)
from bisonflow.steps import publish
from bisonflow.steps.taskspec import AnnotateRiisSettings, AnnotateRiisSpec

#: How many malformed line numbers go into the (small) task output; the report has them all.
MAX_REPORTED_LINES = 20
#: How many unknown column names go into the task output; the log has them all.
MAX_REPORTED_COLUMNS = 20


def run(spec: AnnotateRiisSpec) -> dict[str, Any]:
    source, cache_key = spec.inputs.riis, spec.inputs.name_cache
    targets, settings = spec.outputs, spec.settings
    s3 = client("s3")

    _log(f"reading s3://{spec.bucket}/{source}")
    parsed = parse_riis(decode(_get_object(s3, spec.bucket, source)))
    for bad in parsed.malformed:
        _log(f"leaving out line {bad.line}: {bad.reason}")
    if parsed.unknown_columns:
        _log(
            f"WARNING: column(s) {list(parsed.unknown_columns)} are no US-RIIS v2 column; "
            "their values are not in the annotated list"
        )
    if parsed.missing_columns:
        _log(f"WARNING: the header lacks {list(parsed.missing_columns)}; written empty")
    if not parsed.records:
        raise RiisFormatError(
            f"s3://{spec.bucket}/{source} has no valid RIIS rows "
            f"({len(parsed.malformed)} malformed); refusing to write an empty annotated list"
        )
    previous = _previous_size(s3, spec.bucket, MonthLayout.for_month(spec.month))
    current = riis_guard.ListSize.of_queries(record.query for record in parsed.records)
    accepted = riis_guard.check(
        current, len(parsed.malformed), previous, settings.limits, settings.force
    )
    for problem in accepted:
        _log(f"WARNING: forced run, publishing anyway: {problem}")

    now = dt.datetime.now(dt.UTC)
    cache = name_cache.load(s3, spec.bucket, cache_key, settings.name_cache_max_age_days, now)
    if cache.warning:
        _log(f"WARNING: {cache.warning}")
    queries = {record.query for record in parsed.records}
    cached = {q: m for q in queries if (m := cache.get(q)) is not None}
    todo = queries - cached.keys()
    concurrency = settings.gbif_limit.concurrency
    _log(
        f"{len(queries)} names: {len(cached)} from the cache ({cache.status}), "
        f"asking GBIF for {len(todo)}, {concurrency} at a time"
    )
    writer = name_cache.CacheWriter(
        s3,
        spec.bucket,
        targets.name_cache,
        cache.entries,
        settings.name_cache_checkpoint_seconds,
        lambda message: _log(f"WARNING: {message}"),
        saving=cache.status != "unreadable",
    )
    if cache.status == "unreadable":
        _log("WARNING: the name cache is not written back: it could not be read")
    with _CheckpointingClient(lambda q, m: writer.add(q, m, now), settings) as gbif:
        try:
            fresh = resolve_all(gbif, todo, concurrency, _log)
        except BaseException:
            writer.flush()  # keep what was answered: the rerun asks only the rest
            raise
        api_calls, retries = gbif.calls, gbif.retries
    matches: dict[NameQuery, NameMatch] = {**cached, **fresh}

    _put(s3, spec.bucket, targets.report, report_csv(parsed.records, matches, parsed.malformed))
    _put(s3, spec.bucket, targets.annotated, annotated_csv(parsed.records, matches))
    cache_written = writer.flush(always=True)

    rows = parsed.records
    result = {
        "annotated_key": targets.annotated,
        "report_key": targets.report,
        "rows": len(rows),
        "names": len(queries),
        "resolved": sum(matches[r.query].resolved for r in rows),
        "doubtful": sum(matches[r.query].doubtful for r in rows),
        "unresolved": sum(not matches[r.query].resolved for r in rows),
        "resolved_names": sum(m.resolved for m in matches.values()),
        "doubtful_names": sum(m.doubtful for m in matches.values()),
        "unresolved_names": sum(not m.resolved for m in matches.values()),
        "malformed_rows": len(parsed.malformed),
        "malformed_lines": [bad.line for bad in parsed.malformed[:MAX_REPORTED_LINES]],
        "unknown_column_count": len(parsed.unknown_columns),
        "unknown_columns": list(parsed.unknown_columns[:MAX_REPORTED_COLUMNS]),
        "missing_columns": list(parsed.missing_columns),
        "api_calls": api_calls,
        "api_retries": retries,
        "cache_hits": len(cached),
        "cache": {
            **cache.summary(),
            "written": cache_written,
            "entries": len(writer),
            "saves": writer.saves,
        },
        "previous_rows": None if previous is None else previous.rows,
        "previous_names": None if previous is None else previous.names,
        "forced_problems": accepted,
    }
    _log(
        f"wrote s3://{spec.bucket}/{targets.annotated}: {result['resolved']} of "
        f"{result['rows']} rows resolved ({result['doubtful']} doubtful), "
        f"{result['unresolved']} unresolved; report s3://{spec.bucket}/{targets.report}"
    )
    return result


def _log(message: str) -> None:
    print(f"annotate_riis: {message}", flush=True)


def _put(s3: Any, bucket: str, key: str, text: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="text/csv")


class _CheckpointingClient(GbifClient):
    """The GBIF client, paced as the spec's settings say, that hands every answer to the
    name cache's writer as it arrives, so the answers of a run that dies half-way are in the
    cache for its rerun."""

    def __init__(
        self, on_answer: Callable[[NameQuery, NameMatch], None], settings: AnnotateRiisSettings
    ) -> None:
        super().__init__(
            limit=settings.gbif_limit.limit(),
            retry_budget_seconds=settings.gbif_retry_budget_seconds,
        )
        self._on_answer = on_answer

    def resolve(self, query: NameQuery) -> NameMatch:
        match = super().resolve(query)
        self._on_answer(query, match)
        return match


def _previous_size(s3: Any, bucket: str, month: MonthLayout) -> riis_guard.ListSize | None:
    """The size of the annotated list of the latest month before `month` that was published
    (the run its marker names); None when there is none (the first month) or it cannot be
    read as one (said in the log: the check is then skipped, not failed)."""
    previous = publish.previous_published(s3, bucket, month)
    if previous is None:
        _log(f"no month before {month.month} was published: nothing to compare the list with")
        return None
    key = previous.layout.riis_annotated_key
    try:
        data = _get_object(s3, bucket, key)
    except FileNotFoundError:
        _log(f"no list at s3://{bucket}/{key} (published {previous.layout.month}): not compared")
        return None
    try:
        size = riis_guard.ListSize.of_annotated(data.decode("utf-8"))
    except (ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        _log(f"WARNING: s3://{bucket}/{key} is unreadable ({exc}); not compared with it")
        return None
    _log(f"previous month's list s3://{bucket}/{key}: {size.rows} rows, {size.names} names")
    return size


def _get_object(s3: Any, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise FileNotFoundError(f"input s3://{bucket}/{key} does not exist ({code})") from None
        raise
