"""What is new this month: listed species recorded in a county for the first time.

Early detection is the question curators ask of each month: has a species on the US-RIIS
list (established, invasive, ...) been recorded in a county where it had not been recorded?
GBIF's monthly snapshots are cumulative (each holds every record published so far), so a
(county, species) pair present in this month's county species list and absent from the
previous published month's (the latest earlier month with a marker) is a first record
there, or one newly georeferenced, identified or published. The reverse, a listed pair
present last month and gone now, is a loss: records withdrawn, re-identified or moved,
which curators also want to see.

"Recorded" means at least one occurrence (any row of `county_species_counts`), not the
PAM's presence threshold: one record of an invasive species in a new county is exactly the
signal early detection looks for, and a threshold would hide it until records pile up.
A gain is listed by this month's assessment; a loss by the assessment the previous month
published (the species may no longer be recorded anywhere this month). The tiers come from
bisonflow.dimensions, never spelled here.

Species are compared by `specieskey`, the accepted species (bisonflow.dimensions.SPECIES_KEY).
A month published before that change has a `taxonkey` column instead, the records' own keys
(a subspecies' or a synonym's key among them); it is read as the species column, and the
comparison says so (`note` in the summary): pairs whose old key was a subspecies' or
synonym's show as lost, and their species may show as new, once.

Everything here is pure: tables in, tables out (bisonflow.graphics.figures.changes_figure draws
them); the previous published month is found through its marker
(bisonflow.steps.publish.previous_published, called by bisonflow.steps.month_record).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from bisonflow.dimensions import COUNTY, LISTED_ASSESSMENTS, PRESUMED_NATIVE, SPECIES_KEY

#: The tiers of the list, least severe first (presumed native is not a listing).
LISTED: tuple[str, ...] = LISTED_ASSESSMENTS
#: The county species-list columns a comparison reads (all text but the count).
LABELS: tuple[str, ...] = (*COUNTY.label_columns[:3], SPECIES_KEY, "species", "riis_assessment")
#: The species column of county species lists published before species were identified by
#: `specieskey`: the records' own taxon keys.
LEGACY_SPECIES_COLUMN = "taxonkey"
#: Schema metadata `county_table` leaves on a table read from such a list.
_LEGACY = {b"species_column": LEGACY_SPECIES_COLUMN.encode()}
#: What the summary says when the previous month is such a list.
LEGACY_NOTE = (
    f"the previous month identified species by the records' own {LEGACY_SPECIES_COLUMN} (a "
    f"subspecies' or a synonym's key among them), this month by the accepted {SPECIES_KEY}: "
    "pairs whose old key was a subspecies' or a synonym's show as lost, and their species "
    "may show as new, in this first comparison only"
)
OCC_COUNT = "occ_count"
#: Columns of the county-by-tier change table.
CHANGE_COLUMNS: tuple[str, ...] = (*COUNTY.label_columns[:3], "riis_assessment", "gained", "lost")
#: Rows of a part read at a time (a national part is millions of rows of seven text columns).
BATCH_ROWS = 1 << 18
#: No species: the first month's comparison reads a list's columns and none of its rows.
_NO_SPECIES = pa.array([], pa.string())
_KEY_SEPARATOR = "\x1f"  # between geoid and species key in a pair key: in neither
#: A parquet part as its bytes, or as a seekable file that reads only what is asked of it
#: (bisonflow.stats.s3_ranged.RangedObject: the footer, then the columns read).
Part = bytes | BinaryIO | io.RawIOBase


@dataclass(frozen=True)
class Changes:
    """This month against the previous published one (None on the first month)."""

    previous_month: str | None
    new_records: pa.Table  # LABELS + occ_count: listed pairs with no record last month
    lost_records: pa.Table  # LABELS + occ_count, last month's: listed pairs gone this month
    county_changes: pa.Table  # CHANGE_COLUMNS, only counties with a gain or a loss
    note: str | None = None  # LEGACY_NOTE when the previous month keyed species otherwise

    def summary(self, reason: str | None = None) -> dict[str, Any]:
        """For `_SUCCESS` and the step output: counts by tier, or why there is nothing."""
        if self.previous_month is None:
            return {"previous_month": None, "reason": reason or "no earlier month"}
        tiers = self.new_records["riis_assessment"].to_pylist()
        geoid = COUNTY.site_column
        summary = {
            "previous_month": self.previous_month,
            "new_county_records": {tier: tiers.count(tier) for tier in LISTED},
            "lost_county_records": self.lost_records.num_rows,
            "counties_gained": len(set(self.new_records[geoid].to_pylist())),
            "counties_lost": len(set(self.lost_records[geoid].to_pylist())),
        }
        return summary if self.note is None else summary | {"note": self.note}


def county_table(parts: Iterable[Part], where: str, species: pa.Array | None = None) -> pa.Table:
    """LABELS (as text) and occ_count (int64) of a county species list's parquet parts;
    rows without a county or a species are not records of a species in a county. A list
    published before species were keyed by specieskey has its `taxonkey` read as the species
    column, and the table says so in its schema metadata (`compare` reports it).

    `species`: only the rows of these species keys. `compare` needs no others than the
    species listed in either month (`compare_lists`), a tenth of a national list's
    50,000,000 rows, so each part is read BATCH_ROWS at a time and filtered as it is read.
    """
    schema = pa.schema([(name, pa.string()) for name in LABELS] + [(OCC_COUNT, pa.int64())])
    tables = []
    legacy = False
    for body in parts:
        part = _parquet(body)
        columns = _source_columns(part.schema_arrow.names, schema.names, where)
        legacy = legacy or columns[SPECIES_KEY] != SPECIES_KEY
        if species is not None and not len(species):
            continue  # no row can match (a first month): its columns are checked, that is all
        for batch in part.iter_batches(batch_size=BATCH_ROWS, columns=list(columns.values())):
            read = pa.table(
                {
                    name: pc.cast(_decoded(batch[source]), schema.field(name).type)
                    for name, source in columns.items()
                },
                schema,
            )
            keep = pc.and_(
                pc.and_(pc.is_valid(read[COUNTY.site_column]), pc.is_valid(read[SPECIES_KEY])),
                pc.greater(pc.fill_null(read[OCC_COUNT], 0), 0),
            )
            if species is not None:
                keep = pc.and_(keep, pc.is_in(read[SPECIES_KEY], value_set=species))
            tables.append(read.filter(keep))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    return table.replace_schema_metadata(_LEGACY if legacy else None)


def listed_species(parts: Iterable[Part], where: str) -> pa.Array:
    """The species keys a county species list has a listed row of (any tier): with the
    other month's, every species `compare` looks at."""
    found = [pa.array([], pa.string())]
    for body in parts:
        part = _parquet(body)
        names = [SPECIES_KEY, "riis_assessment"]
        columns = _source_columns(part.schema_arrow.names, names, where)
        for batch in part.iter_batches(batch_size=BATCH_ROWS, columns=list(columns.values())):
            read = pa.table({name: _decoded(batch[source]) for name, source in columns.items()})
            listed = _listed(read)[SPECIES_KEY]
            found.append(pc.unique(pc.cast(listed, pa.string()).combine_chunks()))
    return pc.unique(pa.concat_arrays(found).drop_null())


