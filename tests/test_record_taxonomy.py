"""Record-side taxonomy: records as GBIF publishes them meet the US-RIIS list through their
`specieskey` (a listed species) or their own `taxonkey` (a listed infraspecific taxon).

GBIF gives a record its own usage's key as `taxonkey`, the taxon "corresponding to
`scientificname`" (a synonym's key, a subspecies' key), and the accepted classification's
species as `species` / `specieskey` (gbif/occurrence `aws-public-data.md`, "Schema"). The
annotated list carries what /v1/species/match answered for each listed name: the accepted
key, the matched usage's rank, its speciesKey and the name's own usageKey. The records below
are built that way by hand and run through the workflow's real subset and aggregate SQL on
the DuckDB Data API stand-in, in a month of integer and a month of string taxon keys.

Counties (boxes): one in Colorado (lower 48), one in Alaska, the District of Columbia (lower
48 too) and San Juan, Puerto Rico (a territory no RIIS list assesses).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_riis import GBIF_TABLE

from bisonflow.dimensions import (
    ESTABLISHED,
    INVASIVE,
    PRESUMED_NATIVE,
    REGION_COUNT_COLUMNS,
    SPECIES_KEY,
    WIDESPREAD_INVASIVE,
    assessment_column,
)
from bisonflow.duckdb_ext import load_spatial
from bisonflow.gbif.species_api import NameQuery, interpret_match
from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.riis.columns import ANNOTATED_COLUMNS
from bisonflow.sample.snapshot import records_table
from bisonflow.sql.workflow_sql import SqlTarget, statement_batches
from bisonflow.stats.pam import build_heatmap
from bisonflow.steps.statements import run_batches

# moto's backends are process-wide: buckets and a workgroup of this module's own.
GBIF_BUCKET = "bisonflow-taxonomy-test-gbif"
BISON_BUCKET = "bisonflow-taxonomy-test-bison"
WORKGROUP = "bisonflow-taxonomy-test"
#: The last month of integer taxon keys, and a month of string keys (bisonflow.gbif.schema).
MONTHS = ("2025-07", "2025-09")

#: (GEOID, NAMELSAD, STUSPS, state name, (west, south, east, north)).
COUNTIES = (
    ("08001", "Adams County", "CO", "Colorado", (-105.0, 39.5, -104.0, 40.5)),
    ("02020", "Anchorage Municipality", "AK", "Alaska", (-150.5, 60.5, -149.5, 61.5)),
    ("11001", "District of Columbia", "DC", "District of Columbia", (-77.1, 38.8, -76.9, 39.0)),
    ("72127", "San Juan Municipio", "PR", "Puerto Rico", (-66.2, 18.3, -65.9, 18.5)),
)
CENTRE = {st: ((w + e) / 2, (s + n) / 2) for _, _, st, _, (w, s, e, n) in COUNTIES}

C3, D2, E = (
    "established (category C3)",
    "invasive (category D2)",
    "widespread invasive (category E)",
)

#: The annotated list: the match's accepted key, rank, speciesKey and the name's usageKey.
RIIS_ROWS = [
    # A species listing: applies to the species, its synonyms' records and its subspecies.
    {"locality": "L48", "scientificName": "Sus scrofa", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": "2001", "gbif_res_scientificname": "Sus scrofa Linnaeus, 1758",
     "gbif_res_rank": "SPECIES", "gbif_res_specieskey": "2001", "gbif_res_usagekey": "2001",
     "occurrenceID": "l48-boar"},
    # A subspecies listing under a synonym's name ("Sus scrofa ferus", 2009, a synonym of
    # the subspecies 2002): applies to the subspecies and to records of that synonym.
    {"locality": "L48", "scientificName": "Sus scrofa ferus", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "2002", "gbif_res_scientificname": "Sus scrofa scrofa",
     "gbif_res_rank": "SUBSPECIES", "gbif_res_specieskey": "2001", "gbif_res_usagekey": "2009",
     "occurrenceID": "l48-boar-ssp"},
    # A list name that is a synonym of a species (Anisantha tectorum -> Bromus tectorum).
    {"locality": "L48", "scientificName": "Anisantha tectorum", "degreeOfEstablishment": E,
     "gbif_res_taxonkey": "3003", "gbif_res_scientificname": "Bromus tectorum L.",
     "gbif_res_rank": "SPECIES", "gbif_res_specieskey": "3003", "gbif_res_usagekey": "3009",
     "occurrenceID": "l48-cheatgrass"},
    # A subspecies listed, its species not: the species' other records stay presumed native.
    {"locality": "L48", "scientificName": "Apis mellifera ligustica", "degreeOfEstablishment": D2,
     "gbif_res_taxonkey": "4002", "gbif_res_scientificname": "Apis mellifera ligustica",
     "gbif_res_rank": "SUBSPECIES", "gbif_res_specieskey": "4001", "gbif_res_usagekey": "4002",
     "occurrenceID": "l48-bee-ssp"},
    # A species-rank name whose accepted taxon is a subspecies (here Canis familiaris taken as
    # a synonym of Canis lupus familiaris): no record has a subspecies as its specieskey, so
    # the listing meets records by taxonkey, as one below species does.
    {"locality": "L48", "scientificName": "Canis familiaris", "degreeOfEstablishment": C3,
     "gbif_res_taxonkey": "5002", "gbif_res_scientificname": "Canis lupus familiaris",
     "gbif_res_rank": "SPECIES", "gbif_res_specieskey": "5001", "gbif_res_usagekey": "5009",
     "occurrenceID": "l48-dog"},
]  # fmt: skip

BOAR, CHEATGRASS, BEE, WOLF = "Sus scrofa", "Bromus tectorum", "Apis mellifera", "Canis lupus"
#: (case, state, rank, scientificname, taxonkey, specieskey, species, assessment, entry)
CASES = (
    ("accepted species", "CO", "SPECIES", "Sus scrofa", 2001, 2001, BOAR,
     ESTABLISHED, "l48-boar"),
    ("published under a synonym of the species", "CO", "SPECIES", "Sus europaeus", 2099, 2001,
     BOAR, ESTABLISHED, "l48-boar"),
    ("the listed subspecies: its tier beats the species'", "CO", "SUBSPECIES",
     "Sus scrofa scrofa", 2002, 2001, BOAR, INVASIVE, "l48-boar-ssp"),
    ("the subspecies' synonym the list writes", "CO", "SUBSPECIES", "Sus scrofa ferus", 2009,
     2001, BOAR, INVASIVE, "l48-boar-ssp"),
    # The known limit: no acceptedtaxonkey in the snapshot, so another synonym of the listed
    # subspecies is known only as its species.
    ("another synonym of the listed subspecies", "CO", "SUBSPECIES", "Sus scrofa palustris",
     2008, 2001, BOAR, ESTABLISHED, "l48-boar"),
    ("an unlisted subspecies of the listed species", "CO", "SUBSPECIES", "Sus scrofa cristatus",
     2003, 2001, BOAR, ESTABLISHED, "l48-boar"),
    ("the species the list names by a synonym", "CO", "SPECIES", "Bromus tectorum", 3003, 3003,
     CHEATGRASS, WIDESPREAD_INVASIVE, "l48-cheatgrass"),
    ("published under the list's synonym", "CO", "SPECIES", "Anisantha tectorum", 3009, 3003,
     CHEATGRASS, WIDESPREAD_INVASIVE, "l48-cheatgrass"),
    ("a variety of the species listed by a synonym", "CO", "VARIETY",
     "Bromus tectorum var. glabratus", 3004, 3003, CHEATGRASS, WIDESPREAD_INVASIVE,
     "l48-cheatgrass"),
    ("the species of a listed subspecies", "CO", "SPECIES", "Apis mellifera", 4001, 4001, BEE,
     PRESUMED_NATIVE, None),
    ("a listed subspecies of an unlisted species", "CO", "SUBSPECIES",
     "Apis mellifera ligustica", 4002, 4001, BEE, INVASIVE, "l48-bee-ssp"),
    ("another subspecies of that species", "CO", "SUBSPECIES", "Apis mellifera carnica", 4003,
     4001, BEE, PRESUMED_NATIVE, None),
    ("the listed subspecies in Alaska", "AK", "SUBSPECIES", "Sus scrofa scrofa", 2002, 2001,
     BOAR, PRESUMED_NATIVE, None),
    ("the District of Columbia is in the lower 48", "DC", "SPECIES", "Sus scrofa", 2001, 2001,
     BOAR, ESTABLISHED, "l48-boar"),
    ("the subspecies a species-rank list name resolved to", "DC", "SUBSPECIES",
     "Canis lupus familiaris", 5002, 5001, WOLF, ESTABLISHED, "l48-dog"),
    ("published under that species-rank synonym", "DC", "SPECIES", "Canis familiaris", 5009,
     5001, WOLF, ESTABLISHED, "l48-dog"),
    ("the species of that subspecies", "DC", "SPECIES", "Canis lupus", 5001, 5001, WOLF,
     PRESUMED_NATIVE, None),
    ("Puerto Rico: no RIIS region, no assessment", "PR", "SUBSPECIES", "Sus scrofa scrofa",
     2002, 2001, BOAR, None, None),
)  # fmt: skip
#: A record GBIF could not place in a species (no specieskey), at a rank the subset keeps.
UNPLACED = 90_000
FIRST = 10_000


# --- what the marks need from GBIF's match answer --------------------------------------------


@pytest.mark.parametrize(
    ("name", "rank", "species_key", "usage_key"),
    [
        ("Mentha X piperita", "SPECIES", 200, 200),  # accepted: the usage is the accepted key
        ("Eichhornia crassipes", "SPECIES", 400, 401),  # a synonym keeps its own key
        ("Festuca rubra ssp. fallax", "SUBSPECIES", 300, 301),  # synonym below species
        ("Aira caryophyllea var. caryophyllea", "VARIETY", 99, 100),  # its species apart
    ],
)
def test_interpret_match_keeps_rank_species_key_and_usage_key(name, rank, species_key, usage_key):
    """What the marks need from GBIF's answer: the matched usage's rank, the accepted
    species (speciesKey) and the name's own key (usageKey: a synonym's, not the accepted)."""
    match = interpret_match(GBIF_TABLE[name], NameQuery(name, "", "Plantae"))
    assert (match.rank, match.species_key, match.usage_key) == (rank, species_key, usage_key)


def test_interpret_match_unresolved_keeps_no_keys():
    """A name GBIF could not place has no species and no usage to mark records by."""
    higher = interpret_match(GBIF_TABLE["Banana bunchy top virus"])
    assert (higher.key, higher.species_key, higher.usage_key) == (None, None, None)
    assert higher.rank == "KINGDOM"  # kept for the curators' report


# --- the records through the workflow's SQL ---------------------------------------------------


def _record(gbifid: int, case: tuple[Any, ...]) -> dict[str, Any]:
    _, state, rank, name, taxonkey, specieskey, species, *_ = case
    lon, lat = CENTRE[state]
    return {
        "gbifid": str(gbifid),
        "countrycode": "US",
        "occurrencestatus": "PRESENT",
        "basisofrecord": "HUMAN_OBSERVATION",
        "decimallongitude": lon,
        "decimallatitude": lat,
        "taxonrank": rank,
        "scientificname": name,
        "taxonkey": taxonkey,
        "specieskey": specieskey,
        "species": species,
        "kingdom": "Animalia",
    }


def _records() -> list[dict[str, Any]]:
    records = [_record(FIRST + i, case) for i, case in enumerate(CASES)]
    unplaced = _record(UNPLACED, CASES[0]) | {"specieskey": None, "species": None}
    return [*records, unplaced]


def _shapefile(tmp: Path, name: str, columns: str, rows: list[str]) -> dict[str, bytes]:
    """A shapefile (EPSG:4269) of box polygons: its parts by suffix."""
    con = duckdb.connect()
    load_spatial(con)
    con.execute(f"CREATE TABLE t AS SELECT * FROM (VALUES {', '.join(rows)}) AS t({columns})")
    path = tmp / f"{name}.shp"
    con.execute(
        f"COPY t TO '{path.as_posix()}' (FORMAT GDAL, DRIVER 'ESRI Shapefile', SRS 'EPSG:4269')"
    )
    con.close()
    return {part.suffix: part.read_bytes() for part in sorted(tmp.glob(f"{name}.*"))}


def _put_inputs(s3: Any, tmp: Path, layout: MonthLayout) -> None:
    parquet = io.BytesIO()
    pq.write_table(records_table(_records(), layout.snapshot), parquet)
    s3.put_object(Bucket=GBIF_BUCKET, Key=f"{layout.gbif_prefix}000000", Body=parquet.getvalue())
    counties = _shapefile(
        tmp,
        "counties",
        "STATEFP, COUNTYFP, COUNTYNS, AFFGEOID, GEOID, NAME, NAMELSAD, STUSPS, STATE_NAME, "
        "LSAD, ALAND, AWATER, geom",
        [
            f"('{g[:2]}', '{g[2:]}', '0{g}', '0500000US{g}', '{g}', '{lsad}', '{lsad}', '{st}', "
            f"'{state}', '06', 1000, 10, ST_MakeEnvelope({w}, {s}, {e}, {n}))"
            for g, lsad, st, state, (w, s, e, n) in COUNTIES
        ],
    )
    # One AIANNH area, far from every record: the step needs the layer, not a hit.
    areas = _shapefile(
        tmp,
        "aiannh",
        "AIANNHCE, AIANNHNS, AFFGEOID, GEOID, NAME, NAMELSAD, LSAD, ALAND, AWATER, geom",
        ["('0001', '00000001', '2500000US0001', '0001', 'Far', 'Far Area', 'R', 1, 0, "
         "ST_MakeEnvelope(-120.0, 30.0, -119.9, 30.1))"],
    )  # fmt: skip
    for key, parts in ((COUNTY_SHAPEFILE_KEY, counties), (AIANNH_SHAPEFILE_KEY, areas)):
        for suffix, body in parts.items():
            s3.put_object(Bucket=BISON_BUCKET, Key=key.removesuffix(".shp") + suffix, Body=body)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=ANNOTATED_COLUMNS, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows({**dict.fromkeys(ANNOTATED_COLUMNS, ""), **row} for row in RIIS_ROWS)
    s3.put_object(Bucket=BISON_BUCKET, Key=layout.riis_annotated_key, Body=text.getvalue())


def _rows(rsd: Any, sql: str) -> list[tuple[Any, ...]]:
    statement = run_batches(rsd, [[sql]], WORKGROUP)
    records = rsd.get_statement_result(Id=statement)["Records"]
    return [tuple(None if f.get("isNull") else next(iter(f.values())) for f in r) for r in records]


def _unloaded(s3: Any, prefix: str) -> pa.Table:
    listing = s3.list_objects_v2(Bucket=BISON_BUCKET, Prefix=prefix)["Contents"]
    parts = [o["Key"] for o in listing if o["Key"].endswith(".parquet")]
    return pa.concat_tables(
        pq.read_table(io.BytesIO(s3.get_object(Bucket=BISON_BUCKET, Key=k)["Body"].read()))
        for k in parts
    )


class Month:
    """One month's run: the marks of every record and the published tables."""

    def __init__(self, rsd: Any, s3: Any, layout: MonthLayout) -> None:
        self.layout, self.s3 = layout, s3
        target = SqlTarget(gbif_bucket=GBIF_BUCKET, bison_bucket=BISON_BUCKET)
        run_batches(rsd, statement_batches("subset", layout, target), WORKGROUP)
        run_batches(rsd, statement_batches("aggregate", layout, target), WORKGROUP)
        self.subset_ids = {
            r[0] for r in _rows(rsd, f"SELECT gbifid FROM {layout.subset_table}")
        }  # fmt: skip
        marks = _rows(
            rsd,
            "SELECT gbifid, state, riis_region, riis_assessment, riis_occurrence_id "
            f"FROM {layout.marks_table}",
        )
        self.marks = {r[0]: r[1:] for r in marks}

    def table(self, kind: str, dim: str) -> pa.Table:
        prefix = getattr(self.layout, f"{kind}_prefix")(dim)
        return _unloaded(self.s3, prefix)


