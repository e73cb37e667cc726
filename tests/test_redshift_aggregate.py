"""The workflow's own subset and aggregate SQL on the Data API stand-in, over tiny fixtures.

The fixtures (a GBIF snapshot of a few dozen rows, a 2-state/3-county shapefile and an
annotated RIIS list) are built here, so the expected counts can be worked out by hand.
Every statement goes to a real `ThreadedMotoServer` over HTTP with boto3, as the workflow's do.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from redshift_data_api import (  # noqa: F401 (rsd_fixture, s3_fixture: the `rsd`, `s3` fixtures)
    BISON_BUCKET,
    GBIF_BUCKET,
    REGION,
    WHERE,
    rows,
    rsd_fixture,
    run,
    s3_fixture,
)

from bisonflow.dimensions import REGION_COUNT_COLUMNS, SPECIES_COUNT_COLUMNS, dimension
from bisonflow.duckdb_ext import load_spatial
from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, DIMENSIONS, MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.riis.columns import ANNOTATED_COLUMNS
from bisonflow.sample.generate import AIANNH_SOURCE
from bisonflow.sql.workflow_sql import SqlTarget, statement_batches
from bisonflow.steps.statements import run_batches, summary


@pytest.fixture(scope="module")
def endpoint(runtime: LocalRuntime) -> str:
    """The session's emulator: the stand-in is installed there, as in every local run."""
    return runtime.endpoint_url


LAYOUT = MonthLayout.for_month("2024-03")

#: (geoid, name, namelsad, stusps, state_name, (west, south, east, north)); 08001 and 08005 share
#: the line lon = -104.
COUNTIES = (
    ("02020", "Anchorage", "Anchorage Municipality", "AK", "Alaska", (-150.5, 60.8, -149.0, 61.5)),
    ("08001", "Adams", "Adams County", "CO", "Colorado", (-105.0, 39.5, -104.0, 40.5)),
    ("08005", "Arapahoe", "Arapahoe County", "CO", "Colorado", (-104.0, 39.5, -103.0, 40.5)),
)
ANCHORAGE, ADAMS, ARAPAHOE = (-149.9, 61.2), (-104.5, 40.0), (-103.5, 40.0)
BORDER = (-104.0, 40.0)  # on the Adams/Arapahoe line: the lower GEOID (Adams) gets it
#: In the real Eklutna ANVSA (AIANNH 6450), inside the Anchorage box.
EKLUTNA = (-149.35, 61.47)
#: In no county of the fixture, but inside the real Kiowa-Comanche-Apache-Fort Sill Apache
#: OTSA (AIANNH 5720) in Oklahoma: an AIANNH site whose record has no region or assessment.
NOWHERE = (-100.0, 35.0)

CAT = (1001, "Felis catus")
STARLING = (2002, "Sturnus vulgaris")
CHEATGRASS = (3003, "Bromus tectorum")
BEAR = (4004, "Ursus americanus")
CAT_SSP = (1005, "Felis catus")  # a subspecies record: own taxonkey, same species


def _occurrence(
    n: int,
    taxon: tuple[int, str],
    where: tuple[float, float] | None,
    *,
    rank: str = "SPECIES",
    country: str | None = "US",
    status: str | None = "PRESENT",
    basis: str = "HUMAN_OBSERVATION",
    lat_missing: bool = False,
    lon_missing: bool = False,
) -> dict[str, Any]:
    lon, lat = where or (None, None)
    return {
        "gbifid": str(4_000_000_000 + n),
        "datasetkey": "50c9509d-22c7-4a22-a47d-8c48425ef4a7",
        "occurrenceid": f"occ-{n}",
        "kingdom": "Animalia",
        "class": "Mammalia",
        "order": "Carnivora",
        "family": "Felidae",
        "species": taxon[1],
        "taxonrank": rank,
        "scientificname": f"{taxon[1]} L.",
        "countrycode": country,
        "stateprovince": "Somewhere",
        "occurrencestatus": status,
        "publishingorgkey": "28eb1a3f-1c15-4a95-931a-4af90ecb574d",
        "decimallatitude": None if lat_missing else lat,
        "decimallongitude": None if lon_missing else lon,
        "eventdate": dt.datetime(2023, 6, 1, 12, 0),
        "day": 1,
        "month": 6,
        "year": 2023,
        "taxonkey": taxon[0],
        "specieskey": taxon[0] if taxon != CAT_SSP else CAT[0],
        "basisofrecord": basis,
        "issue": ["COORDINATE_ROUNDED"],
        "elevation": 100.0,  # a column the subset does not copy
    }