@dataclass(frozen=True)
class CountyList:
    """A month's county species list, as the parquet parts `parts()` yields afresh on each
    call (read once for its listed species, once for its rows), and where it is."""

    parts: Callable[[], Iterable[Part]]
    where: str


def compare_lists(
    current: CountyList, previous: CountyList | None, previous_month: str | None
) -> Changes:
    """`compare` on two months' county species lists, reading only the rows of species
    listed in either month (each list twice, part by part), which give the same gains and
    losses as the whole lists: a listed pair of one month is looked up among the other
    month's rows of the same species."""
    if previous is None:
        return compare(county_table(current.parts(), current.where, _NO_SPECIES), None, None)
    species = pc.unique(
        pa.concat_arrays(
            [listed_species(month.parts(), month.where) for month in (current, previous)]
        )
    )
    return compare(
        county_table(current.parts(), current.where, species),
        county_table(previous.parts(), previous.where, species),
        previous_month,
    )


def compare(current: pa.Table, previous: pa.Table | None, previous_month: str | None) -> Changes:
    """Gains and losses of listed (county, species) pairs; no previous table: nothing to
    compare, and every table is empty (the first month)."""
    if previous is None:
        empty = _records(current.slice(0, 0))
        return Changes(None, empty, empty, _county_changes(empty, empty))
    new = _records(
        _listed(current).filter(pc.invert(pc.is_in(_pairs(_listed(current)), _pairs(previous))))
    )
    lost = _records(
        _listed(previous).filter(pc.invert(pc.is_in(_pairs(_listed(previous)), _pairs(current))))
    )
    note = LEGACY_NOTE if previous.schema.metadata == _LEGACY else None
    return Changes(previous_month, new, lost, _county_changes(new, lost), note)