@pytest.fixture(scope="module", params=MONTHS)
def month(
    request: pytest.FixtureRequest, runtime: LocalRuntime, tmp_path_factory: pytest.TempPathFactory
) -> Month:
    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=runtime.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    s3 = client("s3")
    for bucket in (GBIF_BUCKET, BISON_BUCKET):
        s3.create_bucket(Bucket=bucket)
    layout = MonthLayout.for_month(request.param)
    _put_inputs(s3, tmp_path_factory.mktemp("taxonomy"), layout)
    return Month(client("redshift-data"), s3, layout)


@pytest.mark.parametrize(("n", "case"), list(enumerate(CASES)), ids=[c[0] for c in CASES])
def test_each_record_gets_the_listing_its_gbif_keys_lead_to(month: Month, n: int, case) -> None:
    state, assessment, entry = case[1], case[-2], case[-1]
    region = {"AK": "AK", "PR": None}.get(state, "L48")
    assert month.marks[str(FIRST + n)] == (state, region, assessment, entry)


def test_a_record_gbif_placed_in_no_species_is_left_out_of_the_subset(month: Month) -> None:
    """A guard: real records at the subset's ranks carry a specieskey; one without would be
    a species of nothing in the lists and the PAM."""
    assert str(UNPLACED) not in month.subset_ids
    assert len(month.subset_ids) == len(CASES)


