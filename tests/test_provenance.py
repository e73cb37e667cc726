"""Which GBIF snapshot a month came from: its citation.txt where GBIF puts it, copied beside
the outputs by calc_stats and named in `_SUCCESS` and the step output; and the CSV copies of
the UNLOADed tables, which must hold exactly what the parquet holds.

calc_stats runs end to end against moto's in-process S3 with the inputs of test_calc_stats;
the CSV copies come from the aggregate step's UNLOADs, run by the Data API stand-in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from test_calc_stats import (
    county_shapefile,
    s3,  # noqa: F401 (the fixture: a bucket in moto's S3)
)
from test_redshift_unload_csv import stand_in_engine

from bisonflow.dimensions import PRESUMED_NATIVE, REGION_COUNT_COLUMNS, dimension
from bisonflow.layout import DIMENSIONS, MonthLayout
from bisonflow.local.deploy import upload_snapshot
from bisonflow.sample.citation import citation_text, sample_doi
from bisonflow.sql.workflow_sql import SqlTarget, species_table, statement_batches
from bisonflow.stats.changes import LISTED
from bisonflow.stats.provenance import CitationError, citation_uri
from bisonflow.steps import ec2_tasks
from bisonflow.steps.taskspec import (
    CalcStatsInputs,
    CalcStatsOutputs,
    CalcStatsSettings,
    CalcStatsSpec,
)
from tasks import calc_stats

LAYOUT = MonthLayout.for_month("2024-02")
DONE_KEY = LAYOUT.done_marker_key
TABLES = [f"{dim}_{table}" for dim in DIMENSIONS for table in ("species_counts", "counts")]
#: County species list rows: geoid, state, county, specieskey, species, assessment, occ_count.
COUNTY_ROWS = [
    ("01001", "AL", "Autauga County", "3001", "Species 3001", LISTED[0], 5),
    ("01001", "AL", "Autauga County", "2002", "Species 2002", PRESUMED_NATIVE, 1),
    ("01003", "AL", "Baldwin County", "3001", "Species 3001", LISTED[0], 2),
    ("15001", "HI", "Hawaii County", "5003", "Species 5003", LISTED[-1], 7),
]


def parquet(columns: dict[str, list]) -> bytes:
    """A part as UNLOAD writes it: text columns, int64 counts (names ending in _count)."""
    table = pa.table(
        {
            name: pa.array(values, pa.int64() if name.endswith("_count") else pa.string())
            for name, values in columns.items()
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def upload_month(s3, layout: MonthLayout, county_rows=COUNTY_ROWS) -> None:  # noqa: F811
    """The six UNLOADed tables of a month (one part each) from county species-list rows: the
    state list sums them per state, one AIANNH area holds the first row, and every per-site
    counts table has each site's occurrences (the per-assessment columns zero)."""
    columns = map(list, zip(*county_rows, strict=True))
    geoid, state, county, taxon, species, assessment, count = columns
    region = ["HI" if s == "HI" else "L48" for s in state]
    lists = {
        "county": {"geoid": geoid, "state": state, "county": county, "riis_region": region},
        "state": {"state": state, "riis_region": region},
        "aiannh": {"aiannh_geoid": geoid[:1], "aiannh_name": ["Area of " + county[0]]},
    }
    for dim, labels in lists.items():
        n = len(next(iter(labels.values())))
        rows = {"specieskey": taxon[:n], "species": species[:n], "riis_assessment": assessment[:n]}
        parts = {
            layout.species_counts_prefix(dim): labels | rows | {"occ_count": count[:n]},
            layout.region_counts_prefix(dim): _per_site(
                dimension(dim).label_columns, labels, count
            ),
        }
        for prefix, columns in parts.items():
            s3.put_object(
                Bucket=s3.bucket, Key=f"{prefix}0000_part_00.parquet", Body=parquet(columns)
            )
    for key, shapefile_part in county_shapefile().items():  # the maps' counties
        s3.put_object(Bucket=s3.bucket, Key=key, Body=shapefile_part)


def _per_site(label_columns, labels: dict[str, list], counts: list[int]) -> dict[str, list]:
    sites: dict[tuple, int] = {}
    for i, count in enumerate(counts[: len(labels[label_columns[0]])]):
        key = tuple(labels[c][i] for c in label_columns)
        sites[key] = sites.get(key, 0) + count
    columns = {c: [k[i] for k in sites] for i, c in enumerate(label_columns)}
    return columns | {
        c: list(sites.values()) if c == "occ_count" else [0] * len(sites)
        for c in REGION_COUNT_COLUMNS
    }


