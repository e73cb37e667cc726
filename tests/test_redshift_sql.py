"""The workflow's Redshift SQL: batch shape, Redshift rules, and where its values come from."""

from __future__ import annotations

import inspect
import math
import re

import pytest
import sqlglot
from sqlglot import exp

from bisonflow.dimensions import ASSESSMENTS, REGION_COUNT_COLUMNS, SPECIES_COUNT_COLUMNS, dimension
from bisonflow.gbif.schema import COLUMN_NAMES
from bisonflow.layout import AIANNH_SHAPEFILE_KEY, COUNTY_SHAPEFILE_KEY, DIMENSIONS, MonthLayout
from bisonflow.local.redshift import unload_rules as redshift_unload_rules
from bisonflow.local.redshift.parsed_sql import UnloadStmt
from bisonflow.local.redshift.sql_parse import parse_statement
from bisonflow.riis.columns import ANNOTATED_COLUMNS
from bisonflow.sql import boundaries as boundary_sql
from bisonflow.sql import subset_rules
from bisonflow.sql import workflow_sql as redshift_sql
from bisonflow.sql.workflow_sql import (
    SUMMARY_COLUMNS,
    SqlTarget,
    SqlTargetError,
    statement_batches,
)

LAYOUT = MonthLayout.for_month("2024-03")
TARGET = SqlTarget(gbif_bucket="gbif-open-data-us-east-1", bison_bucket="bison-bucket")
EXTERNAL_DDL = re.compile(r"^\s*(CREATE|DROP)\s+EXTERNAL\b", re.I)


def _all(step: str, target: SqlTarget = TARGET) -> list[str]:
    return [sql for batch in statement_batches(step, LAYOUT, target) for sql in batch]


def _is_external(sql: str, target: SqlTarget = TARGET) -> bool:
    """CREATE/DROP EXTERNAL ..., or DROP TABLE of a table in the external schema."""
    if EXTERNAL_DDL.match(sql):
        return True
    return bool(
        re.match(rf"^\s*DROP\s+TABLE\s+(IF\s+EXISTS\s+)?{target.external_schema}\.", sql, re.I)
    )


def _unload_query(sql: str) -> str:
    match = re.match(r"^\s*UNLOAD\s*\(\s*'((?:[^']|'')*)'\s*\)", sql, re.S)
    assert match, sql
    return match.group(1).replace("''", "'")


@pytest.mark.parametrize("step", redshift_sql.STEPS)
def test_batches_are_non_empty_lists_of_statements(step: str) -> None:
    batches = statement_batches(step, LAYOUT, TARGET)
    assert batches
    for batch in batches:
        assert isinstance(batch, list) and batch
        assert len(batch) <= 40  # BatchExecuteStatement's limit
        for sql in batch:
            assert isinstance(sql, str) and sql.strip()
            assert not sql.rstrip().endswith(";"), "the Data API takes one statement per string"


@pytest.mark.parametrize("step", redshift_sql.STEPS)
def test_no_external_ddl_inside_a_transaction(step: str) -> None:
    for batch in statement_batches(step, LAYOUT, TARGET):
        if len(batch) > 1:
            assert not any(_is_external(sql) for sql in batch), batch


def test_unknown_step_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown SQL step"):
        statement_batches("stats", LAYOUT, TARGET)


def test_subset_mounts_the_month_and_unmounts_it_last() -> None:
    batches = statement_batches("subset", LAYOUT, TARGET)
    ext = f"{TARGET.external_schema}.occurrence_2024_03_01"
    assert batches[0][0].startswith("CREATE EXTERNAL SCHEMA IF NOT EXISTS gbif_spectrum")
    assert batches[1] == [f"DROP TABLE IF EXISTS {ext}"]
    create = batches[2][0]
    assert create.startswith(f"CREATE EXTERNAL TABLE {ext} (")
    assert "STORED AS PARQUET" in create
    assert (
        "LOCATION 's3://gbif-open-data-us-east-1/occurrence/2024-03-01/occurrence.parquet/'"
        in create
    )
    assert batches[-1] == [f"DROP TABLE IF EXISTS {ext}"]
    subset = batches[3]
    assert subset[0] == "DROP TABLE IF EXISTS bison_2024_03_01"
    assert subset[1].startswith("CREATE TABLE bison_2024_03_01 AS")
    assert f"FROM {ext}" in subset[1]
    assert subset[2:] == [  # previous month's
        "DROP TABLE IF EXISTS bison_2024_02_01",
        "DROP TABLE IF EXISTS bison_2024_02_01_marks",
    ]