def _occurrences() -> list[dict[str, Any]]:
    kept = (
        [(CAT, ANCHORAGE)] * 2
        + [(BEAR, ANCHORAGE), (STARLING, ANCHORAGE)]
        + [(CAT, ADAMS)] * 3
        + [(STARLING, ADAMS)] * 2
        + [(CHEATGRASS, ADAMS), (BEAR, ADAMS), (BEAR, BORDER)]
        + [(CAT, ARAPAHOE)]
        + [(CHEATGRASS, ARAPAHOE)] * 2
        + [(CAT, NOWHERE)]
        + [(CAT, EKLUTNA), (BEAR, EKLUTNA)]
    )
    records = [_occurrence(i, taxon, where) for i, (taxon, where) in enumerate(kept)]
    n = len(records)
    records.append(_occurrence(n + 1, CAT_SSP, ADAMS, rank="SUBSPECIES", basis="OCCURRENCE"))
    dropped = [
        {"country": "CA"},
        {"country": None},
        {"status": "ABSENT"},
        {"status": None},
        {"rank": "GENUS"},
        {"rank": "FAMILY"},
        {"basis": "FOSSIL_SPECIMEN"},
        {"basis": "LIVING_SPECIMEN"},
        {"lat_missing": True},
        {"lon_missing": True},
    ]
    for i, kwargs in enumerate(dropped, start=n + 10):
        records.append(_occurrence(i, CAT, ADAMS, **kwargs))
    return records


def _put_snapshot(s3: Any) -> int:
    records = _occurrences()
    schema = pa.schema(
        [
            ("gbifid", pa.string()),
            ("datasetkey", pa.string()),
            ("occurrenceid", pa.string()),
            ("kingdom", pa.string()),
            ("class", pa.string()),
            ("order", pa.string()),
            ("family", pa.string()),
            ("species", pa.string()),
            ("taxonrank", pa.string()),
            ("scientificname", pa.string()),
            ("countrycode", pa.string()),
            ("stateprovince", pa.string()),
            ("occurrencestatus", pa.string()),
            ("publishingorgkey", pa.string()),
            ("decimallatitude", pa.float64()),
            ("decimallongitude", pa.float64()),
            ("eventdate", pa.timestamp("us")),
            ("day", pa.int32()),
            ("month", pa.int32()),
            ("year", pa.int32()),
            ("taxonkey", pa.int32()),
            ("specieskey", pa.int32()),
            ("basisofrecord", pa.string()),
            ("issue", pa.list_(pa.string())),
            ("elevation", pa.float64()),
        ]
    )
    half = len(records) // 2
    for part, chunk in enumerate((records[:half], records[half:])):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(chunk, schema=schema), buffer)
        s3.put_object(
            Bucket=GBIF_BUCKET, Key=f"{LAYOUT.gbif_prefix}{part:06d}", Body=buffer.getvalue()
        )
    s3.put_object(Bucket=GBIF_BUCKET, Key=f"{LAYOUT.gbif_prefix}_SUCCESS", Body=b"")
    return len(records)


def _put_counties(s3: Any, tmp: Path) -> None:
    con = duckdb.connect()
    load_spatial(con)
    values = ", ".join(
        f"('{g[:2]}', '{g[2:]}', '0{g}', '0500000US{g}', '{g}', '{name}', '{lsad}', '{st}', "
        f"'{state}', '06', 1000, 10, ST_MakeEnvelope({w}, {s}, {e}, {n}))"
        for g, name, lsad, st, state, (w, s, e, n) in COUNTIES
    )
    con.execute(
        "CREATE TABLE c AS SELECT * FROM (VALUES "
        + values
        + ") AS t(STATEFP, COUNTYFP, COUNTYNS, AFFGEOID, GEOID, NAME, NAMELSAD, STUSPS, "
        "STATE_NAME, LSAD, ALAND, AWATER, geom)"
    )
    shp = tmp / "counties.shp"
    con.execute(
        f"COPY c TO '{shp.as_posix()}' (FORMAT GDAL, DRIVER 'ESRI Shapefile', SRS 'EPSG:4269')"
    )
    con.close()
    stem = COUNTY_SHAPEFILE_KEY[: -len(".shp")]
    for part in sorted(tmp.glob("counties.*")):
        s3.put_object(Bucket=BISON_BUCKET, Key=stem + part.suffix, Body=part.read_bytes())


