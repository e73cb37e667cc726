"""Reading the US-RIIS master list, and writing its GBIF-annotated copy and the curators' report.

The master list is edited by hand upstream, so columns are found by header name, a UTF-8 BOM
is tolerated, and bad rows are set aside with their line numbers and a reason (for the
curators) rather than failing the month. Values from a controlled vocabulary (locality,
degreeOfEstablishment, kingdom) are accepted in any case and spacing and written in the
dictionary's spelling, because the aggregation SQL compares them as text. The annotated file
is loaded into Redshift by position, so it is always written with exactly ANNOTATED_COLUMNS.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from bisonflow.gbif_api import NameMatch, NameQuery
from bisonflow.riis_schema import (
    ANNOTATED_COLUMNS,
    DEGREES_OF_ESTABLISHMENT,
    RIIS_COLUMNS,
    RIIS_REGIONS,
)

#: Without these a row can be neither resolved, joined to occurrences by region, nor assessed.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "locality",
    "scientificName",
    "kingdom",
    "degreeOfEstablishment",
)
#: kingdom vocabulary of the list, plus the backbone's own spellings of two of them.
KINGDOMS: tuple[str, ...] = (
    "Animalia",
    "Archaea",
    "Bacteria",
    "Chromista",
    "Fungi",
    "Plantae",
    "Protozoa",
    "Virus",
    "Viruses",
)
#: Infraspecific rank markers as the list writes them ("ssp.", not "subsp.") and as others do.
RANK_MARKERS: tuple[str, ...] = ("ssp.", "subsp.", "var.", "f.", "forma")
#: The list writes hybrids with a capital X between words; "×" is the backbone's spelling.
_HYBRID_MARKER = re.compile(r"(?:^|\s)(?:[xX]|×)(?=\s)|×")

#: Columns of the report CSV for the curators: one row per RIIS line that needs a look.
REPORT_COLUMNS: tuple[str, ...] = (
    "line",
    "problem",  # malformed, unresolved or doubtful
    "reason",
    "locality",
    "occurrenceID",
    "scientificName",
    "scientificNameAuthorship",
    "kingdom",
    "matchType",
    "confidence",
    "status",
    "matched_name",
    "gbif_res_taxonkey",
    "gbif_res_scientificname",
)


class RiisFormatError(ValueError):
    """The file cannot be read as a RIIS master list at all (not just some bad rows)."""


@dataclass(frozen=True)
class RiisRecord:
    line: int  # 1-based line on which the record starts (the header is line 1)
    values: dict[str, str]  # RIIS column -> value; columns absent from the file are ""

    @property
    def query(self) -> NameQuery:
        v = self.values
        return NameQuery(v["scientificName"], v["scientificNameAuthorship"], v["kingdom"])

    @property
    def is_hybrid(self) -> bool:
        """A hybrid by its name ("Mentha X piperita") or by the isHybrid column."""
        named = bool(_HYBRID_MARKER.search(self.values["scientificName"]))
        return named or self.values["isHybrid"].strip().upper() in ("TRUE", "YES", "1")

    @property
    def rank_marker(self) -> str:
        """The infraspecific marker in the name ("ssp.", "var.", ...), "" for a species."""
        words = self.values["scientificName"].split()
        return next((w for w in words[2:] if w in RANK_MARKERS), "")


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
        if len(row) != len(header):
            malformed.append(
                Malformed(line, f"has {len(row)} fields, the header has {len(header)}")
            )
            continue
        by_name = dict(zip(header, map(_clean, row), strict=True))
        values = {c: by_name.get(c, "") for c in RIIS_COLUMNS}
        problem = _normalise(values)
        if problem:
            malformed.append(Malformed(line, problem))
        else:
            records.append(RiisRecord(line, values))
    ignored = tuple(name for name in header if name not in RIIS_COLUMNS)
    return RiisParse(records, malformed, ignored)


def annotated_csv(records: Iterable[RiisRecord], matches: Mapping[NameQuery, NameMatch]) -> str:
    """The annotated list as CSV text, header ANNOTATED_COLUMNS; unresolved names left empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANNOTATED_COLUMNS)
    for record in records:
        match = matches[record.query]
        key = "" if match.key is None else str(match.key)
        writer.writerow([record.values[c] for c in RIIS_COLUMNS] + [key, match.name])
    return out.getvalue()


def report_csv(
    records: Iterable[RiisRecord],
    matches: Mapping[NameQuery, NameMatch],
    malformed: Iterable[Malformed],
) -> str:
    """Every line the curators should look at, in line order: malformed rows (left out of the
    annotation), unresolved names (annotated without a key) and doubtful matches (annotated,
    to be checked). Header only when there is nothing to report."""
    rows: list[tuple[int, dict[str, str]]] = []
    for bad in malformed:
        rows.append((bad.line, {"problem": "malformed", "reason": bad.reason}))
    for record in records:
        match = matches[record.query]
        if match.resolved and not match.doubtful:
            continue
        rows.append((record.line, _report_values(record, match)))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    for line, values in sorted(rows, key=lambda item: item[0]):
        writer.writerow({"line": str(line), **values})
    return out.getvalue()


def _report_values(record: RiisRecord, match: NameMatch) -> dict[str, str]:
    v = record.values
    return {
        "problem": "doubtful" if match.resolved else "unresolved",
        "reason": match.reason,
        "locality": v["locality"],
        "occurrenceID": v["occurrenceID"],
        "scientificName": v["scientificName"],
        "scientificNameAuthorship": v["scientificNameAuthorship"],
        "kingdom": v["kingdom"],
        "matchType": match.match_type,
        "confidence": "" if match.confidence is None else str(match.confidence),
        "status": match.status,
        "matched_name": match.matched_name,
        "gbif_res_taxonkey": "" if match.key is None else str(match.key),
        "gbif_res_scientificname": match.name,
    }


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


def _normalise(values: dict[str, str]) -> str | None:
    """Put a row's names and vocabulary in canonical form in place; the problem if it has one."""
    for column in ("scientificName", "scientificNameAuthorship"):
        values[column] = " ".join(values[column].split())
    name = values["scientificName"]
    if not name:
        return "empty scientificName"
    name_problem = _name_problem(name)
    if name_problem:
        return f"scientificName {name!r} {name_problem}"
    for column, vocabulary in (
        ("locality", RIIS_REGIONS),
        ("degreeOfEstablishment", DEGREES_OF_ESTABLISHMENT),
        ("kingdom", KINGDOMS),
    ):
        canonical = _in_vocabulary(values[column], vocabulary)
        if canonical is None:
            return f"{column} {values[column]!r} is not one of: {'; '.join(vocabulary)}"
        values[column] = canonical
    return None


def _in_vocabulary(value: str, vocabulary: tuple[str, ...]) -> str | None:
    """The vocabulary's spelling of value, ignoring case and spacing; None if it is not there."""
    wanted = " ".join(value.split()).casefold()
    return next((term for term in vocabulary if term.casefold() == wanted), None)


def _name_problem(name: str) -> str | None:
    """What makes a name unusable as a match query; None for a usable one."""
    words = name.split()
    if not name.removeprefix("×")[:1].isalpha():
        return "does not start with a letter"
    if words[-1] in RANK_MARKERS:
        return f"ends with the rank marker {words[-1]!r} (no epithet after it)"
    if len(words) > 1 and words[-1] in ("X", "x", "×"):
        return "ends with a hybrid marker (no epithet after it)"
    return None
