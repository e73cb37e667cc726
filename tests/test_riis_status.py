"""RIIS status of records at SQL level: the edge cases of US-RIIS, through the workflow's SQL.

Each case is one record in a county of Alaska, Hawaii or Colorado (the lower 48) of the
session's sample counties, and the RIIS list holds exactly the rows below; the aggregate
step on the DuckDB Data API stand-in decides every record's assessment and RIIS entry.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
from test_regions import Aggregated, aggregate_records, occurrence

from bisonflow.duckdb_ext import load_spatial
from bisonflow.local.runtime import LocalRuntime
from bisonflow.riis_schema import INTRODUCED, INVASIVE, PRESUMED_NATIVE

MONTH = "2031-02"
WORKGROUP = "bisonflow-riis-status-test"

C3 = "established (category C3)"
D2 = "invasive (category D2)"
E = "widespread invasive (category E)"

#: The annotated list: gbif_res_taxonkey is the accepted key the name resolved to ("" when
#: GBIF found no match), gbif_taxonKey the key the list itself gives.
RIIS_ROWS = [
    # Invasive in Hawaii, not listed for the lower 48.
    {"locality": "HI", "scientificName": "Rattus exulans", "degreeOfEstablishment": D2,
     "gbif_taxonKey": "5001", "gbif_res_taxonkey": "5001", "occurrenceID": "hi-rat"},
    # A synonym on the list: it resolves to the accepted key the records carry.
    {"locality": "L48", "scientificName": "Anisantha tectorum", "degreeOfEstablishment": C3,
     "gbif_taxonKey": "7777", "gbif_res_taxonkey": "3003", "occurrenceID": "l48-cheatgrass",
     "taxonomicStatus": "synonym"},
    # A name GBIF could not match: it applies to no record.
    {"locality": "L48", "scientificName": "Nomen dubium", "degreeOfEstablishment": E,
     "gbif_taxonKey": "6006", "gbif_res_taxonkey": "", "occurrenceID": "l48-unmatched"},
    # Listed for the lower 48 only.
    {"locality": "L48", "scientificName": "Felis catus", "degreeOfEstablishment": E,
     "gbif_taxonKey": "1001", "gbif_res_taxonkey": "1001", "occurrenceID": "l48-cat"},
    # A hybrid name, resolved to the hybrid's own backbone key.
    {"locality": "L48", "scientificName": "Carduus acanthoides x nutans", "isHybrid": "yes",
     "degreeOfEstablishment": C3, "gbif_taxonKey": "", "gbif_res_taxonkey": "8008",
     "occurrenceID": "l48-thistle-hybrid"},
]  # fmt: skip

#: (case, state of the record's county, record taxonkey, assessment, RIIS occurrenceID)
CASES = (
    ("invasive in HI: a Hawaii record", "HI", 5001, INVASIVE, "hi-rat"),
    ("invasive in HI: a lower-48 record", "CO", 5001, PRESUMED_NATIVE, None),
    ("synonym on the list, record of the accepted key", "CO", 3003, INTRODUCED, "l48-cheatgrass"),
    ("record of the synonym's own key", "CO", 7777, PRESUMED_NATIVE, None),
    ("the unmatched name's key as the list gives it", "CO", 6006, PRESUMED_NATIVE, None),
    ("L48-only species: an Alaska record", "AK", 1001, PRESUMED_NATIVE, None),
    ("L48-only species: a lower-48 record", "CO", 1001, INVASIVE, "l48-cat"),
    ("hybrid name, record of the hybrid", "CO", 8008, INTRODUCED, "l48-thistle-hybrid"),
    ("hybrid name in Alaska", "AK", 8008, PRESUMED_NATIVE, None),
)


def _county_centres(runtime: LocalRuntime) -> dict[str, tuple[float, float]]:
    """The centre of one sample county per state: inside that county and no other."""
    assert runtime.sample is not None
    con = duckdb.connect()
    load_spatial(con)
    rows = con.execute(
        f"""
        SELECT STUSPS, ST_X(ST_Centroid(geom)), ST_Y(ST_Centroid(geom))
        FROM ST_Read('{runtime.sample.county_shapefile}')
        QUALIFY row_number() OVER (PARTITION BY STUSPS ORDER BY GEOID) = 1
        """
    ).fetchall()
    con.close()
    return {state: (x, y) for state, x, y in rows}


@pytest.fixture(scope="module")
def aggregated(runtime: LocalRuntime) -> Aggregated:
    centres = _county_centres(runtime)
    records = [
        occurrence(20_000 + i, *centres[state], taxonkey=key)
        for i, (_, state, key, *_) in enumerate(CASES)
    ]
    return aggregate_records(runtime, MONTH, WORKGROUP, records, RIIS_ROWS)


@pytest.mark.parametrize(("n", "case"), list(enumerate(CASES)), ids=[c[0] for c in CASES])
def test_riis_status_of_each_edge_case(aggregated: Aggregated, n: int, case: Any) -> None:
    _, state, _, assessment, occurrence_id = case
    marks = aggregated.marks[str(20_000 + n)]
    assert marks["state"] == state
    assert marks["riis_region"] == ("L48" if state == "CO" else state)
    assert marks["riis_assessment"] == assessment
    assert marks["riis_occurrence_id"] == occurrence_id


def test_step_output_counts_the_assessments(aggregated: Aggregated) -> None:
    expected: dict[str, int] = {}
    for *_, assessment, _ in CASES:
        expected[assessment] = expected.get(assessment, 0) + 1
    assert aggregated.summary["occurrences_by_assessment"] == expected
    assert aggregated.summary["occurrences_by_region"] == {"AK": 2, "HI": 1, "L48": 6}
    assert aggregated.summary["sites"]["state"] == 3
