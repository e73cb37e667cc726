"""The calc_stats task end to end against moto's in-process S3 (`moto.mock_aws`).

Small parquet parts laid out as Redshift UNLOAD leaves them (several parts, differing integer
widths, `_SUCCESS` and `manifest` beside them) go in; every output file, its content and the
order of the writes (the done marker strictly last) are checked.

mock_aws is started without resetting moto's backends and stopped without removing data:
the backends are process-global and the session's local runtime (tests/conftest.py) lives in
them, so a reset would wipe its deployment. Each test uses its own bucket and removes it.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import tempfile
import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws
from test_pam import ROWS, SITES, T1, T2, T3, T_RARE, TAXA

from bisonflow import aws
from bisonflow.config import DEFAULT_MIN_PRESENCE_COUNT
from bisonflow.dimensions import ASSESSMENTS, REGION_COUNT_COLUMNS
from bisonflow.duckdb_ext import load_spatial
from bisonflow.layout import COUNTY_SHAPEFILE_KEY, DIMENSIONS
from bisonflow.steps.taskspec import (
    CalcStatsInputs,
    CalcStatsOutputs,
    CalcStatsSettings,
    CalcStatsSpec,
)
from tasks import calc_stats

SUMMARY = "summary/2024_02_01/"
DONE_KEY = f"{SUMMARY}_SUCCESS"
STATE_ROWS = [("AL", T1, 3), ("AL", T2, 1), ("HI", T1, 2), ("HI", T3, 5), ("AK", T2, 1)]
AIANNH_ROWS = [("0010", T1, 4), ("0010", T2, 1), ("2430", T1, 1)]
STATE_COUNTS = [
    # state, occ, species, then occ/species of: established, invasive, widespread invasive,
    # presumed native
    ("AL", 4, 2, 1, 1, 0, 0, 0, 0, 3, 1),
    ("HI", 7, 2, 2, 1, 0, 0, 5, 1, 0, 0),
    ("AK", 1, 1, 0, 0, 0, 0, 0, 0, 1, 1),
]
DIMENSION_FILES = ("pam", "heatmap", "stats_sites", "stats_species", "stats_diversity")
FIGURES = ("figure_richness_state.png", "figure_riis_share_state.png", "figure_heatmap_county.png")
MAPS = ("map_richness_county.png", "map_riis_share_county.png", "map_richness_state.png")
#: County counts: 01001 has 1 established and 1 invasive of 4 species, 15001 1 of 2 widespread.
COUNTY_COUNTS = [
    ("01001", 9, 4, 2, 1, 3, 1, 0, 0, 4, 2),
    ("01003", 2, 1, 0, 0, 0, 0, 0, 0, 2, 1),
    ("02010", 2, 1, 0, 0, 0, 0, 0, 0, 2, 1),
    ("15001", 3, 2, 0, 0, 0, 0, 1, 1, 2, 1),
]
#: The month's provenance and changes (bisonflow.steps.month_record; tested in test_provenance.py,
#: test_changes.py): the citation, new this month. No CSV copy of a table: the aggregate step
#: UNLOADs those (bisonflow.sql.workflow_sql), and a second writer would replace its file.
MONTH_RECORD_FILES = {"citation.txt", "new_this_month_county.csv", "changes_county.csv"} | {
    "figure_new_this_month_county.png"
}
CITATION_KEY = "occurrence/2024-02-01/citation.txt"
CITATION = b"GBIF.org (1 February 2024) GBIF Occurrence Data https://doi.org/10.15468/dl.test\n"


class RecordingS3:
    """Delegates to a real client and records the order of put_object keys; can be told to
    fail the put of one key, as a network error would."""

    def __init__(self, real, fail_key: str | None = None) -> None:
        self._real, self._fail_key = real, fail_key
        self.puts: list[str] = []

    def put_object(self, **kwargs):
        if kwargs["Key"] == self._fail_key:
            raise OSError(f"simulated failure writing {kwargs['Key']}")
        self.puts.append(kwargs["Key"])
        return self._real.put_object(**kwargs)

    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch):
    """A fresh bucket in moto's in-process S3, reached through bisonflow.aws as a task does."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    mock = mock_aws()
    mock.start(reset=False)
    aws.reset_clients()
    client = aws.client("s3")
    bucket = f"calc-stats-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    try:
        yield client
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=obj["Key"])
        client.delete_bucket(Bucket=bucket)
        aws.reset_clients()
        mock.stop(remove_data=False)


