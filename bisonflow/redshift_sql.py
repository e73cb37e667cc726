"""The workflow's Redshift SQL, in real Redshift dialect, grouped into Data API calls.

`statement_batches(step, layout, target)` returns, for the state machine's `subset` and
`aggregate` steps, a list of batches. Each batch is ONE Redshift Data API call: a batch of one
statement is sent with ExecuteStatement, a batch of several with BatchExecuteStatement, which
Redshift runs as a single transaction. The state machine runs the batches strictly in order
(submit, poll until FINISHED, next), so a later batch may rely on everything before it.

Why batches are cut where they are:

* CREATE/DROP EXTERNAL SCHEMA and CREATE/DROP of an external table cannot run inside a
  transaction block, so each is a batch of its own.
* Everything else that belongs together is one transaction, so a failure leaves the database
  as it was and the step can simply be run again: every batch is written to be re-runnable
  (DROP ... IF EXISTS before CREATE; the marked subset table is rebuilt from an explicit
  column list, so marking twice gives the same table).

The same text runs on Redshift Serverless and, through `bisonflow.local.redshift_duckdb`, on
the local emulator (DuckDB behind moto's Data API). Nothing here is written for the emulator.

Month-to-month life cycle: `subset` creates the month's subset table and drops the previous
month's; `aggregate` loads the annotated RIIS list and the county boundaries into temporary
tables, marks every subset record with county, state, RIIS region and RIIS assessment,
unloads county x species and state x species counts as parquet, and drops the two temporary
tables. The marked subset table is kept until next month's `subset` drops it, so it can be
queried in the meantime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bisonflow.layout import COUNTY_SHAPEFILE_KEY, MonthLayout
from bisonflow.riis_schema import ANNOTATED_COLUMNS, PRESUMED_NATIVE
from bisonflow.subset_rules import (
    ALLOWED_BASIS_OF_RECORD,
    ALLOWED_TAXON_RANKS,
    COUNTRY_CODE,
    OCCURRENCE_STATUS,
    sql_in_list,
)

STEPS: tuple[str, ...] = ("subset", "aggregate")

#: SRID of the Census boundary files (NAD83). Redshift takes a shapefile's SRID from its .prj;
#: GBIF coordinates are WGS84, which differs from NAD83 by about a metre, far below county
#: scale, so points are tagged with the boundaries' SRID rather than transformed.
COUNTY_SRID = 4269

#: Columns of GBIF's occurrence.parquet, in the snapshot's column order, with Redshift types.
#: Declaring every column in the file's own order makes the external table correct whether
#: Spectrum maps parquet columns by name or by position. Types follow GBIF's description of
#: the AWS snapshots (aws-public-data.md in gbif/occurrence) for snapshots since 2022-05:
#: gbifid is a string, eventdate/dateidentified/lastinterpreted are timestamps and five
#: columns are string arrays.
GBIF_COLUMNS: tuple[tuple[str, str], ...] = (
    ("gbifid", "VARCHAR(MAX)"),
    ("datasetkey", "VARCHAR(MAX)"),
    ("occurrenceid", "VARCHAR(MAX)"),
    ("kingdom", "VARCHAR(MAX)"),
    ("phylum", "VARCHAR(MAX)"),
    ("class", "VARCHAR(MAX)"),
    ("order", "VARCHAR(MAX)"),
    ("family", "VARCHAR(MAX)"),
    ("genus", "VARCHAR(MAX)"),
    ("species", "VARCHAR(MAX)"),
    ("infraspecificepithet", "VARCHAR(MAX)"),
    ("taxonrank", "VARCHAR(MAX)"),
    ("scientificname", "VARCHAR(MAX)"),
    ("verbatimscientificname", "VARCHAR(MAX)"),
    ("verbatimscientificnameauthorship", "VARCHAR(MAX)"),
    ("countrycode", "VARCHAR(MAX)"),
    ("locality", "VARCHAR(MAX)"),
    ("stateprovince", "VARCHAR(MAX)"),
    ("occurrencestatus", "VARCHAR(MAX)"),
    ("individualcount", "INT"),
    ("publishingorgkey", "VARCHAR(MAX)"),
    ("decimallatitude", "DOUBLE PRECISION"),
    ("decimallongitude", "DOUBLE PRECISION"),
    ("coordinateuncertaintyinmeters", "DOUBLE PRECISION"),
    ("coordinateprecision", "DOUBLE PRECISION"),
    ("elevation", "DOUBLE PRECISION"),
    ("elevationaccuracy", "DOUBLE PRECISION"),
    ("depth", "DOUBLE PRECISION"),
    ("depthaccuracy", "DOUBLE PRECISION"),
    ("eventdate", "TIMESTAMP"),
    ("day", "INT"),
    ("month", "INT"),
    ("year", "INT"),
    ("taxonkey", "INT"),
    ("specieskey", "INT"),
    ("basisofrecord", "VARCHAR(MAX)"),
    ("institutioncode", "VARCHAR(MAX)"),
    ("collectioncode", "VARCHAR(MAX)"),
    ("catalognumber", "VARCHAR(MAX)"),
    ("recordnumber", "VARCHAR(MAX)"),
    ("identifiedby", "ARRAY<VARCHAR(MAX)>"),
    ("dateidentified", "TIMESTAMP"),
    ("license", "VARCHAR(MAX)"),
    ("rightsholder", "VARCHAR(MAX)"),
    ("recordedby", "ARRAY<VARCHAR(MAX)>"),
    ("typestatus", "ARRAY<VARCHAR(MAX)>"),
    ("establishmentmeans", "VARCHAR(MAX)"),
    ("lastinterpreted", "TIMESTAMP"),
    ("mediatype", "ARRAY<VARCHAR(MAX)>"),
    ("issue", "ARRAY<VARCHAR(MAX)>"),
)

#: Columns copied from the snapshot into the month's subset table (scalars only: the subset is
#: a plain Redshift table and the counts need taxon, name and coordinates).
SUBSET_COLUMNS: tuple[str, ...] = (
    "gbifid",
    "datasetkey",
    "publishingorgkey",
    "species",
    "taxonrank",
    "scientificname",
    "taxonkey",
    "specieskey",
    "kingdom",
    "class",
    "order",
    "family",
    "countrycode",
    "stateprovince",
    "occurrencestatus",
    "basisofrecord",
    "decimallatitude",
    "decimallongitude",
    "eventdate",
    "year",
    "month",
    "day",
)

#: Columns `aggregate` adds to the subset table.
MARK_COLUMNS: tuple[str, ...] = (
    "geoid",  # county GEOID (state FIPS + county FIPS); NULL outside every county
    "county",  # county NAMELSAD, e.g. "Baltimore city" (NAME alone is ambiguous in a state)
    "state",  # STUSPS, e.g. "AK"
    "riis_region",  # AK, HI or L48 (riis_schema.RIIS_REGIONS); NULL outside every county
    "riis_assessment",  # invasive | introduced | presumed_native; NULL outside every county
    "riis_occurrence_id",  # occurrenceID of the matching RIIS entry, if any
)

#: Attribute fields of the Census cartographic boundary county file (cb_YYYY_us_county_500k),
#: in the file's field order. COPY ... FORMAT SHAPEFILE loads by position: the geometry first,
#: then these fields in this order, so the table below must match the file exactly.
COUNTY_SHAPEFILE_FIELDS: tuple[tuple[str, str], ...] = (
    ("statefp", "VARCHAR(2)"),
    ("countyfp", "VARCHAR(3)"),
    ("countyns", "VARCHAR(8)"),
    ("affgeoid", "VARCHAR(16)"),
    ("geoid", "VARCHAR(5)"),
    ("name", "VARCHAR(100)"),
    ("namelsad", "VARCHAR(100)"),
    ("stusps", "VARCHAR(2)"),
    ("state_name", "VARCHAR(100)"),
    ("lsad", "VARCHAR(2)"),
    ("aland", "BIGINT"),
    ("awater", "BIGINT"),
)

#: Columns of the unloaded county x species counts, in order.
COUNTY_COUNT_COLUMNS: tuple[str, ...] = (
    "geoid",
    "state",
    "county",
    "riis_region",
    "taxonkey",
    "species",
    "riis_assessment",
    "occ_count",
)
#: Columns of the unloaded state x species counts, in order.
STATE_COUNT_COLUMNS: tuple[str, ...] = (
    "state",
    "riis_region",
    "taxonkey",
    "species",
    "riis_assessment",
    "occ_count",
)

#: Words Redshift reserves (or that read as keywords) among the column names used here.
_RESERVED = frozenset({"order", "class", "name", "default", "table", "user", "group"})

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,126}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$")


class SqlTargetError(ValueError):
    """A SqlTarget field would not make safe, valid SQL."""


@dataclass(frozen=True)
class SqlTarget:
    """Where the SQL reads and writes: buckets, the role Redshift uses for S3, Glue names.

    `iam_role` is "default" (the workgroup's default IAM role) or one role ARN (or a chain of
    ARNs separated by commas, as Redshift accepts). `external_database` is the Glue Data
    Catalog database behind `external_schema`; it is created if missing.
    """

    gbif_bucket: str
    bison_bucket: str
    iam_role: str = "default"
    region: str = "us-east-1"
    external_schema: str = "gbif_spectrum"
    external_database: str = "bisonflow_gbif"

    def __post_init__(self) -> None:
        # Every value is spliced into SQL text, so each is checked against its strict form.
        for field_name in ("gbif_bucket", "bison_bucket"):
            value = getattr(self, field_name)
            if not _BUCKET.match(value):
                raise SqlTargetError(f"{field_name} {value!r} is not an S3 bucket name")
        if not _REGION.match(self.region):
            raise SqlTargetError(f"region {self.region!r} is not an AWS region name")
        for field_name in ("external_schema", "external_database"):
            value = getattr(self, field_name)
            if not _IDENT.match(value):
                raise SqlTargetError(f"{field_name} {value!r} must be a lower-case SQL identifier")
        if self.iam_role.lower() != "default":
            for arn in self.iam_role.split(","):
                if not _ROLE_ARN.match(arn):
                    raise SqlTargetError(
                        f"iam_role must be 'default' or IAM role ARN(s), got {self.iam_role!r}"
                    )

    @property
    def iam_role_clause(self) -> str:
        """`IAM_ROLE default` or `IAM_ROLE 'arn:...'`."""
        if self.iam_role.lower() == "default":
            return "IAM_ROLE default"
        return f"IAM_ROLE '{self.iam_role}'"


def statement_batches(step: str, layout: MonthLayout, target: SqlTarget) -> list[list[str]]:
    """The step's SQL as Data API calls, in the order they must run.

    Each inner list is one call: one statement -> ExecuteStatement, several ->
    BatchExecuteStatement (one transaction).
    """
    if step == "subset":
        return _subset(layout, target)
    if step == "aggregate":
        return _aggregate(layout, target)
    raise ValueError(f"unknown SQL step {step!r}; expected one of {STEPS}")


def external_table(layout: MonthLayout, target: SqlTarget) -> str:
    """Schema-qualified name of the month's snapshot mounted through Spectrum."""
    return f"{target.external_schema}.occurrence_{layout.datestamp}"


