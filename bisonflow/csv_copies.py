"""CSV copies of the month's UNLOADed count tables, for curators who work in spreadsheets.

The per-site counts (`<dim>_counts/`) and species lists (`<dim>_species_counts/`) are
published as Redshift UNLOAD parquet parts: the primary format, typed and compact, but a
folder of binary parts that a spreadsheet cannot open. Each table also gets one CSV beside its
folder (`<dim>_counts.csv`), with the same columns and rows in part order, so the two can be
checked against each other. Parts are converted one at a time and the text joined under one
header, so parts of one UNLOAD that differ in integer width need no common schema; each part
is converted in batches and written out as it goes (a national county species list is 4.5 GB
of text).

Text columns are read dictionary-encoded (as parquet stores them) and decoded with one `take`
per batch: pyarrow's parquet reader materialises a plain string column several times slower
than that (today's 5,000,000-row county list: 4.1 CPU-s for the whole copy, 2.8 s read so;
the CSV writer itself is a tenth of either), and the values, so the text, are the same.

Spreadsheets read `01001` as the number 1001: the GEOID and FIPS columns must be imported as
text (README says so); the CSV holds them as parquet does.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

#: Rows converted to text at a time: about 20 MB of CSV for a species list, whatever the
#: size of the part (a national county list is 50,000,000 rows, 4.5 GB of text).
BATCH_ROWS = 1 << 18
_NO_HEADER = pa_csv.WriteOptions(include_header=False)
#: Batches converted side by side (pyarrow's CSV writer releases the GIL), written in order.
RENDER_THREADS = 2


def csv_copy(parts: Iterable[bytes], where: str, sink: BinaryIO) -> None:
    """Writes one CSV of the parquet `parts` of a table into `sink`: the header once, then
    every part's rows, converted BATCH_ROWS at a time (RENDER_THREADS batches at once) as
    `parts` yields them, so neither the table nor its text is ever whole in memory (`sink`
    is a bisonflow.streamed_objects output in calc_stats). The text is the one
    `pyarrow.csv.write_csv` gives the whole table: every row is rendered on its own.

    Redshift writes no part for an empty result, and then the table has no columns to name:
    the copy is an empty file. Parts with different column names are not one table, and
    are refused naming `where`.
    """
    names: list[str] | None = None
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        rendering: deque[Future[bytes]] = deque()  # in row order
        for index, body in enumerate(parts):
            schema = pq.ParquetFile(io.BytesIO(body)).schema_arrow
            part = pq.ParquetFile(io.BytesIO(body), read_dictionary=_text_columns(schema))
            if names is None:
                names = schema.names
                pa_csv.write_csv(schema.empty_table(), sink)  # the header alone
            elif schema.names != names:
                raise ValueError(
                    f"{where}: part {index} has columns {schema.names}, part 0 has {names}"
                )
            for batch in part.iter_batches(batch_size=BATCH_ROWS):
                rendering.append(pool.submit(_text, batch))
                while len(rendering) > RENDER_THREADS:  # at most RENDER_THREADS + 1 batches
                    sink.write(rendering.popleft().result())
        while rendering:
            sink.write(rendering.popleft().result())


def _text_columns(schema: pa.Schema) -> list[str]:
    """The string columns, which the copy reads dictionary-encoded (see the module docstring)."""
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def _text(batch: pa.RecordBatch) -> bytes:
    """The batch's rows as CSV, its dictionary columns decoded first: pyarrow's CSV writer
    casts a dictionary column itself, at the cost of the slow decode this module avoids."""
    decoded = [
        column.dictionary.take(column.indices) if pa.types.is_dictionary(column.type) else column
        for column in batch.columns
    ]
    sink = io.BytesIO()
    pa_csv.write_csv(
        pa.RecordBatch.from_arrays(decoded, schema=_decoded_schema(batch.schema)),
        sink,
        write_options=_NO_HEADER,
    )
    return sink.getvalue()


def _decoded_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema(
        [f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema]
    )
