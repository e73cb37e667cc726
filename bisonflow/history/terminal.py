"""The terminal side of execution history: rich tables, the live view, and log links.

Everything is drawn from bisonflow.history.execution_view's model, the same one report.html uses.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from rich.console import (
    Console,
    ConsoleOptions,
    Group,
    JustifyMethod,
    RenderableType,
    RenderResult,
)
from rich.table import Table
from rich.text import Text

from bisonflow.history.execution_view import ExecutionView, StateRun, state_defs
from bisonflow.history.executions import month_of, summary_line

#: The colour of each execution or state status.
STYLES = {
    "SUCCEEDED": "green",
    "FAILED": "bold red",
    "TIMED_OUT": "bold red",
    "CAUGHT": "yellow",
    "RUNNING": "cyan",
    "PENDING_REDRIVE": "yellow",
    "ABORTED": "magenta",
    "CANCELLED": "magenta",
    "NOT_RUN": "dim",
}

#: The log group callback tasks' EC2 instances write to, one stream per instance id.
TASK_LOG_GROUP = "bison_task"


def make_console(file: IO[str] | None = None) -> Console:
    """A console on stdout; off a terminal (pipes, CI, tests) 200 columns unless COLUMNS says.

    rich itself honours NO_COLOR, TERM=dumb and FORCE_COLOR.
    """
    console = Console(file=file)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(file=file, width=200)
    return console


# --- small formatting helpers ------------------------------------------------------------
def status_text(status: str) -> Text:
    return Text(status, style=STYLES.get(status, ""))


def format_time(value: dt.datetime | None, date: bool = False) -> str:
    if value is None:
        return ""
    if date:
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return value.strftime("%H:%M:%S.%f")[:-3]


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def error_text(error: str | None, cause: str | None) -> str:
    line = summary_line(cause)
    if error and line.startswith(f"{error}:"):
        return line
    if error and line:
        return f"{error}: {line}"
    return error or line


def _now_for(view: ExecutionView) -> dt.datetime:
    return view.stop or dt.datetime.now(dt.UTC)


def state_seconds(view: ExecutionView, run: StateRun) -> float | None:
    """Time inside the state over all visits; an open visit counts until now (or the stop)."""
    if not run.intervals:
        return None
    end = _now_for(view)
    total = 0.0
    for start, stop in run.intervals:
        if start is not None:
            total += ((stop or end) - start).total_seconds()
    return max(total, 0.0)


def heartbeat(view: ExecutionView, run: StateRun) -> str:
    """HeartbeatSeconds, or HeartbeatSecondsPath with the value it took when it ran."""
    definition = _definitions(view).get(run.name, {})
    if "HeartbeatSeconds" in definition:
        return f"{definition['HeartbeatSeconds']}s"
    path = definition.get("HeartbeatSecondsPath")
    if not path:
        return ""
    seconds = [
        e["taskScheduledEventDetails"].get("heartbeatInSeconds")
        for e in _events_of(view, run)
        if e["type"] == "TaskScheduled"
    ]
    seconds = [s for s in seconds if s is not None]
    return f"{path} = {seconds[-1]}s" if seconds else str(path)


def _definitions(view: ExecutionView) -> dict[str, dict[str, Any]]:
    return {d.name: d.definition for d in state_defs(view.definition)}


def _events_of(view: ExecutionView, run: StateRun) -> list[dict[str, Any]]:
    wanted = set(run.event_ids)
    return [e for e in view.events if e["id"] in wanted]


# --- the renderables -----------------------------------------------------------------------
def header(view: ExecutionView) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    grid.add_row("execution", view.name)
    grid.add_row("status", status_text(view.status))
    grid.add_row("started", format_time(view.start, date=True))
    grid.add_row("stopped", format_time(view.stop, date=True))
    grid.add_row("duration", format_duration(view.duration_seconds))
    if view.error:
        grid.add_row("error", view.error)
    if view.cause:
        grid.add_row("cause", summary_line(view.cause))
    return grid


@dataclass(frozen=True)
class Column:
    """A table column, and how readily it is dropped when the terminal is narrow: the lower
    `keep`, the sooner; KEEP_ALWAYS never (it folds instead)."""

    header: str
    keep: int
    justify: JustifyMethod = "left"
    fold: bool = False  # long values wrap onto more lines instead of widening the column
    min_width: int = 0
    grow: bool = False  # takes the width the others leave (the table must expand)


KEEP_ALWAYS = 100


@dataclass
class FittedTable:
    """A table that drops its least needed columns until it fits the width it is drawn at
    (rich passes it at render time), and says which it left out; rich would otherwise
    squeeze every column and cut values such as SUCCEEDED to "SUCCE…" (issue 12)."""

    title: str
    columns: list[Column]
    rows: list[list[str | Text]] = field(default_factory=list)
    expand: bool = False

    def kept(self, width: int) -> list[int]:
        """Indexes of the columns that fit in `width` characters."""
        kept = list(range(len(self.columns)))
        for index in sorted(kept, key=lambda i: self.columns[i].keep):
            if self._width(kept) <= width:
                break
            if self.columns[index].keep < KEEP_ALWAYS:
                kept.remove(index)
        return kept

    def _width(self, indexes: list[int]) -> int:
        # Each column has one space of padding either side and a border line on its right;
        # the table one more border on its left.
        return sum(self._natural(i) + 3 for i in indexes) + 1

    def _natural(self, index: int) -> int:
        column = self.columns[index]
        if column.fold:
            return max(column.min_width, len(column.header))
        cells = (Text(c).cell_len if isinstance(c, str) else c.cell_len for c in self._cells(index))
        return max([len(column.header), *cells])

    def _cells(self, index: int) -> list[str | Text]:
        return [row[index] for row in self.rows]

    def table(self, width: int) -> Table:
        kept = self.kept(width)
        hidden = [c.header for i, c in enumerate(self.columns) if i not in kept]
        caption = (
            f"not shown at {width} columns: {', '.join(hidden)} (a wider terminal, COLUMNS=N "
            "or --json shows them)"
            if hidden
            else None
        )
        table = Table(
            title=self.title,
            title_justify="left",
            expand=self.expand,
            caption=caption,
            caption_justify="left",
        )
        for index in kept:
            column = self.columns[index]
            table.add_column(
                column.header,
                justify=column.justify,
                no_wrap=not column.fold,
                overflow="fold",
                ratio=1 if column.grow else None,
                min_width=column.min_width or None,
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in kept))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


#: The states table's columns: at 100 columns the state, its status, its time and its error
#: stay; the rest go in this order as the terminal narrows.
STATE_COLUMNS = [
    Column("state", KEEP_ALWAYS),
    Column("type", 2),
    Column("status", KEEP_ALWAYS),
    Column("start", 4),
    Column("end", 3),
    Column("duration", 8, justify="right"),
    Column("visits", 6, justify="right"),
    Column("retries", 5, justify="right"),
    Column("heartbeat", 1, fold=True, min_width=12),
    Column("error: cause", KEEP_ALWAYS, fold=True, min_width=24, grow=True),
]


def states_table(view: ExecutionView) -> FittedTable:
    table = FittedTable(f"states of {view.name}", STATE_COLUMNS, expand=True)
    for run in view.in_order():
        name = f"  {run.branch[0]}[{run.branch[1]}] › {run.name}" if run.branch else run.name
        table.rows.append(
            [
                name,
                run.type,
                status_text(run.status),
                format_time(run.entered),
                "" if run.status == "RUNNING" else format_time(run.exited),
                format_duration(state_seconds(view, run)),
                str(run.visits) if run.visits else "",
                str(run.retries) if run.retries else "",
                heartbeat(view, run),
                Text(error_text(run.error, run.cause), style="red" if run.error else ""),
            ]
        )
    return table


def execution_view(view: ExecutionView) -> RenderableType:
    """The header and the states table: what `history`, `watch` and `run` show."""
    return Group(header(view), Text(""), states_table(view))


#: `bisonflow executions`' columns, dropped in this order as the terminal narrows.
EXECUTION_COLUMNS = [
    Column("name", KEEP_ALWAYS),
    Column("status", KEEP_ALWAYS),
    Column("start", 3),
    Column("duration", 2, justify="right"),
    Column("month", 4),
]


def executions_table(rows: list[dict[str, Any]], state_machine_arn: str) -> FittedTable:
    """`bisonflow executions`: rows are DescribeExecution results, newest first."""
    table = FittedTable(f"executions of {state_machine_arn}", EXECUTION_COLUMNS)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        start, stop = row.get("startDate"), row.get("stopDate")
        seconds = ((stop or now) - start).total_seconds() if start else None
        table.rows.append(
            [
                row["name"],
                status_text(row["status"]),
                format_time(start, date=True),
                format_duration(seconds),
                month_of(row),
            ]
        )
    return table


def live_poll(
    console: Console,
    poller: Callable[[Callable[[ExecutionView], None]], ExecutionView],
) -> ExecutionView:
    """Show the execution view live while `poller(update)` runs; then print the final view.

    Off a terminal nothing is redrawn: only the final view is printed.
    """
    if not console.is_terminal:
        view = poller(lambda view: None)
    else:
        from rich.live import Live

        with Live(console=console, refresh_per_second=4, transient=True) as live:
            view = poller(lambda view: live.update(execution_view(view)))
    console.print(execution_view(view))
    return view


# --- log links -----------------------------------------------------------------------------
def _function_name(value: str) -> str:
    """A Lambda FunctionName parameter (name, ARN or partial ARN) as the bare name."""
    parts = value.split(":")
    if "function" in parts:
        return parts[parts.index("function") + 1]
    return value


def _console_url(region: str, group: str, stream: str | None = None) -> str:
    def enc(text: str) -> str:
        # The CloudWatch console's fragment encoding: URL-encode, then '%' becomes '$25'.
        return quote(quote(text, safe=""), safe="").replace("%", "$")

    url = (
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logsV2:log-groups/log-group/{enc(group)}"
    )
    return url + (f"/log-events/{enc(stream)}" if stream else "")


def log_links(
    view: ExecutionView,
    region: str,
    local_log_dir: Path | None = None,
    url_of: Callable[[Path], str] | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Per state, (label, URL) links to the logs of the Lambda functions and tasks it ran.

    Function names come from the FunctionName of the state's TaskScheduled events; a
    callback task's EC2 instance id from its TaskSubmitted output. On AWS the links open
    the CloudWatch console (/aws/lambda/<function>, bison_task/<instance id>); with
    local_log_dir (the local runtime's <workdir>/logs) they are file:// links to
    lambda/<function>.log and tasks/<instance id>.log, for files that exist, or the link
    url_of gives such a file: a page served over http may not link file:// URLs, so the
    console passes a function giving its own URL for a log file.
    """
    link = url_of or _file_url
    links: dict[str, list[tuple[str, str]]] = {}
    for run in view.in_order():
        found: list[tuple[str, str]] = []
        for event in _events_of(view, run):
            for label, url in _event_links(event, region, local_log_dir, link):
                if (label, url) not in found:
                    found.append((label, url))
        if found:
            links[run.name] = found
    return links