def test_external_table_declares_reserved_names_quoted() -> None:
    create = statement_batches("subset", LAYOUT, TARGET)[2][0]
    assert '"order" VARCHAR' in create
    assert '"class" VARCHAR' in create
    names = re.findall(r"^\s+\"?(\w+)\"? ", create.split("(", 1)[1], re.M)
    assert names == list(COLUMN_NAMES)


def test_external_columns_match_the_sample_generator_schema() -> None:
    schema = pytest.importorskip("bisonflow.sample.schema")
    assert list(COLUMN_NAMES) == schema.snapshot_schema(LAYOUT.snapshot).names


#: The columns the seed's subset keeps (lifemapper/bison be5204f, aws/redshift/
#: subset_to_bison.sql lines 106-111), typed out here rather than imported.
SEED_SUBSET_COLUMNS = [
    "gbifid",
    "datasetkey",
    "species",
    "taxonrank",
    "scientificname",
    "countrycode",
    "stateprovince",
    "occurrencestatus",
    "publishingorgkey",
    "day",
    "month",
    "year",
    "taxonkey",
    "specieskey",
    "basisofrecord",
    "decimallongitude",
    "decimallatitude",
]


def test_subset_copies_the_seed_columns_and_no_other() -> None:
    create = statement_batches("subset", LAYOUT, TARGET)[3][1]
    select = sqlglot.parse_one(create, read="redshift").find(exp.Select)
    assert select is not None
    assert [e.alias_or_name for e in select.expressions] == SEED_SUBSET_COLUMNS
    # what every later step reads of a subset record is among them
    for column in ("gbifid", "taxonkey", "specieskey", "species", "decimallongitude"):
        assert column in SEED_SUBSET_COLUMNS


def test_subset_filter_uses_subset_rules_vocabularies() -> None:
    create = statement_batches("subset", LAYOUT, TARGET)[3][1]
    where = create.split("WHERE", 1)[1]
    seed = subset_rules.DEFAULT_SUBSET_RULES
    assert f"taxonrank IN ({subset_rules.sql_in_list(seed.taxon_ranks)})" in where
    assert f"basisofrecord IN ({subset_rules.sql_in_list(seed.basis_of_record)})" in where
    assert f"countrycode = '{subset_rules.COUNTRY_CODE}'" in where
    assert f"occurrencestatus = '{subset_rules.OCCURRENCE_STATUS}'" in where
    assert "decimallatitude IS NOT NULL" in where and "decimallongitude IS NOT NULL" in where
    assert where.rstrip().endswith("AND specieskey IS NOT NULL")  # a species for the lists


def test_marks_meet_the_list_by_two_equality_joins() -> None:
    """A listed species meets records by their specieskey, a listing below species by their
    taxonkey: two lookups joined on (region, key) by equality alone, which Redshift runs as
    hash joins; an OR between the keys in one condition would be a nested loop."""
    mark = statement_batches("aggregate", LAYOUT, TARGET)[3][7]
    joins = re.findall(r"LEFT JOIN (\w+) AS (\w+)\s+ON ([^\n]+)", mark)
    lookups = {table: on for table, _, on in joins if table.endswith("_lookup")}
    assert lookups == {
        "species_lookup": "sp.locality = g.riis_region AND sp.listed_key = g.specieskey",
        "taxon_lookup": "tx.locality = g.riis_region AND tx.listed_key = g.taxonkey",
    }
    assert " OR " not in mark.upper()
    # Territories: only the conterminous states and DC take the lower 48's list.
    assert "WHEN pl.state IN ('AL', 'AZ', 'AR', 'CA', 'CO', " in mark and "'PR'" not in mark


def test_configured_subset_rules_reach_the_subset_sql() -> None:
    rules = subset_rules.SubsetRules(("SPECIES",), ("PRESERVED_SPECIMEN", "MATERIAL_SAMPLE"))
    create = statement_batches("subset", LAYOUT, TARGET, rules)[3][1]
    where = create.split("WHERE", 1)[1]
    assert "taxonrank IN ('SPECIES')\n" in where
    assert "basisofrecord IN ('PRESERVED_SPECIMEN', 'MATERIAL_SAMPLE')\n" in where