def parquet(columns: dict, types: dict | None = None) -> bytes:
    types = {"occ_count": pa.int64()} | (types or {})  # specieskey: text, as UNLOADed
    table = pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def species_counts(site_columns: tuple[str, ...], rows) -> dict:
    """A `<dim>_species_counts` part: label columns, then the species-count columns."""
    sites, taxa, counts = zip(*rows, strict=True) if rows else ((), (), ())
    part = {column: [f"{column} of {s}" for s in sites] for column in site_columns}
    part[site_columns[0]] = list(sites)
    return part | {
        "specieskey": list(taxa),
        "species": [f"Species {t}" for t in taxa],
        "riis_assessment": [ASSESSMENTS[i % len(ASSESSMENTS)] for i in range(len(rows))],
        "occ_count": list(counts),
    }


def state_counts_part(rows, site_column: str = "state") -> bytes:
    columns = (site_column, *REGION_COUNT_COLUMNS)
    data = dict(zip(columns, map(list, zip(*rows, strict=True)), strict=True))
    return parquet(data, {c: pa.int64() for c in REGION_COUNT_COLUMNS} | {"occ_count": pa.int32()})


@functools.cache
def county_shapefile() -> dict[str, bytes]:
    """The maps' county shapefile: a square per SITES county, and 01005 without records."""
    counties = {"01001": "AL", "01003": "AL", "01005": "AL", "02010": "AK", "15001": "HI"}
    corners = {"AL": (-88.0, 31.0), "AK": (-150.0, 61.0), "HI": (-156.0, 19.5)}
    with tempfile.TemporaryDirectory() as tmp:
        shp = Path(tmp) / "cb_us_county.shp"
        con = duckdb.connect()
        load_spatial(con)
        rows = [
            (geoid, state, corners[state][0] + i, corners[state][1])
            for i, (geoid, state) in enumerate(counties.items())
        ]
        con.execute("CREATE TABLE county (GEOID VARCHAR, STUSPS VARCHAR, x DOUBLE, y DOUBLE)")
        con.executemany("INSERT INTO county VALUES (?, ?, ?, ?)", rows)
        con.execute(
            f"COPY (SELECT GEOID, STUSPS, ST_MakeEnvelope(x, y, x + 0.9, y + 0.9) AS geom "
            f"FROM county) TO '{shp}' (FORMAT GDAL, DRIVER 'ESRI Shapefile', SRS 'EPSG:4269')"
        )
        con.close()
        return {
            COUNTY_SHAPEFILE_KEY.removesuffix(".shp") + suffix: shp.with_suffix(suffix).read_bytes()
            for suffix in (".shp", ".shx", ".dbf", ".prj")
        }


def prefix(name: str) -> str:
    return f"{SUMMARY}{name}/"


def upload(s3, aiannh_rows=AIANNH_ROWS, objects: dict | None = None) -> None:
    """County counts in two parts (int16 counts in the second) plus the
    files UNLOAD leaves around; state and AIANNH in one part each; the state counts table."""
    county = ("geoid", "state", "county", "riis_region")
    half = len(ROWS) // 2
    puts = (
        {
            f"{prefix('county_species_counts')}0000_part_00.parquet": parquet(
                species_counts(county, ROWS[:half])
            ),
            f"{prefix('county_species_counts')}0001_part_00.parquet": parquet(
                species_counts(county, ROWS[half:]),
                {"occ_count": pa.int16()},
            ),
            f"{prefix('county_species_counts')}_SUCCESS": b"",
            f"{prefix('county_species_counts')}manifest": json.dumps(
                {
                    "entries": [
                        {"url": f"s3://{s3.bucket}/{prefix('county_species_counts')}{part}"}
                        for part in ("0000_part_00.parquet", "0001_part_00.parquet")
                    ]
                }
            ).encode(),
            f"{prefix('state_species_counts')}0000_part_00.parquet": parquet(
                species_counts(("state", "riis_region"), STATE_ROWS)
            ),
            f"{prefix('aiannh_species_counts')}0000_part_00.parquet": parquet(
                species_counts(("aiannh_geoid", "aiannh_name"), aiannh_rows)
            ),
            f"{prefix('state_counts')}0000_part_00.parquet": state_counts_part(STATE_COUNTS[:2]),
            f"{prefix('state_counts')}0001_part_00.parquet": state_counts_part(STATE_COUNTS[2:]),
            f"{prefix('county_counts')}0000_part_00.parquet": state_counts_part(
                COUNTY_COUNTS, "geoid"
            ),
            CITATION_KEY: CITATION,  # GBIF's, in this bucket for the test (test_provenance)
        }
        | county_shapefile()
        | (objects or {})
    )
    for key, body in puts.items():
        s3.put_object(Bucket=s3.bucket, Key=key, Body=body)