def _file_url(path: Path) -> str:
    return path.resolve().as_uri()


def _event_links(
    event: dict[str, Any], region: str, local_log_dir: Path | None, link: Callable[[Path], str]
) -> list[tuple[str, str]]:
    if event["type"] == "TaskScheduled":
        details = event["taskScheduledEventDetails"]
        if details.get("resourceType") != "lambda":
            return []
        try:
            function = json.loads(details.get("parameters") or "{}").get("FunctionName")
        except ValueError:
            return []
        if not function:
            return []
        name = _function_name(str(function))
        group = f"/aws/lambda/{name}"
        if local_log_dir is None:
            return [(group, _console_url(region, group))]
        path = local_log_dir / "lambda" / f"{name}.log"
        return [(group, link(path))] if path.is_file() else []
    if event["type"] == "TaskSubmitted":
        details = event["taskSubmittedEventDetails"]
        try:
            payload = json.loads(details.get("output") or "{}").get("Payload") or {}
        except (ValueError, AttributeError):
            return []
        instance = payload.get("instance_id") if isinstance(payload, dict) else None
        if not instance:
            return []
        label = f"{TASK_LOG_GROUP}/{instance}"
        if local_log_dir is None:
            return [(label, _console_url(region, TASK_LOG_GROUP, instance))]
        path = local_log_dir / "tasks" / f"{instance}.log"
        return [(label, link(path))] if path.is_file() else []
    return []
