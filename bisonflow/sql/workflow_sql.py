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
  (DROP ... IF EXISTS before CREATE; the marks are a table of their own, rebuilt from the
  untouched subset, so marking twice gives the same table).

The same text runs on Redshift Serverless and, through `bisonflow.local.redshift.service`, on
the local emulator (DuckDB behind moto's Data API). Nothing here is written for the emulator.

Month-to-month life cycle: `subset` creates the month's subset table and drops the previous
month's. `aggregate` runs eight batches:

1. load the annotated RIIS list;
2. load the county boundaries and list the grid cells each one meets (`boundary_sql`);
3. the same for the AIANNH areas;
4. mark every subset record with county, state, AIANNH area, RIIS region, assessment and
   RIIS occurrenceID into the month's marks table, `<subset>_marks` (point in polygon by
   an equality join on grid cells, `boundary_sql.hits_sql`, and `_mark_sql`);
5. count occurrences per (site, species, assessment) for each dimension into work tables;
6. UNLOAD, per dimension, the species counts and the per-site counts as parquet, and each
   a second time as one CSV file beside its folder (`unload_sql`);
7. drop the work tables;
8. one SELECT of counts per assessment, per region and of sites per dimension
   (SUMMARY_COLUMNS), whose small result the poll Lambda hands to the state machine.

The subset and marks tables are kept until next month's `subset` drops them, so they can be
queried in the meantime (join them on gbifid).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from bisonflow.dimensions import SPECIES_COUNT_COLUMNS, SPECIES_KEY, dimension
from bisonflow.gbif.schema import IDENTIFIER_COLUMNS, Kind, snapshot_columns
from bisonflow.layout import DIMENSIONS, MonthLayout
from bisonflow.riis.columns import ANNOTATED_COLUMNS, CONTERMINOUS_STATES
from bisonflow.sql.assessment import (
    assessment_measures,
    assessment_of_match,
    entry_of_match,
    listing_lookups,
    matched_listing,
)
from bisonflow.sql.boundaries import (
    Boundaries,
    boundary_layers,
    hits_sql,
    hits_table,
    load_boundaries,
    points_sql,
    points_table,
)
from bisonflow.sql.quoting import quote_ident
from bisonflow.sql.quoting import sql_literal as _literal
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES, SubsetRules
from bisonflow.sql.unload import unload_csv, unload_parquet

STEPS: tuple[str, ...] = ("subset", "aggregate")

#: Redshift type of each GBIF column type. The external table declares the month's columns in
#: the files' order with the types GBIF published then (gbif_schema.snapshot_columns): Spectrum
#: refuses a declared type the files do not hold (Redshift Database Developer Guide,
#: "Troubleshooting queries in Amazon Redshift Spectrum", "Incompatible data formats").
GBIF_REDSHIFT_TYPES: dict[Kind, str] = {
    Kind.STRING: "VARCHAR(MAX)",
    Kind.INTEGER: "INT",
    Kind.BIGINT: "BIGINT",
    Kind.DOUBLE: "DOUBLE PRECISION",
    Kind.TIMESTAMP: "TIMESTAMP",
    Kind.STRING_ARRAY: "ARRAY<VARCHAR(MAX)>",
}
#: An identifier (gbif_schema.IDENTIFIER_COLUMNS) the month publishes as a number is kept as
#: its decimal text, so keys have one type in every month's tables. 20 characters hold a BIGINT.
IDENTIFIER_TEXT = "VARCHAR(20)"


def gbif_columns(snapshot: dt.date) -> tuple[tuple[str, str], ...]:
    """(column, Redshift type) of the snapshot of that date, in the files' column order."""
    return tuple((name, GBIF_REDSHIFT_TYPES[kind]) for name, kind in snapshot_columns(snapshot))


#: Columns copied from the snapshot into the month's subset table: the seed's, BISON's own
#: (github lifemapper/bison at be5204f: `aws/lambda/bison_s3_create_bison.py` lines 141-147 and
#: `aws/redshift/subset_to_bison.sql` lines 106-111), in its order. The seed adds a point
#: geometry and `taxonkey || ' ' || species`; here the points are located once per distinct
#: coordinate pair (`boundary_sql.points_sql`) and the pair is two columns, so neither is kept.
#: Every column copied is a write of each subset record (the subset's CREATE TABLE AS is the
#: costliest statement of the month), so the snapshot's other columns stay in the snapshot.
SUBSET_COLUMNS: tuple[str, ...] = (
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
)

