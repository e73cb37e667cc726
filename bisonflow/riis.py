"""Reading the US-RIIS master list and writing its GBIF-annotated copy.

The master list is edited by hand upstream, so columns are found by header name, a UTF-8 BOM
is tolerated, and bad rows are set aside with their line numbers (for the curators) rather
than failing the month. The annotated file is loaded into Redshift by position, so it is
always written with exactly ANNOTATED_COLUMNS.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from bisonflow.gbif_api import UNRESOLVED, AcceptedTaxon, NameQuery
from bisonflow.riis_schema import ANNOTATED_COLUMNS, RIIS_COLUMNS, RIIS_REGIONS

#: Without these a row can be neither resolved nor joined to occurrences by region.
REQUIRED_COLUMNS: tuple[str, ...] = ("locality", "scientificName", "kingdom")


class RiisFormatError(ValueError):
    """The file cannot be read as a RIIS master list at all (not just some bad rows)."""


@dataclass(frozen=True)
class RiisRecord:
    line: int  # 1-based line on which the record starts (the header is line 1)
    values: dict[str, str]  # RIIS column -> value; columns absent from the file are ""

    @property
    def query(self) -> NameQuery:
        return NameQuery(self.values["scientificName"], self.values["kingdom"])


@dataclass(frozen=True)
class Malformed:
    line: int
    reason: str


@dataclass(frozen=True)
class RiisParse:
    records: list[RiisRecord]
    malformed: list[Malformed]
    ignored_columns: tuple[str, ...]  # header names that are not RIIS columns


def decode(data: bytes) -> str:
    """UTF-8 (BOM or not); a cp1252 export from a spreadsheet is accepted rather than refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            raise RiisFormatError(
                f"line {line}: not UTF-8 (nor cp1252) text: {exc.reason} at byte {exc.start}"
            ) from None


def parse_riis(text: str) -> RiisParse:
    """Records and malformed rows of a master list, both with their line numbers."""
    rows = _rows_with_lines(text.removeprefix("\ufeff"))
    header_line = next(rows, None)
    if header_line is None:
        raise RiisFormatError("the RIIS file is empty (no header line)")
    header = _check_header(header_line[1])
    records: list[RiisRecord] = []
    malformed: list[Malformed] = []
    for line, row in rows:
        problem = _row_problem(row, header)
        if problem:
            malformed.append(Malformed(line, problem))
            continue
        by_name = dict(zip(header, map(_clean, row), strict=True))
        records.append(RiisRecord(line, {c: by_name.get(c, "") for c in RIIS_COLUMNS}))
    ignored = tuple(name for name in header if name not in RIIS_COLUMNS)
    return RiisParse(records, malformed, ignored)


def annotated_csv(
    records: Iterable[RiisRecord], resolutions: Mapping[NameQuery, AcceptedTaxon]
) -> str:
    """The annotated list as CSV text, header ANNOTATED_COLUMNS, unresolved taxa left empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANNOTATED_COLUMNS)
    for record in records:
        taxon = resolutions.get(record.query, UNRESOLVED)
        key = "" if taxon.key is None else str(taxon.key)
        writer.writerow([record.values[c] for c in RIIS_COLUMNS] + [key, taxon.name])
    return out.getvalue()


def _clean(value: str) -> str:
    """Trimmed, line breaks as LF: a bare CR is not quoted by csv.writer and would split a row."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _rows_with_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with the line each starts on (quoted fields may span lines); blank lines skipped."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise RiisFormatError(f"line {start}: unreadable CSV: {exc}") from None
        if row:
            yield start, row
        start = reader.line_num + 1


def _check_header(names: list[str]) -> list[str]:
    header = [name.strip().removeprefix("\ufeff") for name in names]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise RiisFormatError(f"line 1: duplicate column(s) in header: {', '.join(duplicates)}")
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise RiisFormatError(
            f"line 1: header lacks required column(s) {', '.join(missing)}; found {header}"
        )
    return header


def _row_problem(row: list[str], header: list[str]) -> str | None:
    if len(row) != len(header):
        return f"has {len(row)} fields, the header has {len(header)}"
    values = dict(zip(header, row, strict=True))
    if not values["scientificName"].strip():
        return "empty scientificName"
    locality = values["locality"].strip()
    if locality not in RIIS_REGIONS:
        return f"locality {locality!r} is not one of {', '.join(RIIS_REGIONS)}"
    return None
