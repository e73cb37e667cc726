"""The stand-in's memo of boundary grid cells (`bisonflow.local.redshift.cells_memo`), speed only:
a layer's cells statement met again over the same boundaries makes the same table without the
spatial query, and anything else runs as before.

Statements go to the session's emulator over HTTP with boto3, as the workflow's do. The real
layer is the census AIANNH file the runtime uploads for its runs (the first test forgets what
other modules' runs kept of it); the months are ones no other test module names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from redshift_data_api import GBIF_BUCKET, REGION, rows, rsd_fixture, run  # noqa: F401 (`rsd`)

from bisonflow.layout import MonthLayout
from bisonflow.local.redshift import cells_memo
from bisonflow.local.runtime import LocalRuntime
from bisonflow.sql.boundaries import boundary_layers, cells_sql, load_boundaries
from bisonflow.sql.workflow_sql import SqlTarget

#: The real AIANNH layer (704 areas, 7,442 cells), under a month of its own.
REAL = boundary_layers(MonthLayout.for_month("2001-07"))[1]
#: A layer of another month that the tests fill with a few squares by hand.
TINY = boundary_layers(MonthLayout.for_month("2001-08"))[0]


@pytest.fixture(scope="module")
def target(runtime: LocalRuntime) -> SqlTarget:
    """The runtime's bucket, where its runs' aggregate step finds the boundary shapefiles."""
    assert runtime.deployment is not None
    return SqlTarget(gbif_bucket=GBIF_BUCKET, bison_bucket=runtime.deployment.bucket, region=REGION)


def _delta(before: cells_memo.CellsMemoStats) -> tuple[int, int]:
    """(computed, served) since `before`."""
    now = cells_memo.stats()
    return now.computed - before.computed, now.served - before.served


def _schema(rsd: Any, table: str) -> list[tuple[Any, ...]]:
    return rows(
        rsd,
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_name = '{table}' ORDER BY ordinal_position",
    )


def _except(rsd: Any, left: str, right: str) -> set[tuple[Any, ...]]:
    return set(rows(rsd, f"SELECT * FROM {left} EXCEPT SELECT * FROM {right}"))


def _keep(rsd: Any, table: str, copy: str) -> None:
    run(rsd, f"DROP TABLE IF EXISTS {copy}", f"CREATE TABLE {copy} AS SELECT * FROM {table}")


def _exists(rsd: Any, table: str) -> bool:
    found = rows(
        rsd, f"SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"
    )
    return found == [(1,)]


def test_a_second_load_of_a_real_layer_is_served_with_the_same_table(
    rsd: Any, target: SqlTarget
) -> None:
    cells_memo.forget()  # the workflow runs of other test modules may have kept this layer
    before = cells_memo.stats()
    first = run(rsd, *load_boundaries(REAL, target))
    assert _delta(before) == (1, 0)
    schema = _schema(rsd, REAL.cells)
    assert schema == [("geoid", "VARCHAR"), ("cell", "BIGINT"), ("inside", "BOOLEAN")]
    computed = f"{REAL.cells}_computed"
    _keep(rsd, REAL.cells, computed)

    second = run(rsd, *load_boundaries(REAL, target))
    assert _delta(before) == (1, 1)
    assert _schema(rsd, REAL.cells) == schema
    assert _except(rsd, REAL.cells, computed) == set()
    assert _except(rsd, computed, REAL.cells) == set()
    # The Data API reports the same row count for the CREATE TABLE AS either way.
    counts = [desc["SubStatements"][-1]["ResultRows"] for desc in (first, second)]
    assert counts[0] == counts[1] == rows(rsd, f"SELECT count(*) FROM {computed}")[0][0] > 7000
    # And without the spatial query: 0.5-1.1 s computed here, 0.04 s served (a factor of 12
    # or more, so a loaded machine does not blur it).
    spent = [desc["SubStatements"][-1]["Duration"] for desc in (first, second)]
    assert spent[1] < spent[0] / 4, spent


def test_the_same_layer_of_another_month_is_served(rsd: Any, target: SqlTarget) -> None:
    """Its statement differs only in the table names: the suite's runs each take a month."""
    run(rsd, *load_boundaries(REAL, target))
    before = cells_memo.stats()
    other = boundary_layers(MonthLayout.for_month("2001-09"))[1]
    run(rsd, *load_boundaries(other, target))
    assert _delta(before) == (0, 1)
    assert _schema(rsd, other.cells) == _schema(rsd, REAL.cells)
    assert _except(rsd, other.cells, REAL.cells) == _except(rsd, REAL.cells, other.cells) == set()