def _put_aiannh(s3: Any) -> None:
    """The real census AIANNH layer, as the sample ships it."""
    stem = AIANNH_SHAPEFILE_KEY[: -len(".shp")]
    for suffix in (".shp", ".shx", ".dbf", ".prj"):
        body = AIANNH_SOURCE.with_suffix(suffix).read_bytes()
        s3.put_object(Bucket=BISON_BUCKET, Key=stem + suffix, Body=body)


def _put_riis(s3: Any) -> None:
    def entry(**values: str) -> dict[str, str]:
        row = dict.fromkeys(ANNOTATED_COLUMNS, "")
        row.update(values)
        return row

    entries = [
        # A species listing (rank SPECIES) applies to its subspecies' records too.
        entry(locality="L48", scientificName="Felis catus", vernacularName="cat, domestic",
              degreeOfEstablishment="invasive (category D2)", GBIF_taxonKey="1001",
              gbif_res_taxonkey="1001", gbif_res_rank="SPECIES", gbif_res_specieskey="1001",
              occurrenceID="riis-cat-l48"),
        entry(locality="AK", scientificName="Felis catus",
              degreeOfEstablishment="established (category C3)", GBIF_taxonKey="1001",
              gbif_res_taxonkey="1001", occurrenceID="riis-cat-ak"),
        # Two entries for the same (region, taxon): the more severe tier wins (widespread
        # invasive over established, though its occurrenceID sorts last), records not doubled.
        entry(locality="L48", scientificName="Sturnus vulgaris",
              degreeOfEstablishment="established (category C3)", GBIF_taxonKey="2002",
              gbif_res_taxonkey="2002", occurrenceID="riis-starling-a"),
        entry(locality="L48", scientificName="Sturnus vulgaris vulgaris",
              degreeOfEstablishment="widespread invasive (category E)", GBIF_taxonKey="2002",
              gbif_res_taxonkey="2002", occurrenceID="riis-starling-b",
              taxonRemarks='listed as "subspecies"'),
        # A synonym on the list resolves to the accepted key the records carry.
        entry(locality="L48", scientificName="Anisantha tectorum",
              degreeOfEstablishment="established (category C3)", GBIF_taxonKey="7777",
              gbif_res_taxonkey="3003.0", occurrenceID="riis-cheatgrass"),
        # Hawaii's list does not apply in Colorado.
        entry(locality="HI", scientificName="Ursus americanus",
              degreeOfEstablishment="invasive (category D2)", GBIF_taxonKey="4004",
              gbif_res_taxonkey="4004", occurrenceID="riis-bear-hi"),
        # Unresolved names take part in nothing.
        entry(locality="L48", scientificName="Nomen dubium",
              degreeOfEstablishment="invasive (category D2)", occurrenceID="riis-unresolved"),
    ]  # fmt: skip
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=ANNOTATED_COLUMNS, quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(entries)
    s3.put_object(
        Bucket=BISON_BUCKET, Key=LAYOUT.riis_annotated_key, Body=text.getvalue().encode("utf-8")
    )


def _run_step(rsd: Any, step: str, target: SqlTarget) -> str:
    """Run every batch of the step in order; the id of the last statement."""
    return run_batches(rsd, statement_batches(step, LAYOUT, target), WHERE["WorkgroupName"])


