"""The citation.txt a sample snapshot carries, where GBIF puts it in a real one.

GBIF: "Each snapshot contains a `citation.txt` with instructions on how best to cite the data,
and the data files themselves in Parquet format: `occurrence.parquet/*`", e.g.
`s3://gbif-open-data-REGION/occurrence/2021-04-13/citation.txt` (github gbif/occurrence,
aws-public-data.md, "Data format"). Every monthly snapshot is issued a DOI; GBIF's page of
snapshots asks that cloud copies be cited by a derived dataset for the records used, and the
whole snapshot as "GBIF.org (<date>) GBIF Occurrence Data https://doi.org/10.15468/dl.<id>"
(github gbif/portal16 issue 1730, "Page for monthly snapshot DOIs and links"; quoted so by
users, e.g. github iobis/speciesgrids README, "Citing").

GBIF's exact wording is not reproduced here; the sample says what the real file says (how to
cite, the snapshot's DOI citation, the derived-dataset advice) so the workflow meets a text it
must copy verbatim and cannot parse by layout. The DOI suffix names the sample: a made-up
suffix of GBIF's shape could be a real, unrelated download's DOI.
"""

from __future__ import annotations

import datetime as dt

#: DOI prefix of GBIF's downloads and snapshots (https://doi.org/10.15468/dl.<id>).
GBIF_DOWNLOAD_DOI_PREFIX = "10.15468/dl."


def sample_doi(snapshot: dt.date) -> str:
    """The sample snapshot's DOI: GBIF's prefix, a suffix that no real download has."""
    return f"{GBIF_DOWNLOAD_DOI_PREFIX}bisonflow-sample-{snapshot:%Y%m}"


def citation_text(snapshot: dt.date) -> bytes:
    """citation.txt of the sample snapshot of `snapshot` (the first of its month), UTF-8."""
    day = f"{snapshot.day} {snapshot:%B %Y}"
    return (
        "When using this dataset please use the following citation and pay attention to the "
        "rights documented in the license column of each record:\n\n"
        f"GBIF.org ({day}) GBIF Occurrence Data https://doi.org/{sample_doi(snapshot)}\n\n"
        "If you use a subset of these records, please register a derived dataset listing the "
        "datasets the records came from: https://www.gbif.org/citation-guidelines#derivedDatasets\n"
    ).encode()