def csv_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pa_csv.write_csv(table, sink)
    return sink.getvalue()


def _source_columns(names: list[str], wanted: list[str], where: str) -> dict[str, str]:
    """Column name -> the part's column holding it (a legacy list's `taxonkey` holds the
    species); a missing one is refused naming `where`."""
    legacy = SPECIES_KEY not in names and LEGACY_SPECIES_COLUMN in names
    source = {n: LEGACY_SPECIES_COLUMN if legacy and n == SPECIES_KEY else n for n in wanted}
    missing = [n for n, column in source.items() if column not in names]
    if missing:
        shown = [SPECIES_KEY if legacy and n == LEGACY_SPECIES_COLUMN else n for n in names]
        raise ValueError(f"{where} lacks column(s) {missing}; has {shown}")
    return source


def _parquet(part: Part) -> pq.ParquetFile:
    return pq.ParquetFile(io.BytesIO(part) if isinstance(part, bytes) else part)


def _decoded(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return pc.cast(column, column.type.value_type)
    return column


def _listed(table: pa.Table) -> pa.Table:
    """Rows with a listing: any assessment but presumed native, so a previous month published
    under an earlier vocabulary still has its listed rows compared."""
    assessment = table["riis_assessment"]
    return table.filter(pc.and_(pc.is_valid(assessment), pc.not_equal(assessment, PRESUMED_NATIVE)))


def _pairs(table: pa.Table) -> pa.Array:
    joined = pc.binary_join_element_wise(
        table[COUNTY.site_column], table[SPECIES_KEY], _KEY_SEPARATOR
    )
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _records(table: pa.Table) -> pa.Table:
    """One row per county, species and tier (counts summed), in state, county, tier order."""
    grouped = table.group_by(list(LABELS)).aggregate([(OCC_COUNT, "sum")])
    grouped = grouped.rename_columns([*LABELS, OCC_COUNT]).select([*LABELS, OCC_COUNT])
    return grouped.sort_by(
        [
            ("state", "ascending"),
            (COUNTY.site_column, "ascending"),
            ("riis_assessment", "ascending"),
            ("species", "ascending"),
        ]
    )


def _county_changes(new: pa.Table, lost: pa.Table) -> pa.Table:
    keys = [*COUNTY.label_columns[:3], "riis_assessment"]
    counts: dict[tuple, list[int]] = {}
    for column, table in enumerate((new, lost)):
        for row in table.select(keys).to_pylist():
            counts.setdefault(tuple(row[k] for k in keys), [0, 0])[column] += 1
    rows = sorted(counts.items())
    columns = list(zip(*[(*key, g, lost_n) for key, (g, lost_n) in rows], strict=True)) or [
        () for _ in CHANGE_COLUMNS
    ]
    types = [pa.string()] * len(keys) + [pa.int64(), pa.int64()]
    return pa.table(
        {
            name: pa.array(list(values), type=t)
            for name, values, t in zip(CHANGE_COLUMNS, columns, types, strict=True)
        }
    )