def _read_unloaded(s3: Any, prefix: str) -> set[tuple[Any, ...]]:
    """The rows of an UNLOAD (one part and its manifest), as tuples in column order."""
    listing = s3.list_objects_v2(Bucket=BISON_BUCKET, Prefix=prefix)
    keys = sorted(o["Key"] for o in listing.get("Contents", []))
    part = f"{prefix}0000_part_00.parquet"
    assert keys == [part, f"{prefix}manifest"]
    manifest = json.loads(s3.get_object(Bucket=BISON_BUCKET, Key=keys[1])["Body"].read())
    assert [e["url"] for e in manifest["entries"]] == [f"s3://{BISON_BUCKET}/{part}"]
    table = pq.read_table(io.BytesIO(s3.get_object(Bucket=BISON_BUCKET, Key=part)["Body"].read()))
    assert manifest["entries"][0]["meta"]["record_count"] == table.num_rows
    dim = prefix.rstrip("/").rsplit("/", 1)[1]
    name, _, kind = dim.partition("_")
    tail = SPECIES_COUNT_COLUMNS if kind == "species_counts" else REGION_COUNT_COLUMNS
    assert tuple(table.column_names) == (*dimension(name).label_columns, *tail)
    for column in table.column_names:
        integer = column.endswith("_count")  # taxonkey is text (bisonflow.gbif.schema)
        assert pa.types.is_integer(table.schema.field(column).type) == integer, column
    rows = [tuple(r.values()) for r in table.to_pylist()]
    assert len(set(rows)) == len(rows)
    return set(rows)


