"""UNLOAD ... FORMAT AS CSV in the Data API stand-in, held to Redshift's documented rules.

Redshift Database Developer Guide, UNLOAD: a CSV field is quoted only if it holds the
delimiter, a double quotation mark, a newline or a carriage return, quotation marks doubled;
NULL is a zero-length field unless NULL AS; HEADER writes the column names first; PARALLEL
OFF writes `<prefix>000` in ORDER BY order, EXTENSION appends the extension; the option
combinations the guide refuses fail before anything is written (redshift_unload_rules).
The statements run on one stand-in engine (`bisonflow.local.redshift.engine`) over moto's
in-process S3, as the workflow's would behind the Data API, without a server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from test_calc_stats import s3  # noqa: F401 (the fixture: a bucket in moto's S3)

from bisonflow.local.redshift import unload_rules as redshift_unload_rules
from bisonflow.local.redshift.engine import Engine, error_text
from bisonflow.local.redshift.moto_s3 import EmulatorError, MotoS3
from bisonflow.local.redshift.parsed_sql import UnsupportedSql
from bisonflow.local.redshift.sql_parse import parse_statement


@pytest.fixture(scope="module")
def standin() -> Iterator[Engine]:
    """One stand-in database for the module: its spatial extension takes a second to load."""
    standin = stand_in_engine()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
def engine(s3, standin: Engine) -> Engine:  # noqa: F811
    """The stand-in, writing to the test's bucket, with a fresh table of awkward text."""
    standin.database.connection().execute(
        "CREATE OR REPLACE TABLE t (s VARCHAR, n BIGINT);"
        "INSERT INTO t VALUES ('plain', 1), ('', 2), (NULL, 3), ('a,b', 4), ('say \"hi\"', 5),"
        f"('two{chr(10)}lines', 6), ('cr{chr(13)}', 7), ('N', 8), (' spaced ', NULL),"
        "('Doña Ana', 10)"
    )
    return standin


def stand_in_engine() -> Engine:
    """One stand-in database on moto's in-process S3 (the caller has started mock_aws)."""
    return Engine("unload-csv", MotoS3(DEFAULT_ACCOUNT_ID, "us-east-1"))


def unload(engine: Engine, bucket: str, options: str, to: str = "copy_") -> None:
    engine.run_sql(
        f"UNLOAD ('SELECT s, n FROM t ORDER BY n NULLS LAST') TO 's3://{bucket}/{to}' "
        f"IAM_ROLE default {options}",
        in_transaction=True,
    )


def keys(s3, prefix: str = "") -> list[str]:  # noqa: F811
    listed = s3.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def text(s3, key: str) -> bytes:  # noqa: F811
    return s3.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def test_csv_follows_redshifts_quoting_null_and_header_rules(s3, engine):  # noqa: F811
    unload(
        engine,
        s3.bucket,
        "FORMAT AS CSV DELIMITER AS ',' HEADER PARALLEL OFF EXTENSION 'csv' ALLOWOVERWRITE",
    )
    assert keys(s3) == ["copy_000.csv"]  # <prefix>000, then the extension
    assert text(s3, "copy_000.csv") == (
        b"s,n\n"
        b"plain,1\n"
        b",2\n"  # an empty string: zero-length, not "" (DuckDB's own CSV writes "")
        b",3\n"  # NULL: zero-length too
        b'"a,b",4\n'
        b'"say ""hi""",5\n'
        b'"two\nlines",6\n'
        b'"cr\r",7\n'
        b"N,8\n"
        b"Do\xc3\xb1a Ana,10\n"
        b" spaced ,\n"  # leading and trailing blanks need no quotes; NULLS LAST kept
    )


def test_null_as_names_nulls_and_a_value_equal_to_it_stays_unquoted(s3, engine):  # noqa: F811
    unload(engine, s3.bucket, "CSV NULL AS 'N' PARALLEL OFF")
    assert keys(s3) == ["copy_000"]  # no EXTENSION: nothing appended
    lines = text(s3, "copy_000").split(b"\n")
    assert lines[:3] == [b"plain,1", b",2", b"N,3"]  # no header without HEADER
    assert b"N,8" in lines and b" spaced ,N" in lines  # DuckDB would write "N" quoted