def quote_ident(name: str) -> str:
    """The column name, double-quoted when Redshift would read it as a keyword."""
    return f'"{name}"' if name in _RESERVED else name


def _columns(names: tuple[str, ...] | list[str], prefix: str = "") -> str:
    return ", ".join(prefix + quote_ident(n) for n in names)


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- subset ---------------------------------------------------------------------------------


def _subset(layout: MonthLayout, target: SqlTarget) -> list[list[str]]:
    ext = external_table(layout, target)
    location = f"s3://{target.gbif_bucket}/{layout.gbif_prefix}"
    create_schema = (
        f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {target.external_schema}\n"
        f"FROM DATA CATALOG DATABASE {_literal(target.external_database)}\n"
        f"REGION {_literal(target.region)}\n"
        f"{target.iam_role_clause}\n"
        "CREATE EXTERNAL DATABASE IF NOT EXISTS"
    )
    column_defs = ",\n".join(f"    {quote_ident(name)} {kind}" for name, kind in GBIF_COLUMNS)
    create_external = (
        f"CREATE EXTERNAL TABLE {ext} (\n{column_defs}\n)\n"
        f"STORED AS PARQUET\nLOCATION {_literal(location)}"
    )
    create_subset = (
        f"CREATE TABLE {layout.subset_table} AS\n"
        f"SELECT {_columns(SUBSET_COLUMNS)}\n"
        f"FROM {ext}\n"
        f"WHERE countrycode = {_literal(COUNTRY_CODE)}\n"
        "  AND decimallatitude IS NOT NULL\n"
        "  AND decimallongitude IS NOT NULL\n"
        f"  AND occurrencestatus = {_literal(OCCURRENCE_STATUS)}\n"
        f"  AND taxonrank IN ({sql_in_list(ALLOWED_TAXON_RANKS)})\n"
        f"  AND basisofrecord IN ({sql_in_list(ALLOWED_BASIS_OF_RECORD)})"
    )
    return [
        [create_schema],
        # A failed earlier run may have left the mount behind; CREATE EXTERNAL TABLE has no
        # IF NOT EXISTS, so drop first. External DDL runs outside transactions: one per call.
        [f"DROP TABLE IF EXISTS {ext}"],
        [create_external],
        [
            f"DROP TABLE IF EXISTS {layout.subset_table}",
            create_subset,
            f"DROP TABLE IF EXISTS {layout.previous.subset_table}",
        ],
        [f"DROP TABLE IF EXISTS {ext}"],
    ]