def _county(month: Month, geoid: str, kind: str) -> list[dict[str, Any]]:
    table = month.table(kind, "county")
    return table.filter(pc.equal(table["geoid"], geoid)).to_pylist()


def test_a_species_is_listed_once_per_assessment_and_counted_once(month: Month) -> None:
    """Adams County: the boar under two tiers (its listed subspecies invasive, the rest
    established), the bee under two (a listed subspecies, the rest presumed native), the
    cheatgrass under one; three species in all."""
    rows = {
        (r[SPECIES_KEY], r["species"], r["riis_assessment"]): r["occ_count"]
        for r in _county(month, "08001", "species_counts")
    }
    assert rows == {
        ("2001", BOAR, ESTABLISHED): 4,
        ("2001", BOAR, INVASIVE): 2,
        ("3003", CHEATGRASS, WIDESPREAD_INVASIVE): 3,
        ("4001", BEE, INVASIVE): 1,
        ("4001", BEE, PRESUMED_NATIVE): 2,
    }
    [site] = _county(month, "08001", "region_counts")
    counts = {c: site[c] for c in REGION_COUNT_COLUMNS}
    per_tier = {
        ESTABLISHED: (4, 1),
        INVASIVE: (3, 2),
        WIDESPREAD_INVASIVE: (3, 1),
        PRESUMED_NATIVE: (2, 1),
    }
    assert counts == {"occ_count": 12, "species_count": 3} | {
        assessment_column(a, m): n
        for a, pair in per_tier.items()
        for m, n in zip(("occ_count", "species_count"), pair, strict=True)
    }


def test_the_pam_counts_accepted_species_so_a_subspecies_is_no_extra_species(
    month: Month,
) -> None:
    table = month.table("species_counts", "county")
    heatmap = build_heatmap(table["geoid"], table[SPECIES_KEY], table["occ_count"])
    adams = heatmap.sites.to_pylist().index("08001")
    row = heatmap.matrix.getrow(adams)
    counts = dict(
        zip(heatmap.taxa.take(pa.array(row.indices)).to_pylist(), row.data.tolist(), strict=True)
    )
    assert counts == {"2001": 6, "3003": 3, "4001": 3}


def test_a_territory_county_is_counted_without_a_region(month: Month) -> None:
    """San Juan, PR: its record is in the county and state tables, with no RIIS region and
    no assessment (US-RIIS assesses Alaska, Hawaii and the conterminous states only)."""
    [row] = _county(month, "72127", "species_counts")
    assert (row["state"], row["riis_region"], row["riis_assessment"]) == ("PR", None, None)
    states = month.table("species_counts", "state")
    puerto_rico = states.filter(pc.equal(states["state"], "PR")).to_pylist()
    assert [(r["riis_region"], r[SPECIES_KEY], r["occ_count"]) for r in puerto_rico] == [
        (None, "2001", 1)
    ]
