"""Task: annotate the US-RIIS master list with GBIF accepted taxon keys and names.

Redshift later joins occurrences to RIIS by accepted taxon key, so a name GBIF cannot
resolve is kept (with empty keys) rather than dropped; it goes to the report CSV with every
malformed row and every doubtful match, for the curators. Names answered within the cache's
max age are not asked again; the cache written back holds this month's names (a hit keeps
the time GBIF was asked, so it still expires). Outputs are written only after every name was
resolved: the report, then the annotated list, then the cache. Header columns that are no
RIIS column (their values cannot go into the annotated list, which Redshift loads by position)
and RIIS columns the header lacks are named in the step output, so a renamed column in a new
edition of the list shows in the execution, not only in the task's log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bisonflow import name_cache
from bisonflow.aws import client
from bisonflow.gbif_api import GbifClient, NameMatch, NameQuery, concurrency_from_env, resolve_all
from bisonflow.riis import RiisFormatError, annotated_csv, decode, parse_riis, report_csv
from bisonflow.taskspec import TaskSpec

#: How many malformed line numbers go into the (small) task output; the report has them all.
MAX_REPORTED_LINES = 20
#: How many unknown column names go into the task output; the log has them all.
MAX_REPORTED_COLUMNS = 20


def run(spec: TaskSpec) -> dict[str, Any]:
    source = _spec_key(spec.inputs, "inputs", "riis")
    cache_key = _spec_key(spec.inputs, "inputs", "name_cache")
    targets = {name: _spec_key(spec.outputs, "outputs", name) for name in ("annotated", "report")}
    cache_target = _spec_key(spec.outputs, "outputs", "name_cache")
    max_age_days = _max_age_days(spec.params)
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

    now = dt.datetime.now(dt.UTC)
    cache = name_cache.load(s3, spec.bucket, cache_key, max_age_days, now)
    if cache.warning:
        _log(f"WARNING: {cache.warning}")
    queries = {record.query for record in parsed.records}
    cached = {q: m for q in queries if (m := cache.get(q)) is not None}
    todo = queries - cached.keys()
    concurrency = concurrency_from_env()
    _log(
        f"{len(queries)} names: {len(cached)} from the cache ({cache.status}), "
        f"asking GBIF for {len(todo)}, {concurrency} at a time"
    )
    with GbifClient() as gbif:
        fresh = resolve_all(gbif, todo, concurrency, _log)
        api_calls, retries = gbif.calls, gbif.retries
    matches: dict[NameQuery, NameMatch] = {**cached, **fresh}

    _put(s3, spec.bucket, targets["report"], report_csv(parsed.records, matches, parsed.malformed))
    _put(s3, spec.bucket, targets["annotated"], annotated_csv(parsed.records, matches))
    entries = {q: cache.entries[q] for q in cached}
    entries.update({q: name_cache.CacheEntry(m, now) for q, m in fresh.items()})
    cache_written = _save_cache(s3, spec.bucket, cache_target, entries)

    rows = parsed.records
    result = {
        "annotated_key": targets["annotated"],
        "report_key": targets["report"],
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
        "cache": {**cache.summary(), "written": cache_written},
    }
    _log(
        f"wrote s3://{spec.bucket}/{targets['annotated']}: {result['resolved']} of "
        f"{result['rows']} rows resolved ({result['doubtful']} doubtful), "
        f"{result['unresolved']} unresolved; report s3://{spec.bucket}/{targets['report']}"
    )
    return result


def _log(message: str) -> None:
    print(f"annotate_riis: {message}", flush=True)


def _max_age_days(params: dict[str, Any]) -> int:
    value = params.get("name_cache_max_age_days")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            f"task spec params['name_cache_max_age_days'] must be an integer >= 0, got {value!r}"
        )
    return value


def _spec_key(mapping: dict[str, str], section: str, name: str) -> str:
    key = mapping.get(name, "").strip()
    if not key:
        raise ValueError(f"task spec has no {section}[{name!r}] (an S3 key)")
    return key


def _put(s3: Any, bucket: str, key: str, text: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"), ContentType="text/csv")


def _save_cache(s3: Any, bucket: str, key: str, entries: dict[NameQuery, Any]) -> bool:
    """The month's outputs are written; a cache that cannot be saved costs only calls later."""
    try:
        name_cache.save(s3, bucket, key, entries)
    except (ClientError, BotoCoreError) as exc:
        _log(f"WARNING: could not save the name cache to s3://{bucket}/{key}: {exc}")
        return False
    return True


def _get_object(s3: Any, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise FileNotFoundError(f"input s3://{bucket}/{key} does not exist ({code})") from None
        raise
