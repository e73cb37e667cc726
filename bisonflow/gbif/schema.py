"""The columns of GBIF's monthly occurrence snapshot on AWS, with their types by snapshot date.

GBIF changes the snapshot's column types from time to time, and a Redshift Spectrum external
table must declare the types of the month's files exactly (a declared INT over a string
column fails every scan). So the types are not one list but a first schema plus GBIF's dated
changes, and everything that declares or writes the snapshot (the external table DDL in
`bisonflow.sql.workflow_sql`, the sample generator's parquet schema in `bisonflow.sample.schema`)
derives from `snapshot_columns(snapshot_date)`.

Source: GBIF, "GBIF Public Datasets on Amazon Web Services", `aws-public-data.md` in
github.com/gbif/occurrence (read at commit d385bbd, "Update schema documentation for cloud
snapshots", 2025-09-12):

* section "Schema": the 50 lower-case columns and their types;
* section "Getting started with Athena": the column order (its CREATE EXTERNAL TABLE), and
  the types of the first snapshot, `gbif_20210413`, in the page's versions before
  2022-05-12 (gbifid `bigint`, the dates and identifiedby/recordedby/typestatus `string`,
  mediatype and issue `array<string>`, integers `int`, reals `double`);
* section "Change history", which dates each type change:
  - "From 2022-05-01, the timestamp fields eventDate, dateIdentified and lastIntepreted
    have a timestamp type, rather than the previous string type. The fields identifiedby,
    recordedby and typestatus are changed from a string type to a string array."
  - "From 2023-02-01, the gbifid field has string type, for compatibility with other
    biodiversity data aggregators."
  - "From 2025-08-01, the fields taxonkey and specieskey have string type, in preparation
    for a future change to Catalogue of Life's taxonomy."

The "Schema" table of that same version still lists taxonkey and specieskey as Integer: the
change history is the dated statement and was written with it, so it decides.

GBIF's first snapshot is 2021-04-13; an earlier date gets the first schema (there is no
such snapshot, which `bisonflow.steps.gbif_snapshot.check_month` reports before any SQL runs).
This module is standard library only: the Lambdas that render the SQL import it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """A column type in GBIF's words (section "Schema")."""

    STRING = "String"
    INTEGER = "Integer"  # 32-bit: Athena `int`
    BIGINT = "BigInt"  # 64-bit: Athena `bigint`
    DOUBLE = "Double"
    TIMESTAMP = "Timestamp"
    STRING_ARRAY = "String array"


STR, INT, BIG, DBL, ARR = Kind.STRING, Kind.INTEGER, Kind.BIGINT, Kind.DOUBLE, Kind.STRING_ARRAY

#: The columns in the files' order (the Athena DDL's) with their types in the first snapshot,
#: GBIF's first on AWS, of 2021-04-13.
_FIRST_COLUMNS: tuple[tuple[str, Kind], ...] = (
    ("gbifid", BIG), ("datasetkey", STR), ("occurrenceid", STR), ("kingdom", STR), ("phylum", STR),
    ("class", STR), ("order", STR), ("family", STR), ("genus", STR), ("species", STR),
    ("infraspecificepithet", STR), ("taxonrank", STR), ("scientificname", STR),
    ("verbatimscientificname", STR), ("verbatimscientificnameauthorship", STR),
    ("countrycode", STR), ("locality", STR), ("stateprovince", STR), ("occurrencestatus", STR),
    ("individualcount", INT), ("publishingorgkey", STR), ("decimallatitude", DBL),
    ("decimallongitude", DBL), ("coordinateuncertaintyinmeters", DBL), ("coordinateprecision", DBL),
    ("elevation", DBL), ("elevationaccuracy", DBL), ("depth", DBL), ("depthaccuracy", DBL),
    ("eventdate", STR), ("day", INT), ("month", INT), ("year", INT), ("taxonkey", INT),
    ("specieskey", INT), ("basisofrecord", STR), ("institutioncode", STR), ("collectioncode", STR),
    ("catalognumber", STR), ("recordnumber", STR), ("identifiedby", STR), ("dateidentified", STR),
    ("license", STR), ("rightsholder", STR), ("recordedby", STR), ("typestatus", STR),
    ("establishmentmeans", STR), ("lastinterpreted", STR), ("mediatype", ARR), ("issue", ARR),
)  # fmt: skip

#: Every column name, in the files' order. GBIF has changed types, never names or order.
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in _FIRST_COLUMNS)


@dataclass(frozen=True)
class TypeChange:
    """One dated entry of GBIF's "Change history": from `since` on, `columns` are `kind`."""

    since: dt.date
    columns: tuple[str, ...]
    kind: Kind
    why: str  # GBIF's words


TYPE_CHANGES: tuple[TypeChange, ...] = (
    TypeChange(
        dt.date(2022, 5, 1),
        ("eventdate", "dateidentified", "lastinterpreted"),
        Kind.TIMESTAMP,
        "a timestamp type, rather than the previous string type",
    ),
    TypeChange(
        dt.date(2022, 5, 1),
        ("identifiedby", "recordedby", "typestatus"),
        Kind.STRING_ARRAY,
        "changed from a string type to a string array",
    ),
    TypeChange(
        dt.date(2023, 2, 1),
        ("gbifid",),
        Kind.STRING,
        "for compatibility with other biodiversity data aggregators",
    ),
    TypeChange(
        dt.date(2025, 8, 1),
        ("taxonkey", "specieskey"),
        Kind.STRING,
        "in preparation for a future change to Catalogue of Life's taxonomy",
    ),
)

#: The taxon and record identifiers BISON carries as text whatever the month's type: a key
#: is a label to match and count, never a number to compute with, and from 2025-08 GBIF
#: publishes the taxon keys as strings.
IDENTIFIER_COLUMNS: tuple[str, ...] = ("gbifid", "taxonkey", "specieskey")


def snapshot_columns(snapshot: dt.date) -> tuple[tuple[str, Kind], ...]:
    """(column, GBIF type) of the snapshot published on `snapshot`, in the files' order."""
    if not isinstance(snapshot, dt.date):
        raise TypeError(f"snapshot must be a date, got {snapshot!r}")
    kinds = dict(_FIRST_COLUMNS)
    for change in TYPE_CHANGES:
        if snapshot >= change.since:
            kinds.update(dict.fromkeys(change.columns, change.kind))
    return tuple((name, kinds[name]) for name in COLUMN_NAMES)


def _check() -> None:
    """The change history names only known columns (a typo would silently change nothing)."""
    for change in TYPE_CHANGES:
        unknown = set(change.columns) - set(COLUMN_NAMES)
        if unknown:
            raise AssertionError(f"TYPE_CHANGES names unknown columns {sorted(unknown)}")


_check()