# --- aggregate ------------------------------------------------------------------------------


def _aggregate(layout: MonthLayout, target: SqlTarget) -> list[list[str]]:
    subset, riis, county = layout.subset_table, layout.riis_table, layout.county_table
    marked = f"{subset}_marked"
    riis_uri = f"s3://{target.bison_bucket}/{layout.riis_annotated_key}"
    shp_uri = f"s3://{target.bison_bucket}/{COUNTY_SHAPEFILE_KEY}"

    riis_defs = ",\n".join(f"    {quote_ident(c.lower())} VARCHAR(MAX)" for c in ANNOTATED_COLUMNS)
    load_riis = [
        f"DROP TABLE IF EXISTS {riis}",
        f"CREATE TABLE {riis} (\n{riis_defs}\n)",
        f"COPY {riis}\nFROM {_literal(riis_uri)}\n{target.iam_role_clause}\n"
        f"FORMAT AS CSV QUOTE AS '\"' IGNOREHEADER 1\nREGION {_literal(target.region)}",
    ]

    county_defs = ",\n".join(
        f"    {quote_ident(name)} {kind}" for name, kind in COUNTY_SHAPEFILE_FIELDS
    )
    load_county = [
        f"DROP TABLE IF EXISTS {county}",
        f"CREATE TABLE {county} (\n    shape GEOMETRY,\n{county_defs}\n)",
        # SIMPLIFY AUTO only simplifies polygons too large for one GEOMETRY value (1 MB).
        f"COPY {county}\nFROM {_literal(shp_uri)}\n{target.iam_role_clause}\n"
        f"FORMAT SHAPEFILE SIMPLIFY AUTO\nREGION {_literal(target.region)}",
    ]

    mark = [
        f"DROP TABLE IF EXISTS {marked}",
        _mark_sql(subset, riis, county, marked),
        f"DROP TABLE {subset}",
        f"ALTER TABLE {marked} RENAME TO {subset}",
    ]

    county_query = (
        f"SELECT {_columns(COUNTY_COUNT_COLUMNS[:-1])}, COUNT(*) AS occ_count "
        f"FROM {subset} WHERE geoid IS NOT NULL "
        f"GROUP BY {_columns(COUNTY_COUNT_COLUMNS[:-1])} "
        "ORDER BY geoid, taxonkey, riis_assessment"
    )
    state_query = (
        f"SELECT {_columns(STATE_COUNT_COLUMNS[:-1])}, COUNT(*) AS occ_count "
        f"FROM {subset} WHERE state IS NOT NULL "
        f"GROUP BY {_columns(STATE_COUNT_COLUMNS[:-1])} "
        "ORDER BY state, taxonkey, riis_assessment"
    )
    unload = [
        _unload(
            county_query,
            f"s3://{target.bison_bucket}/{layout.species_counts_prefix('county')}",
            target,
        ),
        _unload(
            state_query,
            f"s3://{target.bison_bucket}/{layout.species_counts_prefix('state')}",
            target,
        ),
    ]
    cleanup = [f"DROP TABLE IF EXISTS {riis}", f"DROP TABLE IF EXISTS {county}"]
    return [load_riis, load_county, mark, unload, cleanup]


