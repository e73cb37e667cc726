"""COPY and UNLOAD statements read into `CopyStmt` and `UnloadStmt`: sqlglot cannot express
them (they name S3 objects and options of Redshift's own), so their options are read here
token by token; the engine's commands (`bisonflow.local.redshift.commands.copy` and
`.unload`) carry them out. Options that only matter on AWS (credentials, region, tuning) are
accepted and unused; an option the stand-in does not know is refused, naming it."""

from __future__ import annotations

import re
from typing import Required, TypedDict

from sqlglot import exp

from bisonflow.local.redshift.parsed_sql import CopyStmt, UnloadStmt, UnsupportedSql
from bisonflow.local.redshift.sql_text import NAME, STRING, split_name, unquote
from bisonflow.local.redshift.sql_transpile import parse_sql, to_duckdb_expression

__all__ = ["parse_copy", "parse_unload"]

_QNAME = rf"{NAME}(?:\s*\.\s*{NAME}){{0,2}}"
_COPY = re.compile(
    rf"^\s*COPY\s+(?P<table>{_QNAME})\s*(?:\((?P<cols>[^)]*)\))?\s*FROM\s+(?P<uri>{STRING})"
    r"(?P<rest>.*)$",
    re.I | re.S,
)
_UNLOAD = re.compile(
    rf"^\s*UNLOAD\s*\(\s*(?P<query>{STRING})\s*\)\s*TO\s+(?P<uri>{STRING})(?P<rest>.*)$",
    re.I | re.S,
)
_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[^\s'(),]+))")


def _tokens(text: str) -> list[tuple[str, str]]:
    """The options' tokens: (kind, text), kind "str" (a literal), "punct" or "word"."""
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            if text[pos:].strip():
                raise UnsupportedSql(f"cannot read options near {text[pos : pos + 30]!r}")
            break
        pos = match.end()
        kind = match.lastgroup or "word"
        out.append((kind, match.group(kind)))
    return out


class _Options:
    """A cursor over COPY/UNLOAD option tokens: `NAME [AS] value` and bare flags."""

    def __init__(self, text: str, command: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.command = command

    def done(self) -> bool:
        return self.pos >= len(self.tokens)

    def peek_word(self) -> str | None:
        if self.done():
            return None
        kind, value = self.tokens[self.pos]
        return value.upper() if kind == "word" else None

    def word(self) -> str:
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind != "word":
            raise UnsupportedSql(f"{self.command}: expected an option name, got {value!r}")
        return value.upper()

    def value(self, name: str) -> str:
        """The option's argument after an optional AS: a string literal or a bare word."""
        if self.peek_word() == "AS":
            self.pos += 1
        if self.done():
            raise UnsupportedSql(f"{self.command}: option {name} needs a value")
        kind, value = self.tokens[self.pos]
        self.pos += 1
        if kind == "str":
            return unquote(value)
        if kind == "word":
            return value
        raise UnsupportedSql(f"{self.command}: option {name} needs a value, got {value!r}")

    def optional_value(self) -> str | None:
        if not self.done() and self.tokens[self.pos][0] == "str":
            return self.value("")
        return None


#: COPY/UNLOAD options that only matter on AWS (credentials, region, tuning): accepted, unused.
_IGNORED_WITH_VALUE = {
    "IAM_ROLE",
    "CREDENTIALS",
    "REGION",
    "ACCESS_KEY_ID",
    "SECRET_ACCESS_KEY",
    "SESSION_TOKEN",
    "MAXERROR",
    "COMPUPDATE",
    "STATUPDATE",
    "DATEFORMAT",
    "TIMEFORMAT",
    "ENCODING",
    "MAXFILESIZE",
    "ROWGROUPSIZE",
    "KMS_KEY_ID",
}
_IGNORED_FLAGS = {
    "TRUNCATECOLUMNS",
    "TRIMBLANKS",
    "ACCEPTANYDATE",
    "ROUNDEC",
    "FILLRECORD",
    "EXPLICIT_IDS",
    "ENCRYPTED",
    "IGNOREBLANKLINES",
}


class _CopyFlags(TypedDict, total=False):
    """The CopyStmt fields COPY's options set: typed, so `CopyStmt(**flags)` is checked
    field by field."""

    ignore_header: int
    empty_as_null: bool
    blanks_as_null: bool
    null_as: str
    compression: str


class _UnloadSettings(TypedDict, total=False):
    """The UnloadStmt fields UNLOAD's options set (typed as _CopyFlags is)."""

    file_format: Required[str]
    options: Required[dict[str, str]]
    allow_overwrite: bool
    clean_path: bool
    parallel: bool
    header: bool
    manifest: bool
    delimiter: str
    extension: str
    null_as: str


def parse_copy(text: str) -> CopyStmt:
    """COPY table [(columns)] FROM 's3://...' [options] as a CopyStmt, with Redshift's
    defaults for what it leaves out."""
    match = _COPY.match(text)
    if not match:
        raise UnsupportedSql("cannot read COPY: expected COPY table [(cols)] FROM 's3://...'")
    schema, table = split_name(match.group("table"))
    cols = match.group("cols")
    columns = None
    if cols is not None:
        columns = tuple(split_name(c)[1] for c in cols.split(",") if c.strip())
    uri = unquote(match.group("uri"))
    opts = _Options(match.group("rest"), "COPY")
    file_format = "TEXT"
    delimiter: str | None = None
    quote: str | None = None
    flags: _CopyFlags = {}
    while not opts.done():
        name = opts.word()
        if name == "FORMAT":
            file_format = opts.value(name).upper()
            if file_format not in ("CSV", "PARQUET", "SHAPEFILE"):
                raise UnsupportedSql(
                    f"COPY FORMAT {file_format} is not supported by the local emulator"
                )
        elif name in ("CSV", "PARQUET", "SHAPEFILE"):
            file_format = name
        elif name == "QUOTE":
            quote = opts.value(name)
        elif name == "DELIMITER":
            delimiter = opts.value(name)
        elif name == "IGNOREHEADER":
            flags["ignore_header"] = int(opts.value(name))
        elif name == "EMPTYASNULL":
            flags["empty_as_null"] = True
        elif name == "BLANKSASNULL":
            flags["blanks_as_null"] = True
        elif name == "NULL":
            flags["null_as"] = opts.value(name)
        elif name in ("GZIP", "ZSTD"):
            flags["compression"] = name.lower()
        elif name == "SIMPLIFY":
            # SIMPLIFY [AUTO] [tolerance] only shrinks geometries over Redshift's 1 MB limit.
            if opts.peek_word() == "AUTO":
                opts.pos += 1
            if re.fullmatch(r"[0-9.eE+-]+", opts.peek_word() or ""):
                opts.pos += 1
        elif name == "ACCEPTINVCHARS":
            opts.optional_value()
        elif name in _IGNORED_WITH_VALUE:
            opts.value(name)
        elif name not in _IGNORED_FLAGS:
            raise UnsupportedSql(f"COPY option {name} is not supported by the local emulator")
    # Redshift's defaults: CSV is comma-separated with double quotes; plain text is
    # pipe-delimited without quoting.
    if delimiter is None:
        delimiter = "," if file_format == "CSV" else "|"
    if quote is None:
        quote = '"' if file_format == "CSV" else ""
    return CopyStmt(
        schema=schema,
        table=table,
        columns=columns,
        uri=uri,
        file_format=file_format,
        delimiter=delimiter,
        quote=quote,
        **flags,
    )


def parse_unload(text: str) -> UnloadStmt:
    """UNLOAD ('query') TO 's3://...' [options] as an UnloadStmt, every option named kept in
    `options` so `unload_rules` can refuse the combinations Redshift refuses."""
    match = _UNLOAD.match(text)
    if not match:
        raise UnsupportedSql("cannot read UNLOAD: expected UNLOAD ('query') TO 's3://...'")
    query = unquote(match.group("query"))
    parsed = parse_sql(query)
    if not isinstance(parsed, exp.Query):
        raise UnsupportedSql("UNLOAD needs a SELECT query")
    uri = unquote(match.group("uri"))
    opts = _Options(match.group("rest"), "UNLOAD")
    given: dict[str, str] = {}
    settings: _UnloadSettings = {"file_format": "TEXT", "options": given}
    while not opts.done():
        name = opts.word()
        given[name] = ""
        if name == "FORMAT":
            fmt = opts.value(name).upper()
            if fmt not in ("CSV", "PARQUET", "JSON"):
                raise UnsupportedSql(f"UNLOAD FORMAT {fmt} is not supported by the local emulator")
            settings["file_format"] = given[name] = fmt
        elif name in ("CSV", "PARQUET", "JSON"):
            settings["file_format"] = given["FORMAT"] = name
            del given[name]
        elif name == "ALLOWOVERWRITE":
            settings["allow_overwrite"] = True
        elif name == "CLEANPATH":
            settings["clean_path"] = True
        elif name == "PARALLEL":
            flag = (
                opts.value(name).upper()
                if opts.peek_word() in ("ON", "OFF", "TRUE", "FALSE")
                else "ON"
            )
            settings["parallel"] = flag in ("ON", "TRUE")
        elif name == "HEADER":
            settings["header"] = True
        elif name == "MANIFEST":
            settings["manifest"] = True
            if opts.peek_word() == "VERBOSE":
                raise UnsupportedSql("UNLOAD MANIFEST VERBOSE is not supported by the emulator")
        elif name == "DELIMITER":
            settings["delimiter"] = given[name] = opts.value(name)
        elif name == "EXTENSION":
            settings["extension"] = given[name] = opts.value(name).lstrip(".")
        elif name == "NULL":
            settings["null_as"] = given[name] = opts.value(name)
        elif name == "FIXEDWIDTH":
            given[name] = opts.value(name)  # refused later, by rule or as not emulated
        elif name in ("ADDQUOTES", "ESCAPE", "GZIP", "BZIP2", "ZSTD"):
            continue  # likewise: unload_rules
        elif name in _IGNORED_WITH_VALUE:
            given[name] = opts.value(name)
        elif name in _IGNORED_FLAGS:
            continue
        else:
            raise UnsupportedSql(f"UNLOAD option {name} is not supported by the local emulator")
    return UnloadStmt(
        query_duckdb=to_duckdb_expression(parsed).sql(dialect="duckdb"),
        uri=uri,
        **settings,
    )