#: Columns of a subset record the marks table repeats: its id, its own taxon (a synonym's
#: or subspecies' key, kept so the marks can be queried by it), and what the counts need:
#: the accepted species' key and name.
MARKED_RECORD_COLUMNS: tuple[str, ...] = ("gbifid", "taxonkey", SPECIES_KEY, "species")

#: Columns of the marks table besides MARKED_RECORD_COLUMNS: what `aggregate` finds out about
#: each subset record.
MARK_COLUMNS: tuple[str, ...] = (
    "geoid",  # county GEOID (state FIPS + county FIPS); NULL outside every county
    "county",  # county NAMELSAD, e.g. "Baltimore city" (NAME alone is ambiguous in a state)
    "state",  # STUSPS, e.g. "AK"
    "riis_region",  # AK, HI or L48 (riis_schema.RIIS_REGIONS); NULL outside every county
    # and in the territories, which no RIIS list assesses
    "riis_assessment",  # riis_schema.ASSESSMENTS; NULL where riis_region is NULL
    "riis_occurrence_id",  # occurrenceID of the matching RIIS entry, if any
    "aiannh_geoid",  # GEOID (AIANNHCE) of the AIANNH area covering the point, else NULL
    "aiannh_name",  # its NAMELSAD, e.g. "Pine Ridge Reservation"
)

#: Columns of the aggregate step's final SELECT: the small result the poll Lambda returns to
#: the state machine, so the execution history shows the month's counts. One row per
#: (tally, label): occurrences per RIIS assessment and per RIIS region ("unassigned" for
#: records in no county), and the number of sites per dimension.
SUMMARY_COLUMNS: tuple[str, ...] = ("tally", "label", "value")
UNASSIGNED = "unassigned"

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


def statement_batches(
    step: str, layout: MonthLayout, target: SqlTarget, rules: SubsetRules = DEFAULT_SUBSET_RULES
) -> list[list[str]]:
    """The step's SQL as Data API calls, in the order they must run; `rules` choose the subset.

    Each inner list is one call: one statement -> ExecuteStatement, several ->
    BatchExecuteStatement (one transaction).
    """
    if step == "subset":
        return _subset(layout, target, rules)
    if step == "aggregate":
        return _aggregate(layout, target)
    raise ValueError(f"unknown SQL step {step!r}; expected one of {STEPS}")


def external_table(layout: MonthLayout, target: SqlTarget) -> str:
    """Schema-qualified name of the month's snapshot mounted through Spectrum."""
    return f"{target.external_schema}.occurrence_{layout.datestamp}"


def _columns(names: tuple[str, ...] | list[str], prefix: str = "") -> str:
    return ", ".join(prefix + quote_ident(n) for n in names)


# --- subset ---------------------------------------------------------------------------------


def _subset(layout: MonthLayout, target: SqlTarget, rules: SubsetRules) -> list[list[str]]:
    ext = external_table(layout, target)
    location = f"s3://{target.gbif_bucket}/{layout.gbif_prefix}"
    create_schema = (
        f"CREATE EXTERNAL SCHEMA IF NOT EXISTS {target.external_schema}\n"
        f"FROM DATA CATALOG DATABASE {_literal(target.external_database)}\n"
        f"REGION {_literal(target.region)}\n"
        f"{target.iam_role_clause}\n"
        "CREATE EXTERNAL DATABASE IF NOT EXISTS"
    )
    column_defs = ",\n".join(
        f"    {quote_ident(name)} {kind}" for name, kind in gbif_columns(layout.snapshot)
    )
    create_external = (
        f"CREATE EXTERNAL TABLE {ext} (\n{column_defs}\n)\n"
        f"STORED AS PARQUET\nLOCATION {_literal(location)}"
    )
    create_subset = (
        f"CREATE TABLE {layout.subset_table} AS\n"
        f"SELECT {_subset_select(layout.snapshot)}\n"
        f"FROM {ext}\n"
        f"WHERE {rules.where_sql()}"
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
            f"DROP TABLE IF EXISTS {layout.previous.marks_table}",
        ],
        [f"DROP TABLE IF EXISTS {ext}"],
    ]


def _subset_select(snapshot: dt.date) -> str:
    """SUBSET_COLUMNS, with the identifiers the month publishes as numbers cast to text."""
    kinds = dict(snapshot_columns(snapshot))
    return ", ".join(
        f"CAST({name} AS {IDENTIFIER_TEXT}) AS {name}"
        if name in IDENTIFIER_COLUMNS and kinds[name] is not Kind.STRING
        else quote_ident(name)
        for name in SUBSET_COLUMNS
    )


