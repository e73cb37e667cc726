"""Reading the US-RIIS master list, and writing its GBIF-annotated copy and the curators' report.

The master list is edited by hand upstream, so columns are found by header name (ignoring
case, as Redshift does), a UTF-8 BOM is tolerated, and bad rows are set aside with their line
numbers and a reason (for the curators) rather than failing the month. A stray quote is the
one mistake a CSV reader cannot see: the quoted field it opens runs on over the line breaks
and takes whole rows into one value. A row whose quoted field holds lines that are whole rows
themselves is therefore reported where the quote opened, and the lines after it read again.
Values from a controlled vocabulary (locality, degreeOfEstablishment, kingdom) are accepted in
any case and spacing and written in the dictionary's spelling, because the aggregation SQL
compares them as text. The annotated file is loaded into Redshift by position, so it is
always written with exactly ANNOTATED_COLUMNS.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from bisonflow.gbif.species_api import NameMatch, NameQuery
from bisonflow.riis.columns import (
    ANNOTATED_COLUMNS,
    DEGREES_OF_ESTABLISHMENT,
    RESOLVED_COLUMNS,
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
    #: header names that are no RIIS column: their values are not in the annotated list
    unknown_columns: tuple[str, ...]
    #: RIIS columns the header lacks: written empty in the annotated list
    missing_columns: tuple[str, ...]


#: RIIS column by its name case-folded: Redshift folds the annotated table's column names to
#: lower case (Database Developer Guide, "enable_case_sensitive_identifier": false by default,
#: and identifiers are then converted to lowercase), so two names that differ only in case
#: could not both be loaded, and the project's earlier spellings ("gbif_taxonKey",
#: "update_remarks", ...) are read as USGS's.
_COLUMN_BY_FOLDED_NAME: dict[str, str] = {c.casefold(): c for c in RIIS_COLUMNS}


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
    lines = io.StringIO(text.removeprefix("\ufeff"), newline="").readlines()
    header_line, header, body_start = _header(lines)
    columns, unknown = _columns(header_line, header)
    shape = _RowShape(len(header), columns.index("locality"))
    records: list[RiisRecord] = []
    malformed: list[Malformed] = []
    for item in _body_rows(lines, body_start, shape):
        if isinstance(item, Malformed):
            malformed.append(item)
            continue
        line, row = item
        if len(row) != len(header):
            malformed.append(
                Malformed(line, f"has {len(row)} fields, the header has {len(header)}")
            )
            continue
        by_column = {c: _clean(v) for c, v in zip(columns, row, strict=True) if c is not None}
        values = {c: by_column.get(c, "") for c in RIIS_COLUMNS}
        problem = _normalise(values)
        if problem:
            malformed.append(Malformed(line, problem))
        else:
            records.append(RiisRecord(line, values))
    missing = tuple(c for c in RIIS_COLUMNS if c not in columns)
    return RiisParse(records, malformed, unknown, missing)


def annotated_csv(records: Iterable[RiisRecord], matches: Mapping[NameQuery, NameMatch]) -> str:
    """The annotated list as CSV text, header ANNOTATED_COLUMNS; unresolved names left empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ANNOTATED_COLUMNS)
    for record in records:
        writer.writerow(
            [record.values[c] for c in RIIS_COLUMNS] + resolved_values(matches[record.query])
        )
    return out.getvalue()


def resolved_values(match: NameMatch) -> list[str]:
    """RESOLVED_COLUMNS of one match, in order; all empty when the name is unresolved (a
    doubtful match above species may have no species key: that one is empty)."""
    if match.key is None:
        return [""] * len(RESOLVED_COLUMNS)
    keys = (match.key, match.species_key, match.usage_key)
    key, species_key, usage_key = ("" if k is None else str(k) for k in keys)
    return [key, match.name, match.rank, species_key, usage_key]


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


@dataclass(frozen=True)
class _RowShape:
    """What a line that is a whole row of the list looks like on its own."""

    width: int  # fields in the header
    locality_at: int  # position of the locality column

    def is_whole_row(self, line: str) -> bool:
        """As many fields as the header and a region code as locality: a line inside a quoted
        value that looks so is a row a stray quote took in, not a remark that runs on."""
        row = next(csv.reader([line]), [])
        return (
            len(row) == self.width
            and _in_vocabulary(row[self.locality_at], RIIS_REGIONS) is not None
        )


def _header(lines: list[str]) -> tuple[int, list[str], int]:
    """The header's line number, its names, and the index of the first line after it."""
    reader = csv.reader(lines)
    try:
        for row in reader:
            if row:
                return reader.line_num, row, reader.line_num
    except csv.Error as exc:
        raise RiisFormatError(f"line {reader.line_num}: unreadable CSV header: {exc}") from None
    raise RiisFormatError("the RIIS file is empty (no header line)")


