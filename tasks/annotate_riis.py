"""Task: annotate the US-RIIS master list with GBIF accepted taxon keys and names.

Redshift later joins occurrences to RIIS by accepted taxon key, so a name GBIF cannot
resolve is kept (with empty keys) rather than dropped, and the curators see it in the log.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import client
from bisonflow.gbif_api import GbifClient, concurrency_from_env, resolve_all
from bisonflow.riis import RiisFormatError, annotated_csv, decode, parse_riis
from bisonflow.taskspec import TaskSpec

#: How many malformed line numbers go into the (small) task output; the log has them all.
MAX_REPORTED_LINES = 20
#: How many unresolved names are printed for the curators.
MAX_PRINTED_UNRESOLVED = 50


def run(spec: TaskSpec) -> dict[str, Any]:
    source = _spec_key(spec.inputs, "inputs", "riis")
    target = _spec_key(spec.outputs, "outputs", "annotated")
    s3 = client("s3")
    print(f"annotate_riis: reading s3://{spec.bucket}/{source}", flush=True)
    parsed = parse_riis(decode(_get_object(s3, spec.bucket, source)))
    for bad in parsed.malformed:
        print(f"annotate_riis: skipping line {bad.line}: {bad.reason}", flush=True)
    if parsed.ignored_columns:
        print(f"annotate_riis: ignoring unknown columns {list(parsed.ignored_columns)}", flush=True)
    if not parsed.records:
        raise RiisFormatError(
            f"s3://{spec.bucket}/{source} has no valid RIIS rows "
            f"({len(parsed.malformed)} malformed); refusing to write an empty annotated list"
        )

    queries = {record.query for record in parsed.records}
    concurrency = concurrency_from_env()
    print(f"annotate_riis: resolving {len(queries)} names, {concurrency} at a time", flush=True)
    with GbifClient() as gbif:
        resolutions = resolve_all(gbif, queries, concurrency, _log)
    _print_unresolved(sorted(q.name for q, taxon in resolutions.items() if not taxon.resolved))

    body = annotated_csv(parsed.records, resolutions).encode("utf-8")
    s3.put_object(Bucket=spec.bucket, Key=target, Body=body, ContentType="text/csv")
    resolved = sum(resolutions[r.query].resolved for r in parsed.records)
    print(f"annotate_riis: wrote s3://{spec.bucket}/{target}", flush=True)
    return {
        "annotated_key": target,
        "rows": len(parsed.records),
        "names": len(queries),
        "resolved": resolved,
        "unresolved": len(parsed.records) - resolved,
        "malformed_rows": len(parsed.malformed),
        "malformed_lines": [bad.line for bad in parsed.malformed[:MAX_REPORTED_LINES]],
    }


def _log(message: str) -> None:
    print(f"annotate_riis: {message}", flush=True)


def _print_unresolved(names: list[str]) -> None:
    if not names:
        return
    shown = ", ".join(repr(n) for n in names[:MAX_PRINTED_UNRESOLVED])
    more = (
        f" and {len(names) - MAX_PRINTED_UNRESOLVED} more"
        if len(names) > MAX_PRINTED_UNRESOLVED
        else ""
    )
    _log(f"{len(names)} names have no accepted GBIF taxon: {shown}{more}")


def _spec_key(mapping: dict[str, str], section: str, name: str) -> str:
    key = mapping.get(name, "").strip()
    if not key:
        raise ValueError(f"task spec has no {section}[{name!r}] (an S3 key)")
    return key


def _get_object(s3: Any, bucket: str, key: str) -> bytes:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "404", "NoSuchBucket"):
            raise FileNotFoundError(f"input s3://{bucket}/{key} does not exist ({code})") from None
        raise
