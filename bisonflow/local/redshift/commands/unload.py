"""UNLOAD a query's rows to S3, as one Redshift slice writes them: one part (PARALLEL ON:
`<prefix>0000_part_00`, OFF: `<prefix>000`), none for an empty parquet or JSON result, the
CSV file always; a non-empty destination refused without ALLOWOVERWRITE, emptied first with
CLEANPATH; MANIFEST written beside the parts (Redshift Database Developer Guide, UNLOAD).
The option combinations Redshift refuses fail first (`bisonflow.local.redshift.unload_rules`),
and CSV text follows Redshift's CSV rules (`bisonflow.local.redshift.unload_csv`)."""

from __future__ import annotations

import json
import shutil

from bisonflow.local.redshift import unload_csv, unload_rules
from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.moto_s3 import EmulatorError, split_s3_uri
from bisonflow.local.redshift.parsed_sql import UnloadStmt
from bisonflow.local.redshift.records import Outcome
from bisonflow.sql.quoting import sql_literal
from bisonflow.sql.unload import MANIFEST_NAME

__all__ = ["run"]


def run(database: Database, stmt: UnloadStmt, in_transaction: bool) -> Outcome:
    """Write the query's rows under the TO prefix as one slice would, after refusing what
    Redshift refuses; MANIFEST lists what was written."""
    database.prepare_scan(stmt.query_duckdb)  # the query may read external tables
    unload_rules.check(stmt)  # what Redshift refuses, before anything is written
    unload_rules.refuse_unemulated(stmt)
    bucket, prefix = split_s3_uri(stmt.uri)
    existing = database.s3.list(bucket, prefix)
    if stmt.clean_path:
        for key in existing:
            database.s3.delete(bucket, key)
    elif existing and not stmt.allow_overwrite:
        raise EmulatorError(
            "Specified unload destination on S3 is not empty. Consider using a different "
            "bucket / prefix, manually removing the target files in S3, or using the "
            f"ALLOWOVERWRITE option. (s3://{bucket}/{prefix})"
        )
    # One slice: PARALLEL ON names parts <prefix>0000_part_00, PARALLEL OFF <prefix>000.
    name = "0000_part_00" if stmt.parallel else "000"
    query = stmt.query_duckdb
    if stmt.file_format == "PARQUET":
        name += ".parquet"
        options = "FORMAT PARQUET"
    elif stmt.file_format == "CSV":
        query, options = _csv_text(database, stmt)
    else:
        options = "FORMAT JSON"
    if stmt.extension:
        name += "." + stmt.extension
    work = database.workdir("unload")
    con = database.connection()
    # PARALLEL OFF writes rows "sorted absolutely according to the ORDER BY clause"; the
    # engine lets DuckDB reorder rows (`Database.connection`), which would also reorder
    # a projection over an ordered query. PARALLEL ON promises no order across files.
    serial = not stmt.parallel
    try:
        local = work / "part"
        if serial:
            con.execute("SET preserve_insertion_order = true")
        row = con.execute(
            f"COPY ({query}) TO {sql_literal(local.as_posix())} ({options})"
        ).fetchone()
        rows = int(row[0]) if row else 0
        entries = []
        # Redshift writes no parquet or JSON object for an empty result; a CSV one it
        # "might" write empty ("[FORMAT [AS]] CSV"): the stand-in writes it, with its
        # header line when HEADER is given.
        if rows or stmt.file_format == "CSV":
            data = local.read_bytes()
            database.s3.write(bucket, prefix + name, data)
            entries.append(
                {
                    "url": f"s3://{bucket}/{prefix}{name}",
                    "meta": {"content_length": len(data), "record_count": rows},
                }
            )
        if stmt.manifest:
            body = json.dumps({"entries": entries}, indent=1).encode("utf-8")
            database.s3.write(bucket, prefix + MANIFEST_NAME, body)
        return Outcome(rows=rows)
    finally:
        if serial:
            con.execute("SET preserve_insertion_order = false")
        shutil.rmtree(work, ignore_errors=True)


def _csv_text(database: Database, stmt: UnloadStmt) -> tuple[str, str]:
    """The query with every column as the text Redshift's CSV UNLOAD writes, and DuckDB's
    COPY options that quote it as Redshift does (`bisonflow.local.redshift.unload_csv`)."""
    found = database.connection().execute(f"DESCRIBE {stmt.query_duckdb}").fetchall()
    columns = [(str(r[0]), str(r[1])) for r in found]
    return unload_csv.text_query(stmt, columns), unload_csv.copy_options(stmt)