def _columns(line: int, names: list[str]) -> tuple[list[str | None], tuple[str, ...]]:
    """The RIIS column at each position of the header (None: not a RIIS column) and the
    names that are no RIIS column (a blank name is reported by its position)."""
    header = [name.strip().removeprefix("\ufeff").strip() for name in names]
    folded = [name.casefold() for name in header if name]
    duplicates = sorted({n for n in header if n and folded.count(n.casefold()) > 1})
    if duplicates:
        raise RiisFormatError(
            f"line {line}: duplicate column(s) in header (case ignored, as Redshift ignores "
            f"it): {', '.join(duplicates)}"
        )
    columns = [_COLUMN_BY_FOLDED_NAME.get(name.casefold()) for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise RiisFormatError(
            f"line {line}: header lacks required column(s) {', '.join(missing)}; found {header}"
        )
    unknown = tuple(
        name or f"(column {position}, no name)"
        for position, (name, column) in enumerate(zip(header, columns, strict=True), start=1)
        if column is None
    )
    return columns, unknown


def _body_rows(
    lines: list[str], first: int, shape: _RowShape
) -> Iterator[tuple[int, list[str]] | Malformed]:
    """CSV rows with the line each starts on (quoted fields may span lines; blank lines are
    skipped), and a Malformed where a quote never closed where it should have: then the
    lines after the one the quote opened on are read again, so the rows it took in count."""
    while first < len(lines):
        reader = csv.reader(itertools.islice(lines, first, None))
        start = first
        resume = None
        try:
            for row in reader:
                end = first + reader.line_num
                damage = _quote_damage(lines, start, end, shape) if end - start > 1 else None
                if damage is not None:
                    yield damage
                    resume = damage.line  # the index of the line after the quote opened
                    break
                if row:
                    yield start + 1, row
                start = end
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit(): a runaway quote
            bad = _unreadable(lines, start, first + reader.line_num, exc)
            yield bad
            resume = bad.line
        if resume is None:
            return
        first = resume


def _quote_damage(lines: list[str], start: int, end: int, shape: _RowShape) -> Malformed | None:
    """The row on lines[start:end], if a quote in it never closed where it should have: its
    quoted value holds lines that are whole rows, or runs to the end of the file."""
    swallowed = [i for i in range(start + 1, end) if shape.is_whole_row(lines[i])]
    if swallowed:
        opened = _open_quote_line(lines, start, swallowed[0])
        taken = f"{len(swallowed)} whole row(s) ({_line_numbers(swallowed)})"
        ends = f"runs to line {end} and takes in {taken}"
    elif end == len(lines):
        opened = _open_quote_line(lines, start, end)
        ends = "runs to the end of the file"
    else:
        return None
    if opened is None:
        return None
    return _unclosed(start, opened, ends)


def _unreadable(lines: list[str], start: int, end: int, exc: csv.Error) -> Malformed:
    opened = _open_quote_line(lines, start, max(end, start + 1))
    if opened is not None:
        return _unclosed(start, opened, f"is never closed ({exc})")
    return Malformed(start + 1, f"unreadable CSV: {exc}")


def _unclosed(start: int, opened: int, ends: str) -> Malformed:
    """A Malformed on the (1-based) line where the quote opened; its line number is also the
    index of the line after it, where reading starts again."""
    began = f" (the row began on line {start + 1})" if opened > start else ""
    return Malformed(
        opened + 1,
        f"unclosed quote: the quoted field opened on line {opened + 1}{began} {ends}; "
        f"the lines after line {opened + 1} are read as rows",
    )


def _line_numbers(indexes: list[int], shown: int = 5) -> str:
    """1-based line numbers of line indexes, the first few of many."""
    numbers = ", ".join(str(i + 1) for i in indexes[:shown])
    return f"lines {numbers}" + (
        f" and {len(indexes) - shown} more" if len(indexes) > shown else ""
    )


def _open_quote_line(lines: list[str], start: int, stop: int) -> int | None:
    """Index of the line on which the quoted field still open after lines[start:stop] opened;
    None if no quoted field is open there.

    The rules are the csv module's default dialect (RFC 4180's): a quote opens a quoted field
    only at the start of a field, "" inside one is a literal quote, and a quote that ends one
    may be followed by more text before the delimiter.
    """
    in_quotes = after_quote = False
    at_field_start = True
    opened = None
    for index in range(start, stop):
        for char in lines[index]:
            if in_quotes:
                if char == '"':
                    in_quotes, after_quote = False, True
                continue
            if char == '"' and at_field_start:
                in_quotes, opened, at_field_start = True, index, False
            elif char == '"' and after_quote:  # "" inside a quoted field: still the same field
                in_quotes, after_quote = True, False
            else:
                at_field_start, after_quote = char in ",\r\n", False
    return opened if in_quotes else None


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