def test_vocabularies_are_not_retyped_in_the_sql_module() -> None:
    source = inspect.getsource(redshift_sql)
    terms = (
        subset_rules.GBIF_RANKS_SPECIES_AND_BELOW
        + subset_rules.GBIF_BASIS_OF_RECORD
        + (subset_rules.OCCURRENCE_STATUS,)
    )
    for term in terms:
        assert f"'{term}'" not in source and f'"{term}"' not in source, term


def test_aggregate_loads_riis_and_both_boundary_layers_in_transactions() -> None:
    riis, county, aiannh, mark, count, unload, cleanup, final = statement_batches(
        "aggregate", LAYOUT, TARGET
    )
    assert riis[0] == "DROP TABLE IF EXISTS riis_2024_03_01"
    columns = re.findall(r'^\s+"?(\w+)"? VARCHAR', riis[1], re.M)
    assert columns == [c.lower() for c in ANNOTATED_COLUMNS]
    copy_riis = riis[2]
    assert copy_riis.startswith("COPY riis_2024_03_01")
    assert f"s3://bison-bucket/{LAYOUT.riis_annotated_key}" in copy_riis
    assert "FORMAT AS CSV" in copy_riis and "IGNOREHEADER 1" in copy_riis
    assert "IAM_ROLE default" in copy_riis

    for batch, table, key in (
        (county, "county_2024_03_01", COUNTY_SHAPEFILE_KEY),
        (aiannh, "aiannh_2024_03_01", AIANNH_SHAPEFILE_KEY),
    ):
        first_column = batch[1].split("(", 1)[1].strip().split(",")[0]
        assert first_column == "shape GEOMETRY", "COPY ... SHAPEFILE loads the geometry first"
        assert f"s3://bison-bucket/{key}" in batch[2] and "FORMAT SHAPEFILE" in batch[2]
        assert batch[3:] == [f"DROP TABLE IF EXISTS {table}_cells", batch[4]]
        assert batch[4].startswith(f"CREATE TABLE {table}_cells AS")
    assert "aiannhce VARCHAR(4)" in aiannh[1] and "namelsad VARCHAR(100)" in aiannh[1]

    assert mark[6:8] == [
        "DROP TABLE IF EXISTS bison_2024_03_01_marks",
        mark[7],
    ] and mark[7].startswith("CREATE TABLE bison_2024_03_01_marks AS")
    assert not any("bison_2024_03_01 " in sql and "DROP" in sql for sql in mark), "subset kept"
    assert all(sql.startswith("DROP TABLE IF EXISTS") for sql in count[:3])
    assert all(sql.startswith("UNLOAD (") for sql in unload)
    assert cleanup == [
        f"DROP TABLE IF EXISTS {t}"
        for t in (
            "riis_2024_03_01",
            "county_2024_03_01",
            "county_2024_03_01_cells",
            "aiannh_2024_03_01",
            "aiannh_2024_03_01_cells",
            *(f"bison_2024_03_01_{d}_species" for d in DIMENSIONS),
        )
    ]
    query = sqlglot.parse_one(final[0], read="redshift")
    assert tuple(query.named_selects) == SUMMARY_COLUMNS


def test_points_and_boundaries_share_the_boundary_srid() -> None:
    batches = statement_batches("aggregate", LAYOUT, TARGET)
    cells, hits = batches[1][4], batches[3][4]
    assert "ST_SetSRID(ST_GeometryN(b.shape, CAST(n.i + 1 AS INTEGER)), 4269)" in cells
    assert "4269)" in cells.split("ST_MakeEnvelope")[1]
    assert "ST_Covers(ST_SetSRID(b.shape, 4269), ST_SetSRID(ST_Point(p.lon, p.lat), 4269))" in hits
    assert "'presumed_native'" in batches[3][7]
    assert "FROM bison_2024_03_01_marks" in batches[7][0]