def spec(s3, **settings) -> CalcStatsSpec:
    """The task's spec; the threshold is 1 unless given, so the hand-computed values count
    every occurrence (the default, BISON's 3, has its own test)."""
    return CalcStatsSpec(
        month="2024-02",
        bucket=s3.bucket,
        execution="test-execution",
        token_parameter="/bison/test/token",
        inputs=CalcStatsInputs(
            species_counts={dim: prefix(f"{dim}_species_counts") for dim in DIMENSIONS},
            state_counts=prefix("state_counts"),
            county_counts=prefix("county_counts"),
            gbif_citation=f"s3://{s3.bucket}/{CITATION_KEY}",
        ),
        outputs=CalcStatsOutputs(summary=SUMMARY, record=DONE_KEY),
        settings=CalcStatsSettings(**({"min_presence_count": 1} | settings)),
    )


def read_csv(s3, name: str) -> list[dict[str, str]]:
    text = s3.get_object(Bucket=s3.bucket, Key=f"{SUMMARY}{name}")["Body"].read().decode()
    return list(csv.DictReader(io.StringIO(text)))


def read_parquet(s3, name: str) -> pa.Table:
    body = s3.get_object(Bucket=s3.bucket, Key=f"{SUMMARY}{name}")["Body"].read()
    return pq.read_table(io.BytesIO(body))


def summary_keys(s3) -> set[str]:
    listed = s3.list_objects_v2(Bucket=s3.bucket, Prefix=SUMMARY).get("Contents", [])
    return {o["Key"].removeprefix(SUMMARY) for o in listed if "/" not in o["Key"][len(SUMMARY) :]}


def expected_files() -> set[str]:
    return (
        {
            f"{name}_{dim}.{'parquet' if name in ('pam', 'heatmap') else 'csv'}"
            for dim in ("county", "state", "aiannh")
            for name in DIMENSION_FILES
        }
        | set(FIGURES)
        | set(MAPS)
        | MONTH_RECORD_FILES
    )