def test_the_delimiter_is_the_one_quoted(s3, engine):  # noqa: F811
    unload(engine, s3.bucket, "FORMAT CSV DELIMITER AS '|' HEADER PARALLEL OFF")
    lines = text(s3, "copy_000").split(b"\n")
    assert lines[0] == b"s|n" and b"a,b|4" in lines


def test_an_empty_result_is_a_header_line(s3, engine):  # noqa: F811
    engine.run_sql(
        f"UNLOAD ('SELECT s, n FROM t WHERE n > 99') TO 's3://{s3.bucket}/none_' "
        "FORMAT CSV HEADER PARALLEL OFF EXTENSION 'csv'",
        in_transaction=False,
    )
    assert text(s3, "none_000.csv") == b"s,n\n"


def test_allowoverwrite_replaces_the_file_and_without_it_unload_fails(s3, engine):  # noqa: F811
    options = "FORMAT CSV HEADER PARALLEL OFF EXTENSION 'csv'"
    unload(engine, s3.bucket, options)
    with pytest.raises(EmulatorError, match="ALLOWOVERWRITE"):
        unload(engine, s3.bucket, options)
    engine.database.connection().execute("DELETE FROM t WHERE n > 1 OR n IS NULL")
    unload(engine, s3.bucket, options + " ALLOWOVERWRITE")
    assert text(s3, "copy_000.csv") == b"s,n\nplain,1\n"


@pytest.mark.parametrize(
    ("options", "refused"),
    [
        ("FORMAT AS PARQUET HEADER", "HEADER can't be used with FORMAT PARQUET"),
        ("FORMAT AS PARQUET DELIMITER ','", "DELIMITER can't be used with FORMAT PARQUET"),
        ("FORMAT AS PARQUET NULL AS 'x'", "NULL AS can't be used with FORMAT PARQUET"),
        ("CSV FIXEDWIDTH 's:5,n:3'", "FIXEDWIDTH can't be used with FORMAT CSV"),
        ("CSV ADDQUOTES", "ADDQUOTES can't be used with FORMAT CSV"),
        ("FORMAT JSON HEADER", "HEADER can't be used with FORMAT JSON"),
        ("HEADER FIXEDWIDTH 's:5,n:3'", "HEADER can't be used with FIXEDWIDTH"),
        ("FIXEDWIDTH 's:5,n:3' DELIMITER '|'", "FIXEDWIDTH can't be used with DELIMITER"),
        ("FORMAT PARQUET CLEANPATH ALLOWOVERWRITE", "CLEANPATH can't be used with ALLOWOVERWRITE"),
        ("CSV DELIMITER ';;'", "not a single ASCII character"),
    ],
)
def test_what_redshift_refuses_is_refused(options, refused):
    stmt = parse_statement(f"UNLOAD ('SELECT 1 AS a') TO 's3://b/p_' {options}")
    with pytest.raises(EmulatorError, match=refused) as failed:
        redshift_unload_rules.check(stmt)
    assert error_text(failed.value).startswith("ERROR: UNLOAD: ")


def test_a_refused_unload_fails_before_anything_is_written(s3, engine):  # noqa: F811
    with pytest.raises(EmulatorError, match="HEADER can't be used with FORMAT PARQUET"):
        unload(engine, s3.bucket, "FORMAT AS PARQUET HEADER MANIFEST")
    assert keys(s3) == []


@pytest.mark.parametrize("options", ["CSV GZIP", "CSV ESCAPE", "FIXEDWIDTH 's:5,n:3'", "HEADER"])
def test_what_redshift_accepts_and_the_stand_in_does_not_write_is_refused(options):
    stmt = parse_statement(f"UNLOAD ('SELECT 1 AS a') TO 's3://b/p_' {options}")
    redshift_unload_rules.check(stmt)  # valid on Redshift ...
    with pytest.raises(UnsupportedSql, match="not supported by the local emulator"):
        redshift_unload_rules.refuse_unemulated(stmt)  # ... but not written by the stand-in


def test_a_column_whose_redshift_text_is_not_reproduced_fails_naming_it(s3, engine):  # noqa: F811
    with pytest.raises(EmulatorError, match="column flag is BOOLEAN"):
        engine.run_sql(
            f"UNLOAD ('SELECT n > 2 AS flag FROM t') TO 's3://{s3.bucket}/b_' FORMAT CSV",
            in_transaction=False,
        )
    assert keys(s3) == []
