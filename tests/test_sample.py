"""The sample generator: determinism, GBIF schema, subset facts, taxon keys, RIIS, match table.

Every fact the other steps' tests rely on (`expected`) is re-derived here independently with
DuckDB, the way the workflow itself would compute it, so a wrong fact cannot hide. The
geography's facts (counties, regions, AIANNH areas, ranges) are tests/test_sample_places.py's,
on the same sample.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bisonflow.dimensions import PRESUMED_NATIVE
from bisonflow.duckdb_ext import load_spatial
from bisonflow.riis.columns import RIIS_COLUMNS, RIIS_REGIONS
from bisonflow.sample import SampleManifest, generate_sample, snapshot_schema
from bisonflow.sample.__main__ import main as sample_main
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES, GBIF_BASIS_OF_RECORD, sql_in_list

RECORDS = 20_000
SEED = 7
#: GBIF's own country codes for Puerto Rico and the island territories.
TERRITORIES = ("PR", "VI", "GU", "AS", "MP")
DEGREES = (
    "established (category C3)",
    "invasive (category D2)",
    "widespread invasive (category E)",
)
#: The default subset (BISON's lists), as the subset SQL writes it.
VALID_WHERE = DEFAULT_SUBSET_RULES.where_sql()
KEPT_BASIS = sql_in_list(DEFAULT_SUBSET_RULES.basis_of_record)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleManifest:
    messages: list[str] = []
    manifest = generate_sample(
        tmp_path_factory.mktemp("a"), records=RECORDS, seed=SEED, progress=messages.append
    )
    assert any(m.startswith(f"writing {RECORDS:,} GBIF records") for m in messages)
    return manifest


@pytest.fixture(scope="module")
def con(sample: SampleManifest) -> duckdb.DuckDBPyConnection:
    """occ = all records, valid = the BISON subset, county = the shapefile, riis = the CSV."""
    c = duckdb.connect()
    load_spatial(c)
    parts = (sample.snapshot_dir / "*").as_posix()
    c.execute(f"CREATE VIEW occ AS SELECT * FROM read_parquet('{parts}')")
    c.execute(f"CREATE VIEW valid AS SELECT * FROM occ WHERE {VALID_WHERE}")
    c.execute(f"CREATE TABLE county AS SELECT * FROM ST_Read('{sample.county_shapefile}')")
    c.execute(f"CREATE TABLE aiannh AS SELECT * FROM ST_Read('{sample.aiannh_shapefile}')")
    c.execute(
        f"CREATE TABLE riis AS SELECT * FROM read_csv('{sample.riis_csv}', header=true, "
        "all_varchar=true)"
    )
    yield c
    c.close()


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "sample_manifest.json"  # holds absolute paths
    }


def test_same_seed_gives_same_bytes(sample: SampleManifest, tmp_path: Path) -> None:
    again = generate_sample(tmp_path, records=RECORDS, seed=SEED)
    assert _files(again.root) == _files(sample.root)
    assert again.expected == sample.expected


def test_other_seed_gives_other_data(sample: SampleManifest, tmp_path: Path) -> None:
    other = generate_sample(tmp_path, records=RECORDS, seed=SEED + 1)
    first = pq.read_table(sample.snapshot_dir / "000000", columns=["decimallatitude"])
    second = pq.read_table(other.snapshot_dir / "000000", columns=["decimallatitude"])
    assert not first.equals(second)


def test_rerun_replaces_stale_parts(tmp_path: Path) -> None:
    generate_sample(tmp_path, records=120_000, seed=1)
    small = generate_sample(tmp_path, records=1_000, seed=1)
    assert sorted(p.name for p in small.snapshot_dir.iterdir()) == small.expected["part_files"]


def test_large_samples_are_generated_in_chunks_with_unique_ids(tmp_path: Path) -> None:
    manifest = generate_sample(tmp_path, records=5_000, seed=3, chunk_records=2_000)
    parts = sorted(p.name for p in manifest.snapshot_dir.iterdir())
    assert parts == manifest.expected["part_files"] == ["000000", "000001", "000002"]
    con = duckdb.connect()
    occ = f"read_parquet('{(manifest.snapshot_dir / '*').as_posix()}')"
    n, ids, valid, keys = con.execute(
        f"SELECT count(*), count(DISTINCT gbifid), count(*) FILTER ({VALID_WHERE}), "
        f"count(DISTINCT taxonkey) FILTER ({VALID_WHERE}) FROM {occ}"
    ).fetchone()
    assert n == ids == 5_000
    assert valid == manifest.expected["us_valid_records"]
    assert keys == manifest.expected["valid_distinct_taxonkeys"]
    assert sum(manifest.expected["valid_by_state"].values()) == valid
    assert sum(manifest.expected["valid_by_assessment"].values()) == valid


def test_layout_mirrors_bucket_keys(sample: SampleManifest) -> None:
    root = sample.root
    assert sample.snapshot_dir == root / "gbif/occurrence/2026-11-01/occurrence.parquet"
    assert sample.riis_csv == root / "bison/input/riis/USRIISv2_MasterList.csv"
    assert sample.county_shapefile == root / "bison/input/boundaries/cb_us_county.shp"
    for suffix in (".shx", ".dbf", ".prj"):
        assert sample.county_shapefile.with_suffix(suffix).is_file()
    assert (sample.snapshot_dir.parent / "citation.txt").is_file()


def test_parts_are_named_like_gbif_and_use_its_schema(sample: SampleManifest) -> None:
    parts = sorted(sample.snapshot_dir.iterdir())
    assert len(parts) >= 2
    assert all(re.fullmatch(r"\d{6}", p.name) for p in parts)
    assert [p.name for p in parts] == sample.expected["part_files"]
    schema = snapshot_schema(dt.date.fromisoformat(sample.expected["snapshot"]))
    for part in parts:
        assert pq.read_schema(part).equals(schema, check_metadata=False)
    assert sum(pq.read_metadata(p).num_rows for p in parts) == sample.records == RECORDS
    assert len(schema) == 50


def test_duckdb_reads_the_gbif_types(con: duckdb.DuckDBPyConnection) -> None:
    types = {name: typ for name, typ, *_ in con.execute("DESCRIBE occ").fetchall()}
    assert types["gbifid"] == "VARCHAR"
    assert types["taxonkey"] == types["specieskey"] == "VARCHAR"  # the 2026-11 snapshot
    assert types["decimallatitude"] == "DOUBLE"
    assert types["eventdate"] == types["lastinterpreted"] == "TIMESTAMP"
    assert types["issue"] == types["recordedby"] == "VARCHAR[]"
    unique = con.execute("SELECT count(DISTINCT gbifid) = count(*) FROM occ").fetchone()
    assert unique == (True,)


@pytest.mark.parametrize(
    ("kind", "where"),
    [
        ("non_us_country", "countrycode <> 'US'"),
        ("null_coordinates", "decimallatitude IS NULL AND decimallongitude IS NULL"),
        ("higher_rank", "taxonrank IN ('GENUS', 'FAMILY')"),
        ("absent", "occurrencestatus = 'ABSENT'"),
        ("excluded_basis_of_record", f"basisofrecord NOT IN ({KEPT_BASIS})"),
    ],
)
def test_each_drop_kind_is_present(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection, kind: str, where: str
) -> None:
    (count,) = con.execute(f"SELECT count(*) FROM occ WHERE {where}").fetchone()
    assert count == sample.expected["dropped"][kind] > 0


def test_expected_valid_count_matches_the_subset_rules(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    (valid,) = con.execute("SELECT count(*) FROM valid").fetchone()
    assert valid == sample.expected["us_valid_records"]
    dropped = sum(sample.expected["dropped"].values())
    assert valid + dropped == RECORDS
    assert 0.12 <= dropped / RECORDS <= 0.19
    ranks = {r for (r,) in con.execute("SELECT DISTINCT taxonrank FROM valid").fetchall()}
    assert {"SPECIES", "SUBSPECIES", "VARIETY", "INFRASUBSPECIFIC_NAME"} <= ranks
    by_state = dict(con.execute("SELECT stateprovince, count(*) FROM valid GROUP BY 1").fetchall())
    assert len(by_state) == len(sample.expected["valid_by_state"]) == 51  # 50 states and DC


def test_records_of_every_basis_the_subset_drops_are_generated_and_dropped(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """MATERIAL_SAMPLE, MACHINE_OBSERVATION and MATERIAL_CITATION were kept before BISON's
    own lists became the default; the sample still makes them, and the subset drops them."""
    counts = dict(con.execute("SELECT basisofrecord, count(*) FROM occ GROUP BY 1").fetchall())
    dropped = set(GBIF_BASIS_OF_RECORD) - set(DEFAULT_SUBSET_RULES.basis_of_record)
    assert {"MATERIAL_SAMPLE", "MACHINE_OBSERVATION", "MATERIAL_CITATION"} <= set(counts)
    assert set(counts) <= set(GBIF_BASIS_OF_RECORD)
    assert set(DEFAULT_SUBSET_RULES.basis_of_record) <= set(counts)
    kept = {b for (b,) in con.execute("SELECT DISTINCT basisofrecord FROM valid").fetchall()}
    assert kept == set(DEFAULT_SUBSET_RULES.basis_of_record)
    assert not kept & dropped


def test_records_name_their_taxon_as_gbif_publishes_it(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    """taxonkey and scientificname are the usage the record was published under, species
    and specieskey the accepted species: a synonym-named record carries the synonym's own
    key and name, a subspecies record its own key and rank (GBIF's occurrence terms)."""
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    rows = con.execute(
        """
        SELECT DISTINCT taxonrank, taxonkey, specieskey, species, infraspecificepithet,
               scientificname, verbatimscientificname
        FROM valid
        """
    ).fetchall()
    accepted = synonym_named = below = 0
    for rank, taxonkey, specieskey, species, epithet, scientific, verbatim in rows:
        assert specieskey == str(table[species]["usageKey"]), species
        if rank != "SPECIES":
            below += 1
            assert taxonkey == str(table[f"{species} {epithet}"]["usageKey"]) != specieskey
        elif taxonkey == specieskey:
            accepted += 1
            assert scientific.startswith(species)
        else:
            synonym_named += 1
            assert not scientific.startswith(species + " ") and verbatim != species
            if verbatim in table:  # a synonym the US-RIIS lists: the match says the same
                body = table[verbatim]
                assert body["synonym"] and taxonkey == str(body["usageKey"])
                assert specieskey == str(body["speciesKey"])
                assert scientific == body["scientificName"]
    assert accepted and synonym_named and below
    bullfrog = con.execute(
        "SELECT DISTINCT taxonkey, specieskey, species, scientificname FROM valid "
        "WHERE verbatimscientificname = 'Rana catesbeiana'"
    ).fetchall()
    body = table["Rana catesbeiana"]
    assert bullfrog == [
        (
            str(body["usageKey"]),
            str(body["acceptedUsageKey"]),
            "Lithobates catesbeianus",
            "Rana catesbeiana Shaw, 1802",
        )
    ]
    higher = con.execute(
        "SELECT count(*) FROM occ WHERE taxonrank IN ('GENUS', 'FAMILY') AND specieskey IS NULL"
    ).fetchone()
    assert higher[0] == sample.expected["dropped"]["higher_rank"]
    (species_count,) = con.execute("SELECT count(DISTINCT specieskey) FROM valid").fetchone()
    assert species_count == sample.expected["valid_distinct_species"]
    assert species_count < sample.expected["valid_distinct_taxonkeys"]


def test_riis_csv_header_and_vocabularies(sample: SampleManifest) -> None:
    with sample.riis_csv.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = [dict(zip(header, row, strict=True)) for row in reader]
    assert tuple(header) == RIIS_COLUMNS
    assert 300 <= len(rows) <= 600 and len(rows) == sample.expected["riis_rows"]
    assert {r["locality"] for r in rows} == set(RIIS_REGIONS)
    assert {r["degreeOfEstablishment"] for r in rows} == set(DEGREES)
    assert {r["establishmentMeans"] for r in rows} == {"introduced"}
    assert all(r["kingdom"] for r in rows)
    ids = [r["occurrenceID"] for r in rows]
    assert len(set(ids)) == len(ids)
    for row in rows:
        assert re.fullmatch(rf"USRIIS-{row['locality']}{row['kingdom']}\d+", row["occurrenceID"])
    names = [r["scientificName"] for r in rows]
    assert any(" X " in n for n in names)
    assert any(" ssp. " in n for n in names) and any(" var. " in n for n in names)
    assert any(r["scientificNameAuthorship"] for r in rows)
    degrees_by_name: dict[str, set[str]] = {}
    for row in rows:
        degrees_by_name.setdefault(row["scientificName"], set()).add(row["degreeOfEstablishment"])
    assert any(len(d) > 1 for d in degrees_by_name.values())


def test_riis_csv_is_read_cleanly_by_the_workflow(sample: SampleManifest) -> None:
    from bisonflow.riis.master_list import decode, parse_riis

    parsed = parse_riis(decode(sample.riis_csv.read_bytes()))
    assert not parsed.malformed and not parsed.unknown_columns and not parsed.missing_columns
    assert len(parsed.records) == sample.expected["riis_rows"]


def test_match_table_covers_riis_and_occurrence_names(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    riis_names = {n for (n,) in con.execute("SELECT DISTINCT scientificName FROM riis").fetchall()}
    assert riis_names <= table.keys()
    species = {n for (n,) in con.execute("SELECT DISTINCT species FROM valid").fetchall()}
    assert species <= table.keys()
    accepted = {b["usageKey"] for b in table.values() if b.get("status") == "ACCEPTED"}
    synonyms = [b for n, b in table.items() if n in riis_names and b.get("synonym")]
    assert len(synonyms) >= 5
    for body in synonyms:
        assert body["status"] == "SYNONYM" and body["acceptedUsageKey"] in accepted
        # The accepted taxon's species: the accepted taxon itself, or a subspecies' species.
        assert body["speciesKey"] == table[body["species"]]["usageKey"]
    assert any(b["acceptedUsageKey"] != b["speciesKey"] for b in synonyms)  # Festuca fallax
    none = [n for n in riis_names if table[n]["matchType"] == "NONE"]
    assert len(none) >= 3
    assert all(table[n] == {"confidence": 100, "matchType": "NONE", "synonym": False} for n in none)
    assert {table[n]["matchType"] for n in riis_names} == {"EXACT", "FUZZY", "NONE"}
    assert {table[n].get("status") for n in riis_names} >= {"ACCEPTED", "SYNONYM", "DOUBTFUL"}
    for body in table.values():
        if body["matchType"] != "NONE":
            for field in ("usageKey", "scientificName", "canonicalName", "rank", "kingdom"):
                assert body[field]
            for field in ("kingdomKey", "phylumKey", "classKey", "orderKey", "familyKey"):
                assert isinstance(body[field], int)


def test_workflow_resolves_riis_names_as_expected(sample: SampleManifest) -> None:
    from bisonflow.gbif.species_api import interpret_match

    table = json.loads(sample.species_match_json.read_text("utf-8"))
    for name, key in sample.expected["riis_resolved"].items():
        assert interpret_match(table[name]).key == key, name


def test_expected_assessments_follow_the_record_side_rule(
    sample: SampleManifest, con: duckdb.DuckDBPyConnection
) -> None:
    """The rule, in SQL of its own: county -> riis_region (territories none); a listing
    matched at rank SPECIES (of that species) marks records by specieskey, one below species
    by taxonkey (its accepted key or the key of the name as written); the most severe tier
    wins. Every
    way of matching has records: a species listing meets records of its subspecies and
    records published under a synonym, a subspecies listing its own, a synonym listing
    the accepted species' records, and a listed synonym of a subspecies (Festuca fallax)
    the records published under it, by its own key."""
    table = json.loads(sample.species_match_json.read_text("utf-8"))
    resolved = [
        (n, str(k), str(table[n]["usageKey"]), table[n]["rank"], str(table[n]["speciesKey"]))
        for n, k in sample.expected["riis_resolved"].items()
        if k is not None
    ]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE resolved "
        "(name VARCHAR, accepted VARCHAR, usage VARCHAR, rank VARCHAR, species VARCHAR)"
    )
    con.executemany("INSERT INTO resolved VALUES (?, ?, ?, ?, ?)", resolved)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE hits AS
        WITH placed AS (
            SELECT v.gbifid, v.taxonkey, v.specieskey, v.taxonrank,
                   CASE WHEN c.STUSPS IN ('AK', 'HI') THEN c.STUSPS
                        WHEN c.STUSPS IN {TERRITORIES} THEN NULL ELSE 'L48' END AS region
            FROM valid v JOIN county c
              ON ST_Contains(c.geom, ST_Point(v.decimallongitude, v.decimallatitude))
        )
        SELECT p.gbifid, p.taxonrank, p.taxonkey <> p.specieskey AS other_key, l.rank,
               l.usage <> l.accepted AS synonym_listed, p.taxonkey = l.usage AS own_key,
               l.rank = 'SPECIES' AND l.species = l.accepted AS species_listing,
               list_position({list(DEGREES)}, l.degreeOfEstablishment) AS severity
        FROM placed p LEFT JOIN (riis r JOIN resolved k ON r.scientificName = k.name) AS l
          ON l.locality = p.region
         AND CASE WHEN l.rank = 'SPECIES' AND l.species = l.accepted
                  THEN p.specieskey = l.accepted
                  ELSE p.taxonkey IN (l.accepted, l.usage) END
        """
    )
    counts = dict(
        con.execute(
            f"""
            SELECT tier, count(*) FROM (
                SELECT coalesce({list(DEGREES)}[max(severity)], '{PRESUMED_NATIVE}') AS tier
                FROM hits GROUP BY gbifid
            ) GROUP BY tier
            """
        ).fetchall()
    )
    assert counts == sample.expected["assessment_counts"]
    assert all(counts.get(d, 0) > 0 for d in DEGREES)
    ways = dict(
        con.execute(
            """
            SELECT CASE WHEN NOT species_listing AND synonym_listed AND own_key
                            THEN 'listed synonym of a subspecies, by its own key'
                        WHEN NOT species_listing THEN 'infraspecific listing'
                        WHEN synonym_listed THEN 'synonym listing'
                        WHEN taxonrank <> 'SPECIES' THEN 'infraspecific record'
                        WHEN other_key THEN 'synonym-named record'
                        ELSE 'species record' END, count(*)
            FROM hits WHERE severity IS NOT NULL GROUP BY 1
            """
        ).fetchall()
    )
    assert len(ways) == 6 and min(ways.values()) > 0, ways
    share = sample.expected["valid_riis_taxon_records"] / sample.expected["us_valid_records"]
    assert 0.15 <= share <= 0.25


def test_extension_loading_is_offline_and_idempotent() -> None:
    c = duckdb.connect()
    load_spatial(c)
    load_spatial(c)
    assert c.execute("SELECT ST_AsText(ST_Point(1, 2))").fetchone() == ("POINT (1 2)",)
    loaded = {
        n
        for (n,) in c.execute(
            "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
        ).fetchall()
    }
    assert "spatial" in loaded


def test_command_line_writes_the_months_schema_and_refuses_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert sample_main([str(tmp_path), "--records", "300", "--month", "2025-07"]) == 0
    parts = sorted((tmp_path / "gbif/occurrence/2025-07-01/occurrence.parquet").iterdir())
    assert parts and pq.read_schema(parts[0]).field("taxonkey").type == pa.int32()
    for argv, message in (
        (["--month", "2025-13"], "month '2025-13' has month number 13"),
        (["--records", "0"], "--records must be at least 1, got 0"),
    ):
        with pytest.raises(SystemExit) as exited:
            sample_main([str(tmp_path), *argv])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