def test_a_changed_boundary_table_is_computed_again(rsd: Any, target: SqlTarget) -> None:
    run(rsd, *load_boundaries(REAL, target))
    kept = f"{REAL.cells}_before"
    _keep(rsd, REAL.cells, kept)
    # The area with the most vertices (the Navajo Nation): the others are the cheapest to redo.
    (gone,) = rows(
        rsd, f"SELECT geoid FROM {REAL.table} ORDER BY ST_NPoints(shape) DESC, geoid LIMIT 1"
    )[0]
    before = cells_memo.stats()
    run(
        rsd,
        f"DELETE FROM {REAL.table} WHERE geoid = '{gone}'",
        f"DROP TABLE IF EXISTS {REAL.cells}",
        cells_sql(REAL),
    )
    assert _delta(before) == (1, 0)
    lost = _except(rsd, kept, REAL.cells)
    assert lost and {geoid for geoid, _, _ in lost} == {gone}
    assert lost == set(rows(rsd, f"SELECT * FROM {kept} WHERE geoid = '{gone}'"))
    assert _except(rsd, REAL.cells, kept) == set()


def test_a_rolled_back_load_leaves_no_served_table(rsd: Any, target: SqlTarget) -> None:
    run(rsd, *load_boundaries(REAL, target))
    run(rsd, f"DROP TABLE {REAL.cells}")
    before = cells_memo.stats()
    failed = run(
        rsd, *load_boundaries(REAL, target), "SELECT * FROM cells_memo_no_such", expect="FAILED"
    )
    assert _delta(before) == (0, 1)
    assert [s["Status"] for s in failed["SubStatements"]][-2:] == ["FINISHED", "FAILED"]
    assert not _exists(rsd, REAL.cells)


def _fill(rsd: Any, *geoids: str) -> None:
    """The tiny layer: one square a quarter of a degree wide per geoid, a degree apart: 9
    cells each (its edges touch the next cells), the middle one covered whole."""
    run(
        rsd,
        f"DROP TABLE IF EXISTS {TINY.table}",
        f"CREATE TABLE {TINY.table} (shape GEOMETRY, geoid VARCHAR(5))",
        *(
            f"INSERT INTO {TINY.table} VALUES (ST_GeomFromText("
            f"'POLYGON(({n} 0, {n + 0.25} 0, {n + 0.25} 0.25, {n} 0.25, {n} 0))', 4269), '{g}')"
            for n, g in enumerate(geoids)
        ),
    )


def _cells(rsd: Any, sql: str) -> set[tuple[Any, ...]]:
    run(rsd, f"DROP TABLE IF EXISTS {TINY.cells}", sql)
    return set(rows(rsd, f"SELECT * FROM {TINY.cells}"))


def test_a_statement_differing_by_anything_is_not_served(rsd: Any) -> None:
    _fill(rsd, "10001", "10002")
    before = cells_memo.stats()
    expected = _cells(rsd, cells_sql(TINY))
    assert len(expected) == 18 and _delta(before) == (1, 0)
    assert _cells(rsd, cells_sql(TINY)) == expected and _delta(before) == (1, 1)

    sql = cells_sql(TINY)
    variants = [
        sql + " ",
        " " + sql,
        sql.replace("\n", " ", 1),
        sql.replace("CREATE TABLE", "create table", 1),
        sql.replace("FROM squares", "FROM  squares"),
        sql.replace("ST_Intersects(shape, square)", "ST_Intersects(square, shape)"),
    ]
    assert len(set(variants)) == len(variants) and sql not in variants
    for variant in variants:
        assert _cells(rsd, variant) == expected, variant
    assert _delta(before) == (1, 1), "a variant was computed into the memo or served from it"

    # The same statement over a table that is no month's layer, though named like one.
    other = dataclasses.replace(TINY, table=f"tiny_{TINY.table}")
    run(
        rsd,
        f"DROP TABLE IF EXISTS {other.table}",
        f"CREATE TABLE {other.table} AS SELECT * FROM {TINY.table}",
    )
    for _ in range(2):
        run(rsd, f"DROP TABLE IF EXISTS {other.cells}", cells_sql(other))
        assert set(rows(rsd, f"SELECT * FROM {other.cells}")) == expected
    assert _delta(before) == (1, 1)


def test_the_memo_keeps_a_handful_of_results(rsd: Any) -> None:
    before = cells_memo.stats()
    for n in range(cells_memo.MAX_ENTRIES + 1):
        _fill(rsd, f"2{n:04d}")
        _cells(rsd, cells_sql(TINY))
    assert _delta(before) == (cells_memo.MAX_ENTRIES + 1, 0)
    _cells(rsd, cells_sql(TINY))  # the newest content: kept
    assert _delta(before) == (cells_memo.MAX_ENTRIES + 1, 1)
    _fill(rsd, "20000")  # the oldest: dropped to keep the others
    assert {geoid for geoid, _, _ in _cells(rsd, cells_sql(TINY))} == {"20000"}
    assert _delta(before) == (cells_memo.MAX_ENTRIES + 2, 1)
