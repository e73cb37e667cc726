"""RIIS status of records at SQL level: the edge cases of US-RIIS, through the workflow's SQL.

Each case is one record in a county of Alaska, Hawaii or Colorado (the lower 48) of the
session's sample counties, and the RIIS list holds exactly the rows below; the aggregate
step on the DuckDB Data API stand-in decides every record's assessment and RIIS entry.

Every case runs for a month before and a month after GBIF's taxon keys became strings
(the 2025-08-01 snapshot, bisonflow.gbif.schema): the snapshot is published in the month's
types, and the outcome must not depend on them.
"""

from __future__ import annotations

import io
import re
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_regions import Aggregated, aggregate_records, occurrence

from bisonflow.dimensions import (
    ASSESSMENTS,
    ESTABLISHED,
    INVASIVE,
    PRESUMED_NATIVE,
    REGION_COUNT_COLUMNS,
    SPECIES_KEY,
    WIDESPREAD_INVASIVE,
    assessment_column,
)
from bisonflow.duckdb_ext import load_spatial
from bisonflow.layout import MonthLayout
from bisonflow.local.runtime import LocalRuntime

#: The last month of integer taxon keys, and a month of string keys.
MONTHS = ("2025-07", "2025-09")
WORKGROUP = "bisonflow-riis-status-test"

C3 = "established (category C3)"
D2 = "invasive (category D2)"
E = "widespread invasive (category E)"