EXPECTED_SPECIES = {
    "county": {
        ("02020", "AK", "Anchorage Municipality", "AK", "1001", "Felis catus", "established", 3),
        ("02020", "AK", "Anchorage Municipality", "AK", "4004", "Ursus americanus",
         "presumed_native", 2),
        ("02020", "AK", "Anchorage Municipality", "AK", "2002", "Sturnus vulgaris",
         "presumed_native", 1),
        ("08001", "CO", "Adams County", "L48", "1001", "Felis catus", "invasive", 4),
        ("08001", "CO", "Adams County", "L48", "2002", "Sturnus vulgaris",
         "widespread invasive", 2),
        ("08001", "CO", "Adams County", "L48", "3003", "Bromus tectorum", "established", 1),
        ("08001", "CO", "Adams County", "L48", "4004", "Ursus americanus", "presumed_native", 2),
        ("08005", "CO", "Arapahoe County", "L48", "1001", "Felis catus", "invasive", 1),
        ("08005", "CO", "Arapahoe County", "L48", "3003", "Bromus tectorum", "established", 2),
    },
    "state": {
        ("AK", "AK", "1001", "Felis catus", "established", 3),
        ("AK", "AK", "4004", "Ursus americanus", "presumed_native", 2),
        ("AK", "AK", "2002", "Sturnus vulgaris", "presumed_native", 1),
        ("CO", "L48", "1001", "Felis catus", "invasive", 5),
        ("CO", "L48", "2002", "Sturnus vulgaris", "widespread invasive", 2),
        ("CO", "L48", "3003", "Bromus tectorum", "established", 3),
        ("CO", "L48", "4004", "Ursus americanus", "presumed_native", 2),
    },
    "aiannh": {
        ("6450", "Eklutna ANVSA", "1001", "Felis catus", "established", 1),
        ("6450", "Eklutna ANVSA", "4004", "Ursus americanus", "presumed_native", 1),
        # Outside every county: no region, so no assessment, but still the area's species.
        ("5720", "Kiowa-Comanche-Apache-Fort Sill Apache OTSA", "1001", "Felis catus", None, 1),
    },
}  # fmt: skip
#: Site labels, then occurrences and species: all, established, invasive, widespread
#: invasive, presumed native.
EXPECTED_SITES = {
    "county": {
        ("02020", "AK", "Anchorage Municipality", "AK", 6, 3, 3, 1, 0, 0, 0, 0, 3, 2),
        ("08001", "CO", "Adams County", "L48", 9, 4, 1, 1, 4, 1, 2, 1, 2, 1),
        ("08005", "CO", "Arapahoe County", "L48", 3, 2, 2, 1, 1, 1, 0, 0, 0, 0),
    },
    "state": {
        ("AK", "AK", 6, 3, 3, 1, 0, 0, 0, 0, 3, 2),
        ("CO", "L48", 12, 4, 3, 1, 5, 1, 2, 1, 2, 1),
    },
    "aiannh": {
        ("6450", "Eklutna ANVSA", 2, 2, 1, 1, 0, 0, 0, 0, 1, 1),
        ("5720", "Kiowa-Comanche-Apache-Fort Sill Apache OTSA", 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
    },
}  # fmt: skip
EXPECTED_SUMMARY = {
    "occurrences_by_assessment": {
        "established": 6,
        "invasive": 5,
        "widespread invasive": 2,
        "presumed_native": 5,
        "unassigned": 1,
    },
    "occurrences_by_region": {"AK": 6, "L48": 12, "unassigned": 1},
    "sites": {"county": 3, "state": 2, "aiannh": 2},
}


def _assert_published(s3: Any) -> None:
    for dim in DIMENSIONS:
        for prefix, expected in (
            (LAYOUT.species_counts_prefix(dim), EXPECTED_SPECIES[dim]),
            (LAYOUT.region_counts_prefix(dim), EXPECTED_SITES[dim]),
        ):
            assert _read_unloaded(s3, prefix) == expected
            assert _read_csv_copy(s3, prefix) == expected


def _read_csv_copy(s3: Any, prefix: str) -> set[tuple[Any, ...]]:
    """The rows of a table's CSV copy (UNLOADed beside its folder), counts as integers and
    zero-length fields as None: Redshift writes a NULL so, and these tables hold no ''."""
    text = s3.get_object(Bucket=BISON_BUCKET, Key=LAYOUT.table_csv_key(prefix))["Body"].read()
    header, *lines = csv.reader(io.StringIO(text.decode("utf-8")))
    counts = [name.endswith("_count") for name in header]
    return {
        tuple(None if v == "" else int(v) if n else v for v, n in zip(r, counts, strict=True))
        for r in lines
    }


def test_subset_then_aggregate_produces_the_counts(
    rsd: Any, s3: Any, tmp_path: Path, endpoint: str
) -> None:
    total = _put_snapshot(s3)
    _put_counties(s3, tmp_path)
    _put_aiannh(s3)
    _put_riis(s3)
    target = SqlTarget(gbif_bucket=GBIF_BUCKET, bison_bucket=BISON_BUCKET, region=REGION)
    previous = LAYOUT.previous.subset_table
    run(rsd, f"CREATE TABLE {previous} (a INT)")

    _run_step(rsd, "subset", target)
    assert total == 29
    assert rows(rsd, f"SELECT count(*) FROM {LAYOUT.subset_table}") == [(19,)]
    gone = run(rsd, f"SELECT * FROM {previous}", expect="FAILED")
    assert previous in gone["Error"]
    unmounted = run(rsd, "SELECT * FROM gbif_spectrum.occurrence_2024_03_01", expect="FAILED")
    assert "occurrence_2024_03_01" in unmounted["Error"]

    last = _run_step(rsd, "aggregate", target)
    _assert_published(s3)
    assert summary(rsd, last) == EXPECTED_SUMMARY

    marked = rows(
        rsd,
        f"SELECT riis_occurrence_id, count(*) FROM {LAYOUT.marks_table} "
        "GROUP BY riis_occurrence_id ORDER BY riis_occurrence_id NULLS FIRST",
    )
    assert marked == [
        (None, 6),  # 5 presumed native + 1 outside every county
        ("riis-cat-ak", 3),
        ("riis-cat-l48", 5),  # 1 a subspecies record
        ("riis-cheatgrass", 3),
        ("riis-starling-b", 2),
    ]
    outside = rows(
        rsd,
        f"SELECT m.geoid, m.state, m.riis_region, m.riis_assessment, m.aiannh_geoid "
        f"FROM {LAYOUT.subset_table} AS s JOIN {LAYOUT.marks_table} AS m USING (gbifid) "
        "WHERE s.decimallongitude = -100",
    )
    assert outside == [(None, None, None, None, "5720")]
    assert rows(rsd, f"SELECT count(*) FROM {LAYOUT.subset_table}") == [(19,)], "subset kept"
    leftovers = rows(
        rsd,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_name LIKE '%2024_03_01%' ORDER BY table_name",
    )
    assert leftovers == [(LAYOUT.subset_table,), (LAYOUT.marks_table,)], "work tables dropped"

    # The step can be run again (a retried execution): same tables, same counts.
    _run_step(rsd, "aggregate", target)
    _assert_published(s3)