def spec(s3, layout: MonthLayout = LAYOUT, *, gbif_citation: str) -> CalcStatsSpec:  # noqa: F811
    """The month's tables in (the layout's own folder: a month without runs), its marker as
    the record, BISON's threshold, and the citation at `gbif_citation`."""
    inputs = CalcStatsInputs.for_layout(layout, s3.bucket)
    return CalcStatsSpec(
        month=layout.month,
        bucket=s3.bucket,
        execution="test-execution",
        token_parameter="/bison/test/token",
        inputs=dataclasses.replace(inputs, gbif_citation=gbif_citation),
        outputs=CalcStatsOutputs(summary=layout.summary_prefix, record=layout.done_marker_key),
        settings=CalcStatsSettings(),
    )


def upload(s3) -> None:  # noqa: F811
    upload_month(s3, LAYOUT)


def publish_citation(s3, body: bytes | None = None, layout: MonthLayout = LAYOUT) -> str:  # noqa: F811
    """The snapshot's citation.txt at GBIF's key (in the test's bucket, standing in for
    GBIF's); returns the URI the task spec names."""
    s3.put_object(
        Bucket=s3.bucket, Key=layout.gbif_citation_key, Body=body or citation_text(layout.snapshot)
    )
    return citation_uri(s3.bucket, layout)


def body(s3, key: str) -> bytes:  # noqa: F811
    return s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


@pytest.mark.usefixtures("without_images")  # drawn in test_calc_stats
def test_the_citation_is_copied_beside_the_outputs_and_named(s3):  # noqa: F811
    upload(s3)
    uri = publish_citation(s3)
    result = calc_stats.run(spec(s3, gbif_citation=uri))

    assert body(s3, LAYOUT.citation_copy_key) == citation_text(LAYOUT.snapshot)
    named = {
        "gbif_snapshot": f"s3://{s3.bucket}/occurrence/2024-02-01/",
        "citation_source": f"s3://{s3.bucket}/occurrence/2024-02-01/citation.txt",
        "citation": "summary/2024_02_01/citation.txt",
        "doi": "10.15468/dl.bisonflow-sample-202402",
    }
    marker = json.loads(body(s3, DONE_KEY))
    assert marker["provenance"] == named
    assert LAYOUT.citation_copy_key in marker["files"]
    assert result["provenance"] == named  # the step output: the execution's record and report
    assert len(json.dumps(result)) < 2048


@pytest.mark.usefixtures("without_images")  # drawn in test_calc_stats
def test_a_citation_without_a_doi_is_copied_and_says_so(s3):  # noqa: F811
    upload(s3)
    text = b"Please cite GBIF as described at https://www.gbif.org/citation-guidelines\n"
    calc_stats.run(spec(s3, gbif_citation=publish_citation(s3, text)))
    assert body(s3, LAYOUT.citation_copy_key) == text
    assert json.loads(body(s3, DONE_KEY))["provenance"]["doi"] is None


@pytest.mark.parametrize(
    ("citation", "message"),
    [
        (None, "cannot read the snapshot's citation s3://{bucket}/occurrence/2024-02-01/"),
        (b"  \n", "is empty: the snapshot says nothing about how to cite it"),
        (b"\xff\xfe GBIF", "is not UTF-8 text"),
    ],
)
def test_a_month_without_a_readable_citation_is_not_published(s3, citation, message):  # noqa: F811
    upload(s3)
    if citation is not None:
        publish_citation(s3, citation)
    with pytest.raises(CitationError, match=message.format(bucket=s3.bucket).replace(".", r"\.")):
        calc_stats.run(spec(s3, gbif_citation=citation_uri(s3.bucket, LAYOUT)))
    listed = s3.list_objects_v2(Bucket=s3.bucket, Prefix=LAYOUT.summary_prefix)["Contents"]
    assert not [o for o in listed if o["Key"].count("/") == 2]  # no output, no marker


def test_the_citation_of_another_month_is_refused(s3):  # noqa: F811
    upload(s3)
    other = citation_uri(s3.bucket, MonthLayout.for_month("2024-01"))
    with pytest.raises(CitationError, match="occurrence/2024-02-01/citation.txt, got"):
        calc_stats.run(spec(s3, gbif_citation=other))


def test_the_task_spec_names_the_months_citation(monkeypatch):
    monkeypatch.setenv("BISON_BUCKET", "bison-bucket")
    monkeypatch.setenv("GBIF_BUCKET", "gbif-open-data-us-east-1")
    run = MonthLayout.for_run(LAYOUT.month, "execution-1")
    task = ec2_tasks.task_spec("calc_stats", run, "execution-1")
    assert isinstance(task, CalcStatsSpec)
    # The run's folder, its record last: never the month's marker, which PublishMonth writes.
    assert task.outputs == CalcStatsOutputs(summary=run.summary_prefix, record=run.record_key)
    assert task.outputs.record != run.done_marker_key
    tables = [*task.inputs.species_counts.values(), task.inputs.state_counts]
    tables.append(task.inputs.county_counts)
    assert tables == [
        *(run.species_counts_prefix(dim) for dim in DIMENSIONS),
        run.region_counts_prefix("state"),
        run.region_counts_prefix("county"),
    ]
    assert all(prefix.startswith(run.summary_prefix) for prefix in tables)
    assert task.inputs.gbif_citation == (
        "s3://gbif-open-data-us-east-1/occurrence/2024-02-01/citation.txt"
    )


