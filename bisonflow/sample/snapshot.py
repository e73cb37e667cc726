"""A sample snapshot's part files, as GBIF would have published them for a given month.

The local runtime generates one sample and publishes it under any month's prefix
(`bisonflow.local.deploy.upload_snapshot`); GBIF's files of that month had that month's
column types (`bisonflow.gbif.schema`), so each part is rewritten in them. A part already in
the month's schema is published byte for byte.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bisonflow.sample.schema import PART_NAME_FORMAT, conform, snapshot_schema


def month_parts(snapshot_dir: Path, snapshot: dt.date) -> list[tuple[str, bytes]]:
    """(part name, parquet bytes) of every part file in `snapshot_dir`, in the schema GBIF
    published on `snapshot`, in name order."""
    schema = snapshot_schema(snapshot)
    parts = []
    for path in sorted(p for p in Path(snapshot_dir).iterdir() if p.is_file()):
        if pq.read_schema(path).equals(schema, check_metadata=False):
            parts.append((path.name, path.read_bytes()))
        else:
            parts.append((path.name, parquet_bytes(conform(pq.read_table(path), snapshot))))
    return parts


def records_table(records: list[dict[str, Any]], snapshot: dt.date) -> pa.Table:
    """A snapshot table of the month from a few records given as plain values: columns a
    record omits are null, and values are converted to the month's types (a taxon key
    given as 1001 is written "1001" from 2025-08 on, and as the integer before)."""
    schema = snapshot_schema(snapshot)
    columns = {name: pa.array([r.get(name) for r in records]) for name in schema.names}
    for name, values in columns.items():
        if pa.types.is_null(values.type):  # no record gives it: a null column of its type
            columns[name] = pa.nulls(len(records), schema.field(name).type)
    return conform(columns, snapshot)


def write_parts(table: pa.Table, folder: Path, parts: int, first: int = 0) -> list[Path]:
    """Split the table into `parts` files named like GBIF's (000000, 000001, ...), numbered
    from `first`."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, parts + 1).astype(np.int64)
    paths = []
    for i in range(parts):
        path = folder / PART_NAME_FORMAT.format(first + i)
        chunk = table.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i]))
        path.write_bytes(parquet_bytes(chunk))
        paths.append(path)
    return paths


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one parquet file, compressed as the generator writes its parts."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()
