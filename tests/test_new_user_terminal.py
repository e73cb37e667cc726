"""Issue 12: terminal tables fit the terminal (100 columns) by dropping their least needed
columns, say which they dropped, and never cut a status to "SUCCE…"."""

from __future__ import annotations

import datetime as dt
import io

from rich.console import Console

from bisonflow.history.terminal import STATE_COLUMNS, FittedTable, executions_table, status_text


def _render(renderable: object, width: int) -> list[str]:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue().splitlines()


def _states(rows: int = 5) -> FittedTable:
    table = FittedTable("states of x", STATE_COLUMNS, expand=True)
    for i in range(rows):
        table.rows.append(
            [
                f"  SubsetAndAnnotate[0] › SubsetBatchDone{i}?",
                "Choice",
                status_text("SUCCEEDED"),
                "03:16:55.781",
                "03:16:56.101",
                "12.3s",
                "4",
                "2",
                "$.settings.task_heartbeat_seconds = 600s",
                "SqlStatementFailed: " + "relation does not exist " * 8,
            ]
        )
    return table


def test_the_states_table_fits_100_columns_and_names_what_it_left_out() -> None:
    lines = _render(_states(), 100)
    assert max(len(line) for line in lines) <= 100
    text = "\n".join(lines)
    assert "SUCCEEDED" in text and "SUCCE…" not in text
    assert "SubsetBatchDone4?" in text and "12.3s" in text
    assert "SqlStatementFailed: relation" in text  # the error wraps, it is not dropped
    assert "not shown at 100 columns: type, start, end" in text


def test_a_wide_terminal_shows_every_column() -> None:
    text = "\n".join(_render(_states(), 260))
    assert "not shown" not in text
    for header in ("type", "start", "end", "visits", "retries", "heartbeat"):
        assert header in text


def test_the_executions_table_fits_100_columns() -> None:
    start = dt.datetime(2026, 12, 7, 3, 16, 33, tzinfo=dt.UTC)
    rows = [
        {
            "name": "a8ce49af-968d-45d3-b825-094765854250",
            "status": status,
            "startDate": start,
            "stopDate": start + dt.timedelta(seconds=57),
            "input": '{"month": "2026-12"}',
        }
        for status in ("SUCCEEDED", "FAILED", "PENDING_REDRIVE")
    ]
    table = executions_table(rows, "arn:aws:states:us-east-1:123456789012:stateMachine:bison")
    for width in (100, 80):
        lines = _render(table, width)
        assert max(len(line) for line in lines) <= width
        text = "\n".join(lines)
        assert "PENDING_REDRIVE" in text and "a8ce49af-968d-45d3-b825-094765854250" in text
    assert "2026-12" in "\n".join(_render(table, 100))