def test_unloads_write_the_documented_columns_to_the_layout_prefixes() -> None:
    unload = statement_batches("aggregate", LAYOUT, TARGET)[5]
    expected = [
        (columns, prefix)
        for d in DIMENSIONS
        for columns, prefix in (
            (
                (*dimension(d).label_columns, *SPECIES_COUNT_COLUMNS),
                LAYOUT.species_counts_prefix(d),
            ),
            (
                (*dimension(d).label_columns, *REGION_COUNT_COLUMNS),
                LAYOUT.region_counts_prefix(d),
            ),
        )
    ]
    assert len(REGION_COUNT_COLUMNS) == 2 + 2 * len(ASSESSMENTS)
    parquet, csv = unload[0::2], unload[1::2]  # each table as parquet, then as CSV
    for sql, copy, (columns, prefix) in zip(parquet, csv, expected, strict=True):
        assert f"TO 's3://bison-bucket/{prefix}'" in sql
        assert "FORMAT AS PARQUET CLEANPATH MANIFEST" in sql
        query = sqlglot.parse_one(_unload_query(sql), read="redshift")
        assert isinstance(query, exp.Select)
        assert tuple(query.named_selects) == columns
        assert _unload_query(copy) == _unload_query(sql), "the CSV copies the same rows"
        assert f"TO 's3://bison-bucket/{LAYOUT.table_csv_prefix(prefix)}'" in copy


def test_csv_copies_are_unloaded_as_bison_does_to_the_key_the_layout_names() -> None:
    """BISON's "CSV exports for delivery" (lifemapper/bison be5204f,
    bison_s6_aggregate_region.py): `CSV DELIMITER AS ',' HEADER PARALLEL OFF`; here also
    EXTENSION 'csv' (the file `<prefix>000.csv`) and ALLOWOVERWRITE (a re-run replaces it),
    options the stand-in's Redshift rules accept together."""
    run = MonthLayout.for_run("2024-03", "an-execution")
    unload = statement_batches("aggregate", run, TARGET)[5]
    for d in DIMENSIONS:
        for prefix in (run.species_counts_prefix(d), run.region_counts_prefix(d)):
            csv_prefix = run.table_csv_prefix(prefix)
            (copy,) = [sql for sql in unload if f"TO 's3://bison-bucket/{csv_prefix}'" in sql]
            assert (
                "FORMAT AS CSV DELIMITER AS ',' HEADER PARALLEL OFF EXTENSION 'csv' "
                "ALLOWOVERWRITE\n" in copy
            )
            assert "CLEANPATH" not in copy and "MANIFEST" not in copy
            stmt = parse_statement(copy)
            assert isinstance(stmt, UnloadStmt)
            redshift_unload_rules.check(stmt)
            redshift_unload_rules.refuse_unemulated(stmt)
            name = f"{csv_prefix.removeprefix(run.summary_prefix)}000.csv"
            assert run.table_csv_key(prefix) == run.summary_prefix + name
            assert name == f"{prefix.removeprefix(run.summary_prefix).rstrip('/')}_000.csv"


@pytest.mark.parametrize("step", redshift_sql.STEPS)
def test_plain_sql_parses_as_redshift(step: str) -> None:
    """Everything but COPY/UNLOAD/external DDL is ordinary SQL sqlglot understands."""
    for sql in _all(step):
        if sql.startswith(("COPY", "UNLOAD")) or _is_external(sql):
            continue
        parsed = sqlglot.parse_one(sql, read="redshift")
        assert not isinstance(parsed, exp.Command), sql


def test_role_arn_is_quoted_and_validated() -> None:
    arn = "arn:aws:iam::123456789012:role/bison-redshift"
    target = SqlTarget("gbif-open-data-us-east-1", "bison-bucket", iam_role=arn)
    for sql in _all("subset", target) + _all("aggregate", target):
        assert "IAM_ROLE default" not in sql
    assert f"IAM_ROLE '{arn}'" in statement_batches("subset", LAYOUT, target)[0][0]
    with pytest.raises(SqlTargetError):
        SqlTarget("gbif-open-data-us-east-1", "bison-bucket", iam_role="x' OR 1=1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"bison_bucket": "Bad_Bucket"},
        {"gbif_bucket": "a"},
        {"region": "mars"},
        {"external_schema": "Spectrum; DROP"},
        {"external_database": "1db"},
    ],
)
def test_target_fields_are_validated(kwargs: dict[str, str]) -> None:
    fields = {"gbif_bucket": "gbif-open-data-us-east-1", "bison_bucket": "bison-bucket"}
    fields.update(kwargs)
    with pytest.raises(SqlTargetError):
        SqlTarget(**fields)


