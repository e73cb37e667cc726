"""The text of UNLOAD ... FORMAT AS CSV in the Data API stand-in: Redshift's CSV rules on DuckDB.

Redshift Database Developer Guide, UNLOAD ("[FORMAT [AS]] CSV", "NULL AS", "HEADER"):

* "If a field contains delimiters, double quotation marks, newline characters, or carriage
  returns, then the field in the unloaded file is enclosed in double quotation marks. A
  double quotation mark within a data field is escaped by an additional double quotation
  mark." No other field is quoted.
* Without NULL AS, "null values are unloaded as [...] zero-length strings for delimited
  output"; with it, as the given string.
* HEADER "adds a header line containing column names at the top of each output file", and
  the CSV rules apply to it.

DuckDB's COPY ... (FORMAT CSV) quotes the same characters but differs in two places: it
writes an empty string as `""` to tell it from a NULL, and it quotes any value equal to its
NULL string. Redshift does neither (an empty string and a NULL are the same zero-length
field). So the stand-in renders every column as text itself, NULL already replaced by the
NULL AS string or by nothing (`text_query`), and gives DuckDB a NULL string no field can be
written as without quotes anyway, a newline (`copy_options`): a field equal to it holds a
newline, which both quote. Only text and integer columns are rendered, the types the
workflow unloads; for any other type (a boolean, a timestamp, a double) Redshift's text form
is not reproduced, and the UNLOAD fails naming the column rather than write text Redshift
would not.
"""

from __future__ import annotations

from bisonflow.local.redshift.moto_s3 import EmulatorError
from bisonflow.local.redshift.parsed_sql import UnloadStmt
from bisonflow.local.redshift.sql_transpile import render_name
from bisonflow.sql.quoting import sql_literal

#: DuckDB types whose text (CAST AS VARCHAR) is Redshift's: text, and integers in decimal.
TEXT_TYPES = frozenset(
    {"VARCHAR", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}
    | {"UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}
)
#: DuckDB's NULL string while it writes the already rendered text: see the module docstring.
_NO_NULLS_LEFT = "\n"


def text_query(stmt: UnloadStmt, columns: list[tuple[str, str]]) -> str:
    """`stmt`'s query with each of its `columns` ((name, DuckDB type), in order) as the text
    Redshift writes for it: NULL as NULL AS's string, or zero-length."""
    null_text = sql_literal(stmt.null_as or "")
    for name, kind in columns:
        if kind.upper() not in TEXT_TYPES:
            raise EmulatorError(
                f"UNLOAD FORMAT CSV: column {name} is {kind}; the local emulator writes CSV "
                "only for text and integer columns, whose text Redshift's matches"
            )
    rendered = ", ".join(
        f"COALESCE(CAST({render_name(None, name)} AS VARCHAR), {null_text}) "
        f"AS {render_name(None, name)}"
        for name, _ in columns
    )
    return f"SELECT {rendered} FROM ({stmt.query_duckdb}) AS unloaded"


def copy_options(stmt: UnloadStmt) -> str:
    """DuckDB COPY options for `text_query`'s rows: Redshift's quoting, delimiter and header."""
    header = "true" if stmt.header else "false"
    return (
        f"FORMAT CSV, HEADER {header}, DELIMITER {sql_literal(stmt.delimiter)}, "
        f"QUOTE '\"', ESCAPE '\"', NULLSTR {sql_literal(_NO_NULLS_LEFT)}"
    )
