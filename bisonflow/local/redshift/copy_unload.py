"""COPY and UNLOAD of the Data API stand-in's engine, on moto's S3.

COPY FROM names a key prefix and loads every object under it (CSV, plain text, PARQUET by
position, SHAPEFILE with its sidecar files); UNLOAD writes one part (one slice), none for an
empty parquet or JSON result, refuses a non-empty destination without ALLOWOVERWRITE and writes
MANIFEST beside the parts, as `redshift_duckdb`'s docstring lists. It first refuses the option
combinations Redshift refuses (`redshift_unload_rules`); CSV text follows Redshift's CSV rules
(`redshift_unload_csv`).
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import duckdb

from bisonflow.local.redshift import sql_transpile as st
from bisonflow.local.redshift import unload_csv as redshift_unload_csv
from bisonflow.local.redshift import unload_rules as redshift_unload_rules
from bisonflow.local.redshift.moto_s3 import EmulatorError, MotoS3, split_s3_uri
from bisonflow.local.redshift.statements import _Outcome
from bisonflow.sql.quoting import sql_literal
from bisonflow.sql.unload import MANIFEST_NAME


class CopyUnload:
    """COPY and UNLOAD for `redshift_engine._Engine`, which gives `s3` and `_connect`."""

    s3: MotoS3
    tmp: Path

    def _connect(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def _workdir(self, kind: str) -> Path:
        path = self.tmp / f"{kind}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def _columns(self, schema: str | None, table: str) -> list[tuple[str, str]]:
        rows = self._connect().execute(f"DESCRIBE {st.render_name(schema, table)}").fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def _copy(self, stmt: st.CopyStmt) -> _Outcome:
        table_columns = self._columns(stmt.schema, stmt.table)
        types = dict(table_columns)
        if stmt.columns:
            unknown = [c for c in stmt.columns if c not in types]
            if unknown:
                raise EmulatorError(f"column(s) {unknown} of COPY do not exist in {stmt.table}")
            targets = [(c, types[c]) for c in stmt.columns]
        else:
            targets = table_columns
        bucket, key = split_s3_uri(stmt.uri)
        work = self._workdir("copy")
        try:
            if stmt.file_format == "SHAPEFILE":
                select = self._shapefile_select(stmt, bucket, key, targets, work)
            else:
                # COPY FROM names a key prefix: every object whose key starts with it loads.
                keys = self.s3.list(bucket, key)
                if not keys:
                    raise EmulatorError(
                        f"S3ServiceException: The specified S3 prefix '{key}' does not exist "
                        f"(COPY FROM s3://{bucket}/{key})"
                    )
                files = [self.s3.download(bucket, k, work / f"{i:06d}") for i, k in enumerate(keys)]
                if stmt.file_format == "PARQUET":
                    select = self._parquet_select(files, targets, stmt.uri)
                else:
                    select = self._text_select(stmt, files, targets)
            names = ", ".join(st.render_name(None, c) for c, _ in targets)
            row = (
                self._connect()
                .execute(
                    f"INSERT INTO {st.render_name(stmt.schema, stmt.table)} ({names}) {select}"
                )
                .fetchone()
            )
            return _Outcome(rows=int(row[0]) if row else 0)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _text_select(
        self, stmt: st.CopyStmt, files: list[Path], targets: list[tuple[str, str]]
    ) -> str:
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
                value = (
                    f"CASE WHEN {value} = {sql_literal(stmt.null_as)} THEN NULL ELSE {value} END"
                )
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

    def _parquet_select(self, files: list[Path], targets: list[tuple[str, str]], uri: str) -> str:
        paths = ", ".join(sql_literal(f.as_posix()) for f in files)
        source = f"read_parquet([{paths}])"
        found = self._connect().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
        if len(found) != len(targets):
            raise EmulatorError(
                f"COPY FORMAT PARQUET maps columns by position: {uri} has {len(found)} "
                f"columns, the target {len(targets)}"
            )
        exprs = [
            f"CAST({st.render_name(None, str(f[0]))} AS {kind})"
            for f, (_, kind) in zip(found, targets, strict=True)
        ]
        return f"SELECT {', '.join(exprs)} FROM {source}"

    def _shapefile_select(
        self,
        stmt: st.CopyStmt,
        bucket: str,
        key: str,
        targets: list[tuple[str, str]],
        work: Path,
    ) -> str:
        if not key.lower().endswith(".shp"):
            raise EmulatorError(f"COPY FORMAT SHAPEFILE needs the .shp object, got {stmt.uri}")
        stem = key[:-4]
        shp = self.s3.download(bucket, key, work / "layer.shp")
        for suffix, required in ((".shx", True), (".dbf", True), (".prj", False), (".cpg", False)):
            sidecar = stem + suffix
            try:
                self.s3.download(bucket, sidecar, work / f"layer{suffix}")
            except EmulatorError:
                if required:
                    raise EmulatorError(
                        f"shapefile component missing: s3://{bucket}/{sidecar} "
                        f"(COPY FORMAT SHAPEFILE reads it beside s3://{bucket}/{key})"
                    ) from None
        source = f"ST_Read({sql_literal(shp.as_posix())})"
        found = [
            (str(r[0]), str(r[1]))
            for r in self._connect().execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
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
        exprs = [st.render_name(None, geometry[0])] + [
            f"CAST({st.render_name(None, name)} AS {kind})"
            for name, (_, kind) in zip(fields, targets[1:], strict=True)
        ]
        return f"SELECT {', '.join(exprs)} FROM {source}"

    # -- UNLOAD -------------------------------------------------------------------------------

    def _unload(self, stmt: st.UnloadStmt) -> _Outcome:
        redshift_unload_rules.check(stmt)  # what Redshift refuses, before anything is written
        redshift_unload_rules.refuse_unemulated(stmt)
        bucket, prefix = split_s3_uri(stmt.uri)
        existing = self.s3.list(bucket, prefix)
        if stmt.clean_path:
            for key in existing:
                self.s3.delete(bucket, key)
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
            query, options = self._csv_text(stmt)
        else:
            options = "FORMAT JSON"
        if stmt.extension:
            name += "." + stmt.extension
        work = self._workdir("unload")
        con = self._connect()
        # PARALLEL OFF writes rows "sorted absolutely according to the ORDER BY clause"; the
        # engine lets DuckDB reorder rows (redshift_engine._connect), which would also reorder
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
                self.s3.write(bucket, prefix + name, data)
                entries.append(
                    {
                        "url": f"s3://{bucket}/{prefix}{name}",
                        "meta": {"content_length": len(data), "record_count": rows},
                    }
                )
            if stmt.manifest:
                body = json.dumps({"entries": entries}, indent=1).encode("utf-8")
                self.s3.write(bucket, prefix + MANIFEST_NAME, body)
            return _Outcome(rows=rows)
        finally:
            if serial:
                con.execute("SET preserve_insertion_order = false")
            shutil.rmtree(work, ignore_errors=True)

    def _csv_text(self, stmt: st.UnloadStmt) -> tuple[str, str]:
        """The query with every column as the text Redshift's CSV UNLOAD writes, and DuckDB's
        COPY options that quote it as Redshift does (`redshift_unload_csv`)."""
        found = self._connect().execute(f"DESCRIBE {stmt.query_duckdb}").fetchall()
        columns = [(str(r[0]), str(r[1])) for r in found]
        return redshift_unload_csv.text_query(stmt, columns), redshift_unload_csv.copy_options(stmt)
