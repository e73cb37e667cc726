"""CSV copies of the month's UNLOADed count tables, for curators who work in spreadsheets.

The per-site counts (`<dim>_counts/`) and species lists (`<dim>_species_counts/`) are
published as Redshift UNLOAD parquet parts: the primary format, typed and compact, but a
folder of binary parts that a spreadsheet cannot open. Each table also gets one CSV beside its
folder (`<dim>_counts.csv`), with the same columns and rows in part order, so the two can be
checked against each other. Parts are converted one at a time and the text joined under one
header, so parts of one UNLOAD that differ in integer width need no common schema.

Spreadsheets read `01001` as the number 1001: the GEOID and FIPS columns must be imported as
text (README says so); the CSV holds them as parquet does.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq


def csv_copy(parts: Sequence[bytes], where: str) -> bytes:
    """One CSV of the parquet `parts` of a table (header once, then every part's rows).

    Redshift writes no part for an empty result, and then the table has no columns to name:
    the copy is an empty file. Parts with different column names are not one table, and
    are refused naming `where`.
    """
    sink = io.BytesIO()
    names: list[str] | None = None
    for index, body in enumerate(parts):
        table = pq.read_table(io.BytesIO(body))
        if names is None:
            names = table.column_names
        elif table.column_names != names:
            raise ValueError(
                f"{where}: part {index} has columns {table.column_names}, part 0 has {names}"
            )
        options = pa_csv.WriteOptions(include_header=index == 0)
        pa_csv.write_csv(table, sink, write_options=options)
    return sink.getvalue()