# --- aggregate ------------------------------------------------------------------------------


def species_table(layout: MonthLayout, dim: str) -> str:
    """The work table holding a dimension's species counts until they are unloaded."""
    return f"{layout.subset_table}_{dimension(dim).name}_species"


def _aggregate(layout: MonthLayout, target: SqlTarget) -> list[list[str]]:
    subset, riis = layout.subset_table, layout.riis_table
    county, aiannh = boundary_layers(layout)
    riis_uri = f"s3://{target.bison_bucket}/{layout.riis_annotated_key}"

    riis_defs = ",\n".join(f"    {quote_ident(c.lower())} VARCHAR(MAX)" for c in ANNOTATED_COLUMNS)
    load_riis = [
        f"DROP TABLE IF EXISTS {riis}",
        f"CREATE TABLE {riis} (\n{riis_defs}\n)",
        f"COPY {riis}\nFROM {_literal(riis_uri)}\n{target.iam_role_clause}\n"
        f"FORMAT AS CSV QUOTE AS '\"' IGNOREHEADER 1\nREGION {_literal(target.region)}",
    ]
    points = points_table(layout)
    hits = [hits_table(layout, b) for b in (county, aiannh)]
    marks = layout.marks_table
    mark = [
        *(f"DROP TABLE IF EXISTS {t}" for t in (points, *hits)),
        points_sql(subset, points),
        hits_sql(points, county, hits[0]),
        hits_sql(points, aiannh, hits[1]),
        f"DROP TABLE IF EXISTS {marks}",
        _mark_sql(layout, county, aiannh, marks),
        *(f"DROP TABLE {t}" for t in (points, *hits)),
    ]
    species = [species_table(layout, d) for d in DIMENSIONS]
    count = [f"DROP TABLE IF EXISTS {t}" for t in species] + [
        _species_sql(layout, d) for d in DIMENSIONS
    ]
    tables = [
        (query(layout, d), prefix(d))
        for d in DIMENSIONS
        for query, prefix in (
            (_species_counts_query, layout.species_counts_prefix),
            (_region_counts_query, layout.region_counts_prefix),
        )
    ]
    bucket = f"s3://{target.bison_bucket}/"
    unload = [
        sql
        for query, prefix in tables
        for sql in (
            unload_parquet(query, bucket + prefix, target),
            unload_csv(query, bucket + layout.table_csv_prefix(prefix), target),
        )
    ]
    cleanup = [
        f"DROP TABLE IF EXISTS {t}"
        for t in (riis, county.table, county.cells, aiannh.table, aiannh.cells, *species)
    ]
    return [
        load_riis,
        load_boundaries(county, target),
        load_boundaries(aiannh, target),
        mark,
        count,
        unload,
        cleanup,
        [_summary_sql(marks)],
    ]


def _mark_sql(layout: MonthLayout, county: Boundaries, aiannh: Boundaries, marks: str) -> str:
    """CREATE TABLE <marks> AS every subset record's county, state, AIANNH and RIIS marks.

    A table of its own, MARKED_RECORD_COLUMNS + MARK_COLUMNS, rather than a marked copy of
    the subset: copying the subset's 22 columns again cost more than all the marking.

    * county, state and AIANNH area: from the hits tables, one row per distinct point
      (`boundary_sql.points_sql` and `hits_sql`, which also carry the names), gathered per
      point in `places` so the records meet them in one join, by equality on both
      coordinates.
    * riis_region: AK and HI are their own RIIS localities; the conterminous 48 states and
      DC are L48 (riis_schema.CONTERMINOUS_STATES, the data dictionary's "Conterminous 48
      United States"). A county of PR, VI, GU, AS or MP gets no region and so no
      assessment: no list assesses the territories. The seed gives them L48
      (lifemapper/bison `aws/lambda/bison_s5_assign_riis.py`, update_l48_stmt: every state
      but AK and HI).
    * riis_assessment and riis_occurrence_id: the entry that applies to the record, decided
      on the record's side with GBIF's two keys, `specieskey` for a listed species and
      `taxonkey` below species, the most severe tier winning (bisonflow.sql.assessment
      `listing_lookups` and `matched_listing`, which say how and why). No entry applies:
      presumed native. Records without a region have no assessment.
    """
    subset = layout.subset_table
    county_hits, aiannh_hits = hits_table(layout, county), hits_table(layout, aiannh)
    conterminous = ", ".join(_literal(state) for state in CONTERMINOUS_STATES)
    region = (
        "CASE WHEN pl.state IN ('AK', 'HI') THEN pl.state "
        f"WHEN pl.state IN ({conterminous}) THEN 'L48' END"
    )
    return f"""CREATE TABLE {marks} AS
WITH places AS (
    SELECT p.lon, p.lat, ch.geoid, ch.namelsad AS county, ch.stusps AS state,
           ah.geoid AS aiannh_geoid, ah.namelsad AS aiannh_name
    FROM {points_table(layout)} AS p
    LEFT JOIN {county_hits} AS ch ON ch.lon = p.lon AND ch.lat = p.lat
    LEFT JOIN {aiannh_hits} AS ah ON ah.lon = p.lon AND ah.lat = p.lat
),
located AS (
    SELECT {_columns(MARKED_RECORD_COLUMNS, "s.")}, pl.geoid, pl.county, pl.state,
           {region} AS riis_region, pl.aiannh_geoid, pl.aiannh_name
    FROM {subset} AS s
    LEFT JOIN places AS pl ON pl.lon = s.decimallongitude AND pl.lat = s.decimallatitude
),
{listing_lookups(layout.riis_table)},
{matched_listing("located", "matched")}
SELECT {_columns(MARKED_RECORD_COLUMNS)}, geoid, county, state, riis_region,
       {assessment_of_match()} AS riis_assessment,
       {entry_of_match()} AS riis_occurrence_id,
       aiannh_geoid, aiannh_name
FROM matched"""