#: The annotated list: gbif_res_taxonkey is the accepted key the name resolved to ("" when
#: GBIF found no match), GBIF_taxonKey the key the list itself gives.
RIIS_ROWS = [
    # Invasive in Hawaii, not listed for the lower 48.
    {"locality": "HI", "scientificName": "Rattus exulans", "degreeOfEstablishment": D2,
     "GBIF_taxonKey": "5001", "gbif_res_taxonkey": "5001", "occurrenceID": "hi-rat"},
    # A synonym on the list: it resolves to the accepted key the records carry.
    {"locality": "L48", "scientificName": "Anisantha tectorum", "degreeOfEstablishment": C3,
     "GBIF_taxonKey": "7777", "gbif_res_taxonkey": "3003", "occurrenceID": "l48-cheatgrass",
     "taxonomicStatus": "synonym"},
    # A name GBIF could not match: it applies to no record.
    {"locality": "L48", "scientificName": "Nomen dubium", "degreeOfEstablishment": E,
     "GBIF_taxonKey": "6006", "gbif_res_taxonkey": "", "occurrenceID": "l48-unmatched"},
    # Listed for the lower 48 only.
    {"locality": "L48", "scientificName": "Felis catus", "degreeOfEstablishment": E,
     "GBIF_taxonKey": "1001", "gbif_res_taxonkey": "1001", "occurrenceID": "l48-cat"},
    # A hybrid name, resolved to the hybrid's own backbone key.
    {"locality": "L48", "scientificName": "Carduus acanthoides x nutans", "isHybrid": "yes",
     "degreeOfEstablishment": C3, "GBIF_taxonKey": "", "gbif_res_taxonkey": "8008",
     "occurrenceID": "l48-thistle-hybrid"},
    # Keys as a float-typed writer or a careless hand leaves them: normalised, or nothing.
    {"locality": "L48", "scientificName": "Sus scrofa", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "9009.0", "occurrenceID": "l48-pig-float"},
    {"locality": "L48", "scientificName": "Bromus inermis", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": " 9100 ", "occurrenceID": "l48-brome-blanks"},
    {"locality": "L48", "scientificName": "Nomen fractum", "degreeOfEstablishment": E,
     "gbif_res_taxonkey": "6116.5", "occurrenceID": "l48-fraction"},
    {"locality": "L48", "scientificName": "Nomen nan", "degreeOfEstablishment": E,
     "gbif_res_taxonkey": "nan", "occurrenceID": "l48-nan"},
    # One species, a different tier in each region: widespread invasive in the lower 48,
    # established in Hawaii, not listed for Alaska.
    {"locality": "L48", "scientificName": "Sturnus vulgaris", "degreeOfEstablishment": E,
     "gbif_res_taxonkey": "2002", "occurrenceID": "l48-starling"},
    {"locality": "HI", "scientificName": "Sturnus vulgaris", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": "2002", "occurrenceID": "hi-starling"},
    # Three tiers for one (region, accepted key), a name and two synonyms: the most severe
    # wins though it is neither the first row nor the lowest occurrenceID.
    {"locality": "L48", "scientificName": "Lonicera japonica", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": "3100", "occurrenceID": "l48-honeysuckle-z"},
    {"locality": "L48", "scientificName": "Nintooa japonica", "degreeOfEstablishment": E,
     "gbif_res_taxonkey": "3100", "occurrenceID": "l48-honeysuckle-m",
     "taxonomicStatus": "synonym"},
    {"locality": "L48", "scientificName": "Caprifolium japonicum", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "3100", "occurrenceID": "l48-honeysuckle-a",
     "taxonomicStatus": "synonym"},
    # Two entries of one tier for one key: the lowest occurrenceID.
    {"locality": "HI", "scientificName": "Reynoutria japonica", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "3200", "occurrenceID": "hi-knotweed-b"},
    {"locality": "HI", "scientificName": "Fallopia japonica", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "3200", "occurrenceID": "hi-knotweed-a", "taxonomicStatus": "synonym"},
    # Established and invasive for one key: invasive, though established's ID sorts first.
    {"locality": "L48", "scientificName": "Ailanthus altissima", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": "3300", "occurrenceID": "l48-ailanthus-a"},
    {"locality": "L48", "scientificName": "Toxicodendron altissimum", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "3300", "occurrenceID": "l48-ailanthus-b", "taxonomicStatus": "synonym"},
    # A degree as a hand-edited list may spell it: its tier all the same.
    {"locality": "L48", "scientificName": "Pueraria montana",
     "degreeOfEstablishment": "  Widespread Invasive (Category E) ", "gbif_res_taxonkey": "3400",
     "occurrenceID": "l48-kudzu"},
    # A degree outside the vocabulary (annotate_riis refuses such a row): no guessed tier.
    {"locality": "L48", "scientificName": "Nomen incertum", "degreeOfEstablishment": "invasive",
     "gbif_res_taxonkey": "3500", "occurrenceID": "l48-bare-degree"},
]  # fmt: skip


def _as_annotated(row: dict[str, str]) -> dict[str, str]:
    """A resolved species entry as annotate_riis writes it: the match's rank SPECIES, its
    species key the accepted key, its own usage key the accepted key unless given (a
    synonym's); an unresolved one ("" key) keeps them empty."""
    key = row.get("gbif_res_taxonkey", "")
    if not key:
        return row
    defaults = {"gbif_res_rank": "SPECIES", "gbif_res_specieskey": key, "gbif_res_usagekey": key}
    return defaults | row


RIIS_ROWS = [_as_annotated(row) for row in RIIS_ROWS]
RIIS_ROWS[1]["gbif_res_usagekey"] = "7777"  # the synonym's own key
#: The species GBIF places a record of a synonym key in: the accepted species (specieskey).
SPECIES_OF = {7777: 3003}

#: (case, state of the record's county, record taxonkey, assessment, RIIS occurrenceID)
CASES = (
    ("invasive in HI: a Hawaii record", "HI", 5001, INVASIVE, "hi-rat"),
    ("invasive in HI: a lower-48 record", "CO", 5001, PRESUMED_NATIVE, None),
    ("synonym on the list, record of the accepted key", "CO", 3003, ESTABLISHED, "l48-cheatgrass"),
    ("record published under the synonym (its specieskey the accepted)", "CO", 7777,
     ESTABLISHED, "l48-cheatgrass"),
    ("the unmatched name's key as the list gives it", "CO", 6006, PRESUMED_NATIVE, None),
    ("L48-only species: an Alaska record", "AK", 1001, PRESUMED_NATIVE, None),
    ("L48-only species: a lower-48 record", "CO", 1001, WIDESPREAD_INVASIVE, "l48-cat"),
    ("hybrid name, record of the hybrid", "CO", 8008, ESTABLISHED, "l48-thistle-hybrid"),
    ("hybrid name in Alaska", "AK", 8008, PRESUMED_NATIVE, None),
    ("a key written 9009.0 by a float-typed writer", "CO", 9009, INVASIVE, "l48-pig-float"),
    ("a key with blanks around it", "CO", 9100, ESTABLISHED, "l48-brome-blanks"),
    ("a fractional key matches no taxon", "CO", 6116, PRESUMED_NATIVE, None),
    ("a shorter key, listed before the longer ones", "CO", 904, PRESUMED_NATIVE, None),
    ("E in L48, C3 in HI: a lower-48 record", "CO", 2002, WIDESPREAD_INVASIVE, "l48-starling"),
    ("E in L48, C3 in HI: a Hawaii record", "HI", 2002, ESTABLISHED, "hi-starling"),
    ("E in L48, C3 in HI: an Alaska record", "AK", 2002, PRESUMED_NATIVE, None),
    ("three tiers for one key: the most severe", "CO", 3100, WIDESPREAD_INVASIVE,
     "l48-honeysuckle-m"),
    ("two entries of one tier: the lowest occurrenceID", "HI", 3200, INVASIVE, "hi-knotweed-a"),
    ("established and invasive for one key: invasive", "CO", 3300, INVASIVE, "l48-ailanthus-b"),
    ("a degree in another case, blanks around it", "CO", 3400, WIDESPREAD_INVASIVE, "l48-kudzu"),
    ("a degree outside the vocabulary matches nothing", "CO", 3500, PRESUMED_NATIVE, None),
)  # fmt: skip


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


@pytest.fixture(scope="module", params=MONTHS)
def month(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def aggregated(runtime: LocalRuntime, month: str) -> Aggregated:
    centres = _county_centres(runtime)
    records = [
        occurrence(20_000 + i, *centres[state], taxonkey=key)
        | {"specieskey": SPECIES_OF.get(key, key)}
        for i, (_, state, key, *_) in enumerate(CASES)
    ]
    return aggregate_records(runtime, month, WORKGROUP, records, RIIS_ROWS)


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
    assert set(expected) == set(ASSESSMENTS)  # the table exercises every assessment
    assert aggregated.summary["occurrences_by_region"] == {"AK": 3, "HI": 3, "L48": 15}
    assert aggregated.summary["sites"]["state"] == 3


def _unloaded(runtime: LocalRuntime, prefix: str) -> pa.Table:
    """Every parquet part UNLOAD wrote under the prefix, as one table."""
    assert runtime.deployment is not None
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]]
    parts = [k for k in keys if k.endswith(".parquet")]
    return pa.concat_tables(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in parts
    )


def test_state_counts_have_a_column_pair_per_tier(
    runtime: LocalRuntime, aggregated: Aggregated, month: str
) -> None:
    """Hawaii's three records: the starling established, the rat and the knotweed invasive
    (the knotweed's two entries counted once); each tier in its own columns."""
    table = _unloaded(runtime, MonthLayout.for_month(month).region_counts_prefix("state"))
    hawaii = table.filter(pc.equal(table["state"], "HI")).to_pylist()
    counts = {c: n for c, n in hawaii[0].items() if c in REGION_COUNT_COLUMNS}
    tiers = {ESTABLISHED: (1, 1), INVASIVE: (2, 2), WIDESPREAD_INVASIVE: (0, 0)}
    assert counts == {"occ_count": 3, "species_count": 3} | {
        assessment_column(a, m): n
        for a, pair in (tiers | {PRESUMED_NATIVE: (0, 0)}).items()
        for m, n in zip(("occ_count", "species_count"), pair, strict=True)
    }


def test_count_columns_are_plain_identifiers() -> None:
    """The tier "widespread invasive" has a space; a column name must not."""
    assert assessment_column(WIDESPREAD_INVASIVE, "occ_count") == "widespread_invasive_occ_count"
    assert all(re.fullmatch("[a-z][a-z_]*", c) for c in REGION_COUNT_COLUMNS)
    assert len(set(REGION_COUNT_COLUMNS)) == 2 + 2 * len(ASSESSMENTS)
    with pytest.raises(ValueError, match="unknown RIIS assessment 'introduced'"):
        assessment_column("introduced", "occ_count")


def test_published_taxon_keys_are_text(
    runtime: LocalRuntime, aggregated: Aggregated, month: str
) -> None:
    """The UNLOADed species counts carry the species keys as text whatever the month's GBIF
    type: the records' specieskey (a synonym-named record under its accepted species)."""
    table = _unloaded(runtime, MonthLayout.for_month(month).species_counts_prefix("state"))
    assert table.schema.field(SPECIES_KEY).type == pa.string()
    expected = {str(SPECIES_OF.get(key, key)) for _, _, key, *_ in CASES}
    assert set(table[SPECIES_KEY].to_pylist()) == expected
    for state in set(table["state"].to_pylist()):
        keys = table.filter(pc.equal(table["state"], state))[SPECIES_KEY].to_pylist()
        assert keys == sorted(keys, key=lambda k: (len(k), k)), state  # key order
