"""The stand-in's SQL reading on its own: Redshift SQL transpiled to DuckDB, COPY and UNLOAD
options read into their records, statements split and parameters bound. No server, no S3."""

from __future__ import annotations

import pytest

from bisonflow.local.redshift.parsed_sql import CopyStmt, UnloadStmt, UnsupportedSql
from bisonflow.local.redshift.sql_parse import parse_statement
from bisonflow.local.redshift.sql_text import bind_parameters, split_statements
from bisonflow.local.redshift.sql_transpile import transpile


def test_transpile_makes_redshift_semantics_explicit() -> None:
    sql = transpile(
        'SELECT "GEOID", ST_Covers(ST_SetSRID(c.shape, 4269), ST_SetSRID(ST_Point(x, y), 4269)), '
        "CAST(a AS VARCHAR(MAX)), NVL(b, 0) FROM public.County AS c"
    )
    assert '"geoid"' in sql and "county AS c" in sql and "public" not in sql
    assert "ST_SETCRS(C.SHAPE, 'EPSG:4269')" in sql.upper()
    assert "ST_SETCRS(ST_POINT(X, Y), 'EPSG:4269')" in sql.upper()
    assert "CAST(a AS TEXT)" in sql and "COALESCE(b, 0)" in sql


def test_copy_and_unload_options_are_read() -> None:
    copy = parse_statement(
        "COPY public.riis (a, b) FROM 's3://bucket/key.csv' IAM_ROLE default "
        "FORMAT AS CSV QUOTE AS '\"' IGNOREHEADER 1 EMPTYASNULL REGION 'us-east-1'"
    )
    assert copy == CopyStmt(
        schema=None,
        table="riis",
        columns=("a", "b"),
        uri="s3://bucket/key.csv",
        file_format="CSV",
        delimiter=",",
        quote='"',
        ignore_header=1,
        empty_as_null=True,
    )
    shp = parse_statement(
        "COPY county FROM 's3://b/c.shp' IAM_ROLE 'arn:aws:iam::123456789012:role/r' "
        "FORMAT SHAPEFILE SIMPLIFY AUTO 0.001"
    )
    assert isinstance(shp, CopyStmt) and shp.file_format == "SHAPEFILE"
    unload = parse_statement(
        "UNLOAD ('SELECT a FROM t WHERE b = ''x''') TO 's3://b/p/' IAM_ROLE default "
        "FORMAT AS PARQUET ALLOWOVERWRITE PARALLEL OFF"
    )
    assert isinstance(unload, UnloadStmt)
    assert unload.query_duckdb == "SELECT a FROM t WHERE b = 'x'"
    assert (unload.allow_overwrite, unload.parallel, unload.file_format) == (True, False, "PARQUET")
    manifest = parse_statement(
        "UNLOAD ('SELECT 1') TO 's3://b/p/' FORMAT PARQUET CLEANPATH MANIFEST"
    )
    assert isinstance(manifest, UnloadStmt) and manifest.manifest and manifest.clean_path
    with pytest.raises(UnsupportedSql, match="MANIFEST VERBOSE"):
        parse_statement("UNLOAD ('SELECT 1') TO 's3://b/p/' FORMAT PARQUET MANIFEST VERBOSE")


def test_statements_split_and_parameters_bind() -> None:
    assert split_statements("SELECT ';'; SELECT 2; -- done;\n") == ["SELECT ';'", "SELECT 2"]
    bound = bind_parameters(
        "SELECT :name, ':name', x::int FROM t WHERE y = :other",
        [{"name": "name", "value": "O'Hara"}, {"name": "other", "value": "3"}],
    )
    assert bound == "SELECT 'O''Hara', ':name', x::int FROM t WHERE y = '3'"