def test_task_writes_every_file_then_the_marker_last(s3, monkeypatch):
    upload(s3)
    recorder = RecordingS3(s3)
    monkeypatch.setattr(calc_stats, "client", lambda service: recorder)
    result = calc_stats.run(spec(s3, min_presence_count=2))

    assert result == {
        "summary_prefix": SUMMARY,
        "done": DONE_KEY,
        "files": 25,
        "min_presence_count": 2,
        "sites": {"county": 4, "state": 2, "aiannh": 1},
        "species": {"county": 5, "state": 2, "aiannh": 1},
        "presences": {"county": 11, "state": 3, "aiannh": 1},
        "empty_dimensions": [],
        "provenance": {
            "gbif_snapshot": f"s3://{s3.bucket}/occurrence/2024-02-01/",
            "citation_source": f"s3://{s3.bucket}/{CITATION_KEY}",
            "citation": f"{SUMMARY}citation.txt",
            "doi": "10.15468/dl.test",
        },
        "changes": {
            "previous_month": None,
            "reason": "no earlier month: no month before 2024-02 was published (no summary/"
            f"<YYYY_MM_DD>/_SUCCESS before {DONE_KEY} in s3://{s3.bucket})",
        },
    }
    assert len(json.dumps(result)) < 2048
    assert recorder.puts[-1] == DONE_KEY
    assert {k.removeprefix(SUMMARY) for k in recorder.puts[:-1]} == expected_files()
    assert summary_keys(s3) == expected_files() | {"_SUCCESS"}

    marker = json.loads(s3.get_object(Bucket=s3.bucket, Key=DONE_KEY)["Body"].read())
    assert marker["month"] == "2024-02"
    assert marker["min_presence_count"] == 2
    assert marker["files"] == sorted(f"{SUMMARY}{name}" for name in expected_files())
    assert marker["dimensions"]["county"] == {
        "sites": 4,
        "species": 5,
        "presences": 11,
        "null_rows": 0,
    }
    assert marker["empty_dimensions"] == {}


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_statistics_files_hold_the_hand_computed_values(s3):
    upload(s3)
    calc_stats.run(spec(s3, min_presence_count=2))

    sites = read_csv(s3, "stats_sites_county.csv")
    assert list(sites[0]) == [
        "site",
        "alpha",
        "alpha_proportional",
        "phi",
        "phi_average_proportional",
    ]
    assert [(r["site"], r["alpha"], r["phi"]) for r in sites] == [
        ("01001", "2", "6"),
        ("01003", "3", "8"),
        ("02010", "2", "5"),
        ("15001", "4", "8"),
    ]
    assert [float(r["phi_average_proportional"]) for r in sites] == [0.75, 2 / 3, 0.625, 0.5]
    species = read_csv(s3, "stats_species_county.csv")
    assert list(species[0]) == [
        "specieskey",
        "omega",
        "omega_proportional",
        "psi",
        "psi_average_proportional",
    ]
    # taxon keys as published: text, in key order (T4 = "904" first)
    assert [(r["specieskey"], int(r["omega"]), int(r["psi"])) for r in species] == list(
        zip(TAXA, [2, 3, 3, 1, 2], [6, 7, 9, 4, 7], strict=True)
    )
    (diversity,) = read_csv(s3, "stats_diversity_county.csv")
    assert diversity == {
        "num_sites": "4",
        "num_species": "5",
        "whittaker": repr(5 / 2.75),
        "lande": "2.25",
        "legendre": "4.25",
    }

    pam = read_parquet(s3, "pam_county.parquet")
    assert pam.schema == pa.schema([("site", pa.string()), ("specieskey", pa.string())])
    assert set(pam["site"].to_pylist()) == set(SITES)
    assert pam.num_rows == 11
    heatmap = read_parquet(s3, "heatmap_county.parquet")
    assert heatmap.schema.names == ["site", "specieskey", "occ_count"]
    assert heatmap.schema.field("specieskey").type == pa.string()
    assert set(heatmap["specieskey"].to_pylist()) == {*TAXA, T_RARE}
    assert heatmap.num_rows == 15  # count-1 cells stay in the heatmap, not the PAM
    assert sum(heatmap["occ_count"].to_pylist()) == sum(c for _, _, c in ROWS)
    assert set(read_parquet(s3, "pam_state.parquet")["site"].to_pylist()) == {"AL", "HI"}


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_the_default_threshold_is_bisons_three(s3):
    upload(s3)
    given = spec(s3)
    result = calc_stats.run(dataclasses.replace(given, settings=CalcStatsSettings()))
    assert result["min_presence_count"] == DEFAULT_MIN_PRESENCE_COUNT == 3
    # count >= 3: county 01001 T1, 01003 T1 T2, 02010 T2, 15001 T3 T4 T5; AL T1, HI T3; 0010 T1
    assert result["sites"] == {"county": 4, "state": 2, "aiannh": 1}
    assert result["presences"]["county"] == 7
    assert len(read_parquet(s3, "pam_county.parquet")) == 7


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_empty_dimension_is_written_with_headers_only_and_named(s3):
    """No record in any AIANNH area: Redshift's UNLOAD leaves only a manifest listing no part."""
    upload(s3, objects={f"{prefix('aiannh_species_counts')}manifest": b'{"entries": []}'})
    s3.delete_object(Bucket=s3.bucket, Key=f"{prefix('aiannh_species_counts')}0000_part_00.parquet")
    result = calc_stats.run(spec(s3))

    assert result["empty_dimensions"] == ["aiannh"]
    assert result["sites"]["aiannh"] == 0 and result["sites"]["county"] == 5
    marker = json.loads(s3.get_object(Bucket=s3.bucket, Key=DONE_KEY)["Body"].read())
    assert marker["empty_dimensions"] == {
        "aiannh": f"no rows with a aiannh_geoid in s3://{s3.bucket}/{prefix('aiannh_species_counts')}"
    }
    for name in ("stats_sites", "stats_species", "stats_diversity"):
        text = s3.get_object(Bucket=s3.bucket, Key=f"{SUMMARY}{name}_aiannh.csv")["Body"].read()
        assert text.decode().count("\n") == 1  # the header line only
    assert read_csv(s3, "stats_sites_aiannh.csv") == []
    pam = read_parquet(s3, "pam_aiannh.parquet")
    assert pam.num_rows == 0 and pam.schema.names == ["site", "specieskey"]


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_rows_without_a_site_are_left_out_and_counted(s3):
    upload(s3, aiannh_rows=[*AIANNH_ROWS, (None, T3, 5)])
    result = calc_stats.run(spec(s3))
    assert result["species"]["aiannh"] == 2  # T3 only came with a null site
    marker = json.loads(s3.get_object(Bucket=s3.bucket, Key=DONE_KEY)["Body"].read())
    assert marker["dimensions"]["aiannh"]["null_rows"] == 1


def test_missing_input_prefix_names_it_and_writes_nothing(s3):
    upload(s3)
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket)["Contents"]]:
        if key.startswith(prefix("state_species_counts")):
            s3.delete_object(Bucket=s3.bucket, Key=key)
    with pytest.raises(
        FileNotFoundError, match=f"s3://{s3.bucket}/{prefix('state_species_counts')}"
    ):
        calc_stats.run(spec(s3))
    assert not summary_keys(s3) & expected_files()
    assert "_SUCCESS" not in summary_keys(s3)


