"""The parquet schema of GBIF's monthly occurrence snapshot on AWS, for a given month.

The columns and their GBIF types by snapshot date are `bisonflow.gbif.schema`'s (from GBIF's
`aws-public-data.md`, sections "Schema" and "Change history"); this module only says how
each GBIF type is written as parquet, and converts a table between months' schemas so one
generated sample can be published as any month's snapshot.

Arrow types: GBIF's Integer is 32-bit and BigInt 64-bit (Athena `int` and `bigint` in the
page's DDL), Double 64-bit, String array a list of strings. Not stated by GBIF, so chosen:
timestamps are microsecond timestamps without time zone (DuckDB and Redshift read them as
TIMESTAMP), and every column is nullable, as Hive writes parquet.

Conversions for months before a type change (also chosen, GBIF does not describe the old
values): a timestamp as a string is ISO 8601 without zone ("2021-03-04T10:00:00"), GBIF's
description of eventDate; a string array as a string is its items joined by " | ", the
separator Darwin Core recommends for lists, and an empty array is null.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from bisonflow.gbif.schema import Kind, snapshot_columns

#: How each GBIF column type is written as parquet.
ARROW_TYPES: dict[Kind, pa.DataType] = {
    Kind.STRING: pa.string(),
    Kind.INTEGER: pa.int32(),
    Kind.BIGINT: pa.int64(),
    Kind.DOUBLE: pa.float64(),
    Kind.TIMESTAMP: pa.timestamp("us"),
    Kind.STRING_ARRAY: pa.list_(pa.string()),
}
#: Items of a string array written as one string (months before 2022-05).
LIST_SEPARATOR = " | "
TIMESTAMP_TEXT = "%Y-%m-%dT%H:%M:%S"

#: Part files in a snapshot's occurrence.parquet/ folder are named 000000, 000001, ...
#: (no extension), as in GBIF's example `occurrence/2021-04-13/occurrence.parquet/000000`.
PART_NAME_FORMAT = "{:06d}"


def snapshot_schema(snapshot: dt.date) -> pa.Schema:
    """The parquet schema of the snapshot GBIF published on `snapshot`."""
    return pa.schema([(name, ARROW_TYPES[kind]) for name, kind in snapshot_columns(snapshot)])


def conform(columns: pa.Table | dict[str, pa.Array], snapshot: dt.date) -> pa.Table:
    """The columns as `snapshot_schema(snapshot)`: every column converted to the month's type
    and in the files' order. A column the schema has and `columns` lacks is an error."""
    schema = snapshot_schema(snapshot)
    if isinstance(columns, pa.Table):
        columns = {name: columns[name] for name in columns.column_names}
    missing = [name for name in schema.names if name not in columns]
    if missing:
        raise ValueError(f"columns {missing} are missing")
    arrays = [_convert(columns[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _convert(values: pa.Array | pa.ChunkedArray, target: pa.DataType) -> pa.Array | pa.ChunkedArray:
    source = values.type
    if source == target:
        return values
    if pa.types.is_timestamp(source) and pa.types.is_string(target):
        seconds = pc.cast(values, pa.timestamp("s"), safe=False)  # %S would add fractions
        return pc.strftime(seconds, format=TIMESTAMP_TEXT)
    if pa.types.is_list(source) and pa.types.is_string(target):
        joined = pc.binary_join(values, LIST_SEPARATOR)
        empty = pc.equal(pc.list_value_length(values), 0)
        return pc.if_else(empty, pa.scalar(None, pa.string()), joined)
    if pa.types.is_string(source) and pa.types.is_list(target):
        return pc.split_pattern(values, LIST_SEPARATOR)
    return pc.cast(values, target)  # numbers <-> their text, ISO text -> timestamp
