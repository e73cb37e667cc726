"""Which UNLOAD options Redshift refuses together, refused by the Data API stand-in as well.

The stand-in's parser (`copy_unload_sql`) reads the options of an UNLOAD into
`UnloadStmt.options`; DuckDB's COPY TO would take many combinations Redshift's UNLOAD refuses
(a header on parquet, a delimiter on JSON), so a statement that would fail on AWS could pass
on a laptop. `check(stmt)` fails it here first, with an error naming the rule; `refuse_unemulated`
then refuses the options Redshift accepts but the stand-in does not reproduce. Both run before
anything is written (`commands.unload.run`).

The rules, from the Amazon Redshift Database Developer Guide, UNLOAD (r_UNLOAD.md, github
awsdocs/amazon-redshift-developer-guide at c91fc63, the last commit before the repository
was archived; the live page says the same):

* "[FORMAT [AS]] CSV | PARQUET | JSON": "You can't use CSV with FIXEDWIDTH or ADDQUOTES. You
  can't use PARQUET with DELIMITER, FIXEDWIDTH, ADDQUOTES, ESCAPE, NULL AS, HEADER, GZIP,
  BZIP2, or ZSTD. [...] You can't use JSON with DELIMITER, HEADER, FIXEDWIDTH, ADDQUOTES,
  ESCAPE, or NULL AS."
* "HEADER": "You can't use HEADER with FIXEDWIDTH."; "FIXEDWIDTH": "You can't use
  FIXEDWIDTH with DELIMITER or HEADER."
* "CLEANPATH": "You can't specify the CLEANPATH option if you specify the ALLOWOVERWRITE
  option."
* "DELIMITER AS": "Specifies a single ASCII character".

Redshift's wording of these errors is not documented; the stand-in's names the two options
and the guide's section. Not checked: a LIMIT in the outer SELECT ("Limit clause"),
MAXFILESIZE's range, and the column types a format refuses (GEOMETRY, VARBYTE, HLLSKETCH
only to text or CSV).
"""

from __future__ import annotations

from bisonflow.local.redshift.moto_s3 import EmulatorError
from bisonflow.local.redshift.parsed_sql import UnloadStmt, UnsupportedSql

#: Format -> the options UNLOAD refuses with it ("[FORMAT [AS]] CSV | PARQUET | JSON").
REFUSED_WITH_FORMAT: dict[str, frozenset[str]] = {
    "CSV": frozenset({"FIXEDWIDTH", "ADDQUOTES"}),
    "PARQUET": frozenset(
        {"DELIMITER", "FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "NULL", "HEADER"}
        | {"GZIP", "BZIP2", "ZSTD"}
    ),
    "JSON": frozenset({"DELIMITER", "HEADER", "FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "NULL"}),
}
#: Pairs of options UNLOAD refuses together whatever the format, with the section saying so.
REFUSED_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("HEADER", "FIXEDWIDTH", "HEADER"),
    ("FIXEDWIDTH", "DELIMITER", "FIXEDWIDTH"),
    ("CLEANPATH", "ALLOWOVERWRITE", "CLEANPATH"),
)
#: Options Redshift accepts that the stand-in does not reproduce: refused, never ignored,
#: since ignoring them would write files Redshift would not.
UNEMULATED = ("FIXEDWIDTH", "ADDQUOTES", "ESCAPE", "GZIP", "BZIP2", "ZSTD")

_SHOWN = {"NULL": "NULL AS"}


def _shown(option: str) -> str:
    return _SHOWN.get(option, option)


def check(stmt: UnloadStmt) -> None:
    """Fails (EmulatorError, worded as Redshift's errors are) on an option combination the
    guide says UNLOAD refuses."""
    given = stmt.options
    fmt = stmt.file_format
    clash = sorted(REFUSED_WITH_FORMAT.get(fmt, frozenset()) & given.keys())
    if clash:
        raise EmulatorError(
            f"UNLOAD: {_shown(clash[0])} can't be used with FORMAT {fmt} (Redshift Database "
            'Developer Guide, UNLOAD, "[FORMAT [AS]] CSV | PARQUET | JSON")'
        )
    delimiter = given.get("DELIMITER")
    if delimiter is not None and not (len(delimiter) == 1 and delimiter.isascii()):
        raise EmulatorError(
            f"UNLOAD: DELIMITER {delimiter!r} is not a single ASCII character (Redshift "
            'Database Developer Guide, UNLOAD, "DELIMITER AS")'
        )
    for first, second, section in REFUSED_PAIRS:
        if first in given and second in given:
            raise EmulatorError(
                f"UNLOAD: {first} can't be used with {second} (Redshift Database Developer "
                f'Guide, UNLOAD, "{section}")'
            )


def refuse_unemulated(stmt: UnloadStmt) -> None:
    """Fails (UnsupportedSql) on an option Redshift accepts and the stand-in does not write,
    and on UNLOAD's default format, pipe-delimited text, which it does not write either."""
    if stmt.file_format == "TEXT":
        raise UnsupportedSql(
            "UNLOAD without FORMAT (pipe-delimited text) is not supported by the local "
            "emulator; use FORMAT AS PARQUET, CSV or JSON"
        )
    for option in UNEMULATED:
        if option in stmt.options:
            raise UnsupportedSql(f"UNLOAD option {option} is not supported by the local emulator")