def test_the_sample_snapshot_has_its_citation_where_gbif_puts_it(s3, tmp_path):  # noqa: F811
    upload_snapshot(s3, s3.bucket, tmp_path, "2024-02")
    text = body(s3, "occurrence/2024-02-01/citation.txt").decode()
    doi = sample_doi(dt.date(2024, 2, 1))
    assert f"GBIF.org (1 February 2024) GBIF Occurrence Data https://doi.org/{doi}\n" in text


#: Rows the county species list adds for the CSV copies: a county whose name needs quoting
#: and a species without a name (NULL: a zero-length CSV field, as Redshift writes it).
AWKWARD_ROWS = [
    ("35013", "NM", 'Doña Ana County, "NM"', "L48", "6004", None, PRESUMED_NATIVE, 3),
]


def test_the_csv_copies_unloaded_beside_the_parquet_hold_what_it_holds(s3):  # noqa: F811
    """The aggregate step UNLOADs each table twice, as parquet and as CSV with a header
    (bisonflow.sql.workflow_sql): its UNLOAD batch, run by the Data API stand-in over species
    tables of COUNTY_ROWS, leaves at MonthLayout.table_csv_key a CSV with the parquet's
    columns and rows, in order."""
    layout = MonthLayout.for_run(LAYOUT.month, "test-execution")
    target = SqlTarget(gbif_bucket=s3.bucket, bison_bucket=s3.bucket)
    (unload,) = [
        batch
        for batch in statement_batches("aggregate", layout, target)
        if batch[0].startswith("UNLOAD")
    ]
    engine = stand_in_engine()
    try:
        _species_tables(engine, layout)
        for sql in unload:
            engine.run_sql(sql, in_transaction=True)
    finally:
        engine.stop()
    for table in TABLES:
        folder = f"{layout.summary_prefix}{table}/"
        listed = s3.list_objects_v2(Bucket=s3.bucket, Prefix=folder)["Contents"]
        parts = sorted(o["Key"] for o in listed if o["Key"].endswith(".parquet"))
        assert parts, folder
        parquet = [pq.read_table(io.BytesIO(body(s3, key))) for key in parts]
        expected = {  # a NULL is a zero-length field, which reads back as ""
            name: [
                "" if v is None else v
                for t in parquet
                for v in t[name].cast(pa.string()).to_pylist()
            ]
            for name in parquet[0].column_names
        }
        key = layout.table_csv_key(folder)
        assert key == f"{layout.summary_prefix}{table}_000.csv"
        text = body(s3, key)
        strings = pa_csv.ConvertOptions(
            column_types=dict.fromkeys(expected, pa.string()), strings_can_be_null=False
        )
        copied = pa_csv.read_csv(io.BytesIO(text), convert_options=strings)
        assert copied.column_names == list(expected)
        assert copied.to_pydict() == expected
        assert copied.num_rows == sum(t.num_rows for t in parquet) > 0
    county = body(s3, layout.table_csv_key(layout.species_counts_prefix("county")))
    assert '35013,NM,"Doña Ana County, ""NM""",L48,6004,,'.encode() in county


def _species_tables(engine, layout: MonthLayout) -> None:
    """The aggregate step's species work tables (redshift_sql.species_table), as its counting
    batch leaves them, from COUNTY_ROWS and AWKWARD_ROWS: a state row per county row, one
    AIANNH area holding the first row (the copies hold whatever the tables hold)."""
    rows = [(*r[:3], "HI" if r[1] == "HI" else "L48", *r[3:]) for r in COUNTY_ROWS]
    rows += AWKWARD_ROWS
    con = engine.database.connection()
    species = ("specieskey", "species", "riis_assessment")
    for dim in DIMENSIONS:
        labels = dimension(dim).label_columns
        columns = ", ".join(f"{c} VARCHAR" for c in (*labels, *species))
        table = species_table(layout, dim)
        con.execute(f"CREATE OR REPLACE TABLE {table} ({columns}, occ_count BIGINT)")
        picked = {
            "county": rows,
            "state": [(r[1], r[3], *r[4:]) for r in rows],
            "aiannh": [("0010", "Area of " + rows[0][2], *rows[0][4:])],
        }[dim]
        marks = ", ".join("?" for _ in picked[0])
        con.executemany(f"INSERT INTO {table} VALUES ({marks})", picked)