def test_part_listed_in_the_manifest_but_missing_is_an_error(s3):
    upload(s3)
    s3.delete_object(Bucket=s3.bucket, Key=f"{prefix('county_species_counts')}0001_part_00.parquet")
    with pytest.raises(FileNotFoundError, match="listed in the manifest are missing.*0001_part_00"):
        calc_stats.run(spec(s3))
    assert "_SUCCESS" not in summary_keys(s3)


def test_malformed_manifest_is_named(s3):
    upload(s3, objects={f"{prefix('state_species_counts')}manifest": b'{"parts": []}'})
    with pytest.raises(ValueError, match="state_species_counts/manifest is not an UNLOAD manifest"):
        calc_stats.run(spec(s3))


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_failed_write_leaves_no_marker(s3, monkeypatch):
    upload(s3)
    recorder = RecordingS3(s3, fail_key=f"{SUMMARY}stats_species_state.csv")
    monkeypatch.setattr(calc_stats, "client", lambda service: recorder)
    with pytest.raises(OSError, match="stats_species_state.csv"):
        calc_stats.run(spec(s3))
    assert DONE_KEY not in recorder.puts
    assert "_SUCCESS" not in summary_keys(s3)


@pytest.mark.usefixtures("without_images")  # drawn in the first test
def test_parts_outside_the_manifest_are_left_out(s3):
    upload(s3)
    stale = f"{prefix('county_species_counts')}0002_part_00.parquet"
    s3.put_object(Bucket=s3.bucket, Key=stale, Body=parquet(species_counts(("geoid",), ROWS)))
    result = calc_stats.run(spec(s3, min_presence_count=2))
    assert result["presences"]["county"] == 11  # not doubled by the stale part


def test_bad_inputs_are_named(s3):
    upload(s3)
    # without a manifest every part under the prefix is read, so the bad ones below are too
    s3.delete_object(Bucket=s3.bucket, Key=f"{prefix('county_species_counts')}manifest")
    with pytest.raises(ValueError, match=r"min_presence_count = 0 is invalid: .*minimum of 1"):
        calc_stats.run(spec(s3, min_presence_count=0))
    with pytest.raises(ValueError, match="no dimension has a presence.*min_presence_count 1000"):
        calc_stats.run(spec(s3, min_presence_count=1000))

    part = species_counts(("geoid",), ROWS)
    part["geoid"] = [int(g) for g in part["geoid"]]
    bad_key = f"{prefix('county_species_counts')}0002_part_00.parquet"
    s3.put_object(Bucket=s3.bucket, Key=bad_key, Body=parquet(part, {"geoid": pa.int64()}))
    with pytest.raises(ValueError, match="0002_part_00.parquet: column geoid must be a string"):
        calc_stats.run(spec(s3))

    integer_keys = species_counts(("geoid",), [("01001", int(T1), 2)])
    s3.put_object(
        Bucket=s3.bucket, Key=bad_key, Body=parquet(integer_keys, {"specieskey": pa.int64()})
    )
    with pytest.raises(ValueError, match="00.parquet: column specieskey must be a string"):
        calc_stats.run(spec(s3))

    s3.put_object(Bucket=s3.bucket, Key=bad_key, Body=b"not parquet")
    with pytest.raises(ValueError, match="0002_part_00.parquet is not a parquet file"):
        calc_stats.run(spec(s3))

    s3.put_object(Bucket=s3.bucket, Key=bad_key, Body=parquet({"geoid": ["01001"]}))
    with pytest.raises(ValueError, match=r"0002_part_00.parquet lacks column\(s\) \['specieskey'"):
        calc_stats.run(spec(s3))

    negative = species_counts(("geoid",), [("01001", T1, -2)])
    s3.put_object(Bucket=s3.bucket, Key=bad_key, Body=parquet(negative))
    with pytest.raises(ValueError, match="1 rows have a negative occ_count"):
        calc_stats.run(spec(s3))
    assert not summary_keys(s3) & expected_files()


def test_spec_without_an_input_is_named(s3):
    given = spec(s3)
    counts = {d: p for d, p in given.inputs.species_counts.items() if d != "aiannh"}
    with pytest.raises(ValueError, match=r"species_counts is missing required field 'aiannh'"):
        calc_stats.run(
            dataclasses.replace(
                given, inputs=dataclasses.replace(given.inputs, species_counts=counts)
            )
        )
