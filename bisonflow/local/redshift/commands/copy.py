"""COPY FROM S3 into a table, as Redshift loads: the URI names a key prefix and every object
under it loads (CSV, plain text, PARQUET by position), or a .shp with its sidecar files
(SHAPEFILE). The objects are copied from moto's S3 to a work folder that DuckDB reads, then
removed (`bisonflow.local.redshift.moto_s3` says why not httpfs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from bisonflow.local.redshift.database import Database
from bisonflow.local.redshift.moto_s3 import EmulatorError, split_s3_uri
from bisonflow.local.redshift.parsed_sql import CopyStmt
from bisonflow.local.redshift.records import Outcome
from bisonflow.local.redshift.sql_transpile import render_name
from bisonflow.sql.quoting import sql_literal

__all__ = ["run"]


def run(database: Database, stmt: CopyStmt, in_transaction: bool) -> Outcome:
    """Load every object under the prefix (or the shapefile and its sidecars) into the
    table, by name for the columns given, else in the table's column order."""
    table_columns = database.columns(stmt.schema, stmt.table)
    types = dict(table_columns)
    if stmt.columns:
        unknown = [c for c in stmt.columns if c not in types]
        if unknown:
            raise EmulatorError(f"column(s) {unknown} of COPY do not exist in {stmt.table}")
        targets = [(c, types[c]) for c in stmt.columns]
    else:
        targets = table_columns
    bucket, key = split_s3_uri(stmt.uri)
    work = database.workdir("copy")
    try:
        if stmt.file_format == "SHAPEFILE":
            select = _shapefile_select(database, stmt, bucket, key, targets, work)
        else:
            # COPY FROM names a key prefix: every object whose key starts with it loads.
            keys = database.s3.list(bucket, key)
            if not keys:
                raise EmulatorError(
                    f"S3ServiceException: The specified S3 prefix '{key}' does not exist "
                    f"(COPY FROM s3://{bucket}/{key})"
                )
            files = [database.s3.download(bucket, k, work / f"{i:06d}") for i, k in enumerate(keys)]
            if stmt.file_format == "PARQUET":
                select = _parquet_select(database, files, targets, stmt.uri)
            else:
                select = _text_select(stmt, files, targets)
        names = ", ".join(render_name(None, c) for c, _ in targets)
        row = (
            database.connection()
            .execute(f"INSERT INTO {render_name(stmt.schema, stmt.table)} ({names}) {select}")
            .fetchone()
        )
        return Outcome(rows=int(row[0]) if row else 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _text_select(stmt: CopyStmt, files: list[Path], targets: list[tuple[str, str]]) -> str:
    """SELECT over CSV or plain text files, every field read as text and then converted as
    Redshift converts it (empty text stays empty unless EMPTYASNULL/BLANKSASNULL/NULL AS)."""
    raw = {f"c{i}": "VARCHAR" for i in range(len(targets))}
    options = [
        "header = false",
        f"skip = {int(stmt.ignore_header)}",
        f"delim = {sql_literal(stmt.delimiter)}",
        f"quote = {sql_literal(stmt.quote)}",
        f"escape = {sql_literal(stmt.quote)}",
        "columns = {" + ", ".join(f"'{k}': 'VARCHAR'" for k in raw) + "}",
        # Redshift loads an empty field as an empty string (NULL only with EMPTYASNULL, or
        # for non-text columns): never let DuckDB turn it into NULL itself.
        "nullstr = '\u0001'",
        "allow_quoted_nulls = false",
        "auto_detect = false",
        "strict_mode = true",
    ]
    if stmt.compression:
        options.append(f"compression = {sql_literal(stmt.compression)}")
    exprs = []
    for i, (_, kind) in enumerate(targets):
        value = f'"c{i}"'
        if stmt.null_as is not None:
            value = f"CASE WHEN {value} = {sql_literal(stmt.null_as)} THEN NULL ELSE {value} END"
        if kind.upper() == "VARCHAR":
            if stmt.blanks_as_null:
                value = f"NULLIF(TRIM({value}), '')"
            elif stmt.empty_as_null:
                value = f"NULLIF({value}, '')"
        else:
            value = f"CAST(NULLIF(TRIM({value}), '') AS {kind})"
        exprs.append(value)
    paths = ", ".join(sql_literal(f.as_posix()) for f in files)
    return f"SELECT {', '.join(exprs)} FROM read_csv([{paths}], {', '.join(options)})"


def _parquet_select(
    database: Database, files: list[Path], targets: list[tuple[str, str]], uri: str
) -> str:
    """SELECT over parquet files, columns mapped by position as Redshift maps them."""
    paths = ", ".join(sql_literal(f.as_posix()) for f in files)
    source = f"read_parquet([{paths}])"
    found = database.connection().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    if len(found) != len(targets):
        raise EmulatorError(
            f"COPY FORMAT PARQUET maps columns by position: {uri} has {len(found)} "
            f"columns, the target {len(targets)}"
        )
    exprs = [
        f"CAST({render_name(None, str(f[0]))} AS {kind})"
        for f, (_, kind) in zip(found, targets, strict=True)
    ]
    return f"SELECT {', '.join(exprs)} FROM {source}"


def _shapefile_select(
    database: Database,
    stmt: CopyStmt,
    bucket: str,
    key: str,
    targets: list[tuple[str, str]],
    work: Path,
) -> str:
    """SELECT over a shapefile (its .shx and .dbf must sit beside it): the geometry, then
    the attribute fields in the file's order, as Redshift loads one."""
    if not key.lower().endswith(".shp"):
        raise EmulatorError(f"COPY FORMAT SHAPEFILE needs the .shp object, got {stmt.uri}")
    stem = key[:-4]
    shp = database.s3.download(bucket, key, work / "layer.shp")
    for suffix, required in ((".shx", True), (".dbf", True), (".prj", False), (".cpg", False)):
        sidecar = stem + suffix
        try:
            database.s3.download(bucket, sidecar, work / f"layer{suffix}")
        except EmulatorError:
            if required:
                raise EmulatorError(
                    f"shapefile component missing: s3://{bucket}/{sidecar} "
                    f"(COPY FORMAT SHAPEFILE reads it beside s3://{bucket}/{key})"
                ) from None
    source = f"ST_Read({sql_literal(shp.as_posix())})"
    found = [
        (str(r[0]), str(r[1]))
        for r in database.connection().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    ]
    geometry = [name for name, kind in found if kind.upper().startswith("GEOMETRY")]
    fields = [
        name
        for i, (name, kind) in enumerate(found)
        if not kind.upper().startswith("GEOMETRY") and not (i == 0 and name == "OGC_FID")
    ]
    if len(geometry) != 1:
        raise EmulatorError(f"{stmt.uri}: expected one geometry column, found {geometry}")
    # Redshift loads a shapefile by position: the geometry, then the attribute fields in
    # the file's order.
    if len(targets) != 1 + len(fields):
        raise EmulatorError(
            f"COPY FORMAT SHAPEFILE loads by position: {stmt.uri} has a geometry and "
            f"{len(fields)} fields {fields}, but {stmt.table} takes {len(targets)} "
            f"columns {[c for c, _ in targets]}"
        )
    if not targets[0][1].upper().startswith("GEOMETRY"):
        raise EmulatorError(
            f"COPY FORMAT SHAPEFILE: the first column of {stmt.table} must be GEOMETRY, "
            f"not {targets[0][0]} {targets[0][1]}"
        )
    exprs = [render_name(None, geometry[0])] + [
        f"CAST({render_name(None, name)} AS {kind})"
        for name, (_, kind) in zip(fields, targets[1:], strict=True)
    ]
    return f"SELECT {', '.join(exprs)} FROM {source}"