def _unload(query: str, uri: str, target: SqlTarget) -> str:
    return (
        f"UNLOAD ({_literal(query)})\nTO {_literal(uri)}\n{target.iam_role_clause}\n"
        f"FORMAT AS PARQUET ALLOWOVERWRITE\nREGION {_literal(target.region)}"
    )


def _mark_sql(subset: str, riis: str, county: str, marked: str) -> str:
    """CREATE TABLE <marked> AS the subset with county, state and RIIS marks.

    * county: the county polygon covering the point. ST_Covers rather than ST_Contains so a
      point exactly on a boundary still gets a county: GBIF coordinates are often rounded to
      whole or tenth degrees, and many state lines run along such meridians and parallels.
      A point on a line shared by two counties (or in an overlap of imperfect polygons)
      matches both; the lowest GEOID wins, so no record is counted twice.
    * riis_region: AK and HI are their own RIIS localities, every other state is L48.
    * riis_assessment: the RIIS entry for (region, accepted taxon key) decides; an entry's
      accepted key is gbif_res_taxonkey (the GBIF backbone key its name resolved to, so a
      synonym on the list matches records of the accepted name). degreeOfEstablishment
      mentioning "invasive" makes it invasive, otherwise introduced. Several entries for the
      same (region, key), e.g. a name and its synonym, collapse to one, invasive first, so
      the join never multiplies records. No entry: presumed native.
    * gbif_res_taxonkey is text in the CSV and may be written "123.0" by a float-typed
      writer; the integer part is compared as text, so a malformed key never fails the load.
    """
    point = f"ST_SetSRID(ST_Point(s.decimallongitude, s.decimallatitude), {COUNTY_SRID})"
    region = (
        "CASE WHEN l.state = 'AK' THEN 'AK' WHEN l.state = 'HI' THEN 'HI' "
        "WHEN l.state IS NOT NULL THEN 'L48' END"
    )
    return f"""CREATE TABLE {marked} AS
WITH located AS (
    SELECT gbifid, geoid, county, state
    FROM (
        SELECT s.gbifid, c.geoid, c.namelsad AS county, c.stusps AS state,
               ROW_NUMBER() OVER (PARTITION BY s.gbifid ORDER BY c.geoid) AS pick
        FROM {subset} AS s
        JOIN {county} AS c
          ON ST_Covers(ST_SetSRID(c.shape, {COUNTY_SRID}), {point})
    ) AS hits
    WHERE pick = 1
),
regioned AS (
    SELECT {_columns(SUBSET_COLUMNS, "s.")}, l.geoid, l.county, l.state,
           {region} AS riis_region
    FROM {subset} AS s
    LEFT JOIN located AS l ON l.gbifid = s.gbifid
),
riis_entries AS (
    SELECT TRIM(locality) AS locality,
           NULLIF(SPLIT_PART(TRIM(gbif_res_taxonkey), '.', 1), '') AS taxonkey,
           CASE WHEN LOWER(degreeofestablishment) LIKE '%invasive%'
                THEN 'invasive' ELSE 'introduced' END AS assessment,
           occurrenceid
    FROM {riis}
),
riis_lookup AS (
    SELECT locality, taxonkey, assessment, occurrenceid
    FROM (
        SELECT locality, taxonkey, assessment, occurrenceid,
               ROW_NUMBER() OVER (
                   PARTITION BY locality, taxonkey
                   ORDER BY CASE WHEN assessment = 'invasive' THEN 0 ELSE 1 END, occurrenceid
               ) AS pick
        FROM riis_entries
        WHERE taxonkey IS NOT NULL
    ) AS ranked
    WHERE pick = 1
)
SELECT {_columns(SUBSET_COLUMNS, "g.")}, g.geoid, g.county, g.state, g.riis_region,
       CASE WHEN g.riis_region IS NULL THEN NULL
            WHEN r.assessment IS NOT NULL THEN r.assessment
            ELSE {_literal(PRESUMED_NATIVE)} END AS riis_assessment,
       r.occurrenceid AS riis_occurrence_id
FROM regioned AS g
LEFT JOIN riis_lookup AS r
  ON r.locality = g.riis_region
 AND r.taxonkey = CAST(g.taxonkey AS VARCHAR(20))"""
