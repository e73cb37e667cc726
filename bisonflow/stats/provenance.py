"""Which GBIF snapshot a month was computed from, and how GBIF asks that snapshot be cited.

A published month is only as trustworthy as the statement of what it was computed from: the
counts change from snapshot to snapshot as publishers add, correct and withdraw records. GBIF
publishes each monthly snapshot under `occurrence/YYYY-MM-DD/` with "a `citation.txt` with
instructions on how best to cite the data" beside the parquet files (github gbif/occurrence,
aws-public-data.md, "Data format"). calc_stats copies that file, byte for byte, beside the
month's outputs and names it, with the snapshot's location and DOI, in `_SUCCESS` and in its
step output (so in the execution's record and report): a reader of any output can say which
snapshot it came from and cite it as GBIF asks.

The text is copied, not rewritten: GBIF's wording is theirs and may change. Only the DOI is
picked out (the first https://doi.org/ link), for the marker; a citation without one is still
copied, and the marker says `doi: null`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.layout import MonthLayout

#: A DOI as GBIF writes it in a citation: a doi.org link (DOI Handbook 2.2: "10." prefix).
_DOI_LINK = re.compile(r"https?://(?:dx\.)?doi\.org/(10\.\d{4,9}/[^\s\"<>]+)")
#: citation.txt is a few hundred bytes; anything this large is not a citation file.
MAX_CITATION_BYTES = 64 * 1024


class CitationError(ValueError):
    """The snapshot's citation.txt is missing, unreadable or not a text file."""


@dataclass(frozen=True)
class SnapshotCitation:
    """The snapshot a month used and its citation.txt, as read from the GBIF bucket."""

    snapshot_uri: str  # s3://<gbif bucket>/occurrence/YYYY-MM-DD/
    source_uri: str  # s3://<gbif bucket>/occurrence/YYYY-MM-DD/citation.txt
    body: bytes  # the file as GBIF published it (copied verbatim)

    @property
    def doi(self) -> str | None:
        """The first DOI the citation links to, e.g. 10.15468/dl.abc123, or None."""
        match = _DOI_LINK.search(self.body.decode("utf-8"))
        return match.group(1).rstrip(".,;)") if match else None

    def record(self, copy_key: str) -> dict[str, Any]:
        """What `_SUCCESS` and the step output say about the snapshot and its citation."""
        return {
            "gbif_snapshot": self.snapshot_uri,
            "citation_source": self.source_uri,
            "citation": copy_key,
            "doi": self.doi,
        }


def citation_uri(gbif_bucket: str, layout: MonthLayout) -> str:
    """Where GBIF publishes the month's citation.txt (the task spec carries this URI)."""
    return f"s3://{gbif_bucket}/{layout.gbif_citation_key}"


def read_citation(s3: Any, uri: str, layout: MonthLayout) -> SnapshotCitation:
    """The citation.txt at `uri`, which must be the month's: a month that cannot say which
    snapshot it came from is not published, so every problem is one CitationError line."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or key != layout.gbif_citation_key:
        raise CitationError(
            f"the citation of {layout.month} must be s3://<gbif bucket>/"
            f"{layout.gbif_citation_key}, got {uri!r}"
        )
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(MAX_CITATION_BYTES + 1)
    except ClientError as exc:
        code = error_code(exc)
        raise CitationError(f"cannot read the snapshot's citation {uri}: {code} {exc}") from None
    if len(body) > MAX_CITATION_BYTES:
        raise CitationError(f"{uri} is over {MAX_CITATION_BYTES} bytes: not a citation file")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CitationError(f"{uri} is not UTF-8 text: {exc}") from None
    if not text.strip():
        raise CitationError(f"{uri} is empty: the snapshot says nothing about how to cite it")
    return SnapshotCitation(
        snapshot_uri=f"s3://{bucket}/{layout.gbif_snapshot_prefix}", source_uri=uri, body=body
    )