#: The spatial functions the aggregate step may call, each checked against its page in the
#: Amazon Redshift Database Developer Guide for the argument types used (ST_MakeEnvelope and
#: ST_Point: DOUBLE PRECISION coordinates; ST_SetSRID: GEOMETRY, INTEGER; ST_XMin...: GEOMETRY
#: -> DOUBLE PRECISION; ST_Covers and ST_Intersects: two GEOMETRY, neither a collection).
#: None of them is given anything that can be a geometry collection: their geometries are
#: the loaded (multi)polygons, envelopes and points. ST_Intersection, whose result can be a
#: collection that ST_Covers then refuses, is deliberately absent. ST_NumGeometries and
#: ST_GeometryN (GEOMETRY, INTEGER) take a boundary apart into its polygons.
REDSHIFT_SPATIAL_FUNCTIONS = frozenset(
    {
        "ST_NUMGEOMETRIES",
        "ST_GEOMETRYN",
        "ST_SETSRID",
        "ST_MAKEENVELOPE",
        "ST_POINT",
        "ST_XMIN",
        "ST_YMIN",
        "ST_XMAX",
        "ST_YMAX",
        "ST_COVERS",
        "ST_INTERSECTS",
    }
)


def test_aggregate_calls_only_documented_spatial_functions_on_non_collections() -> None:
    called = set()
    for sql in _all("aggregate"):
        if sql.startswith(("COPY", "UNLOAD")):
            continue
        for call in sqlglot.parse_one(sql, read="redshift").find_all(exp.Func):
            name = str(call.this) if isinstance(call, exp.Anonymous) else call.sql_name()
            if name.upper().startswith("ST_"):
                called.add(name.upper())
    assert called == REDSHIFT_SPATIAL_FUNCTIONS


def test_points_meet_cells_by_equality_and_cells_are_exact_in_doubles() -> None:
    """The cell arithmetic is exact (a power-of-two edge), so a point always lies in the
    closed square of the cell FLOOR gives it; both sides compute the same cell id."""
    size = boundary_sql.CELL_DEGREES
    assert math.frexp(size)[0] == 0.5, "CELL_DEGREES must be a power of two"
    assert 90 / size < boundary_sql.CELL_ID_STRIDE / 2, "cell ids must be unique"
    # The cell counter reaches across all 360 degrees of longitude, so even a polygon as
    # wide as the Earth would be gridded whole.
    assert 10**boundary_sql._CELL_STEPS_DIGITS * size > 360
    _, county, aiannh, mark, *_ = statement_batches("aggregate", LAYOUT, TARGET)
    for cells, table in ((county[4], "county_2024_03_01"), (aiannh[4], "aiannh_2024_03_01")):
        assert f"FROM {table} AS b" in cells
        assert "BOOL_OR(ST_Covers(shape, square)) AS inside" in cells
    hits = [sql for sql in mark if re.match(r"CREATE TABLE \w+_hits AS", sql)]
    assert len(hits) == 2
    for sql in hits:
        assert "JOIN county_2024_03_01_cells AS c ON c.cell = p.cell" in sql or (
            "JOIN aiannh_2024_03_01_cells AS c ON c.cell = p.cell" in sql
        )
        assert "WHERE CASE WHEN c.inside THEN TRUE ELSE ST_Covers(" in sql
        # Regions are found per distinct point: the hits read the points table, not the
        # subset, and the records meet them in one join on both coordinates.
        assert "FROM bison_2024_03_01_points AS d" in sql and "bison_2024_03_01 " not in sql
    assert mark[3] == (
        "CREATE TABLE bison_2024_03_01_points AS\n"
        "SELECT DISTINCT decimallongitude AS lon, decimallatitude AS lat\n"
        "FROM bison_2024_03_01"
    )
    marks = mark[7]
    assert marks.count("bison_2024_03_01 AS s") == 1 and marks.count("JOIN places") == 1
    assert (
        "LEFT JOIN places AS pl ON pl.lon = s.decimallongitude AND pl.lat = s.decimallatitude"
        in (marks)
    )