#: A dimension whose sites are unions of another's: its counts are summed from that one's
#: species table instead of scanning the subset again (a county lies in exactly one state).
_ROLLED_UP_FROM = {"state": "county"}


def _species_sql(layout: MonthLayout, dim: str) -> str:
    """CREATE TABLE <species table> AS occurrences per (site, species, assessment)."""
    labels = dimension(dim).label_columns
    keys = (*labels, *SPECIES_COUNT_COLUMNS[:-1])
    source = _ROLLED_UP_FROM.get(dim)
    if source is None:
        total, origin = "COUNT(*)", layout.marks_table
    else:
        total, origin = "CAST(SUM(occ_count) AS BIGINT)", species_table(layout, source)
    return (
        f"CREATE TABLE {species_table(layout, dim)} AS\n"
        f"SELECT {_columns(keys)}, {total} AS occ_count\n"
        f"FROM {origin}\n"
        f"WHERE {dimension(dim).site_column} IS NOT NULL\n"
        f"GROUP BY {_columns(keys)}"
    )


def _species_counts_query(layout: MonthLayout, dim: str) -> str:
    """The `<dim>_species_counts` table: the species list of every site with counts, species
    in key order (shortest key first, then by character), as bisonflow.stats.pam orders them."""
    columns = (*dimension(dim).label_columns, *SPECIES_COUNT_COLUMNS)
    return (
        f"SELECT {_columns(columns)} FROM {species_table(layout, dim)} "
        f"ORDER BY {dimension(dim).site_column}, LEN({SPECIES_KEY}), {SPECIES_KEY}, riis_assessment"
    )


def _region_counts_query(layout: MonthLayout, dim: str) -> str:
    """The `<dim>_counts` table: occurrences and species per site, overall and per
    assessment, in dimensions.REGION_COUNT_COLUMNS order."""
    labels = dimension(dim).label_columns
    measures = ["CAST(SUM(occ_count) AS BIGINT) AS occ_count"]
    measures.append(f"COUNT(DISTINCT {SPECIES_KEY}) AS species_count")  # once, any tier
    measures += assessment_measures()
    return (
        f"SELECT {_columns(labels)}, {', '.join(measures)} "
        f"FROM {species_table(layout, dim)} GROUP BY {_columns(labels)} "
        f"ORDER BY {dimension(dim).site_column}"
    )


def _summary_sql(subset: str) -> str:
    """The step's result: occurrences per assessment and per region, sites per dimension."""
    unassigned = _literal(UNASSIGNED)
    parts = [
        f"SELECT 'occurrences_by_assessment' AS tally, COALESCE(riis_assessment, {unassigned}) "
        f"AS label, COUNT(*) AS value FROM {subset} GROUP BY riis_assessment",
        f"SELECT 'occurrences_by_region', COALESCE(riis_region, {unassigned}), COUNT(*) "
        f"FROM {subset} GROUP BY riis_region",
    ]
    parts += [
        f"SELECT 'sites', {_literal(d)}, COUNT(DISTINCT {dimension(d).site_column}) FROM {subset}"
        for d in DIMENSIONS
    ]
    return "\nUNION ALL\n".join(parts)
