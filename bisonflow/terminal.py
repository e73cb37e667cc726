"""The terminal side of execution history: rich tables, the live view, and log links.

Everything is drawn from bisonflow.execution_view's model, the same one report.html uses.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from bisonflow.execution_view import ExecutionView, StateRun, state_defs
from bisonflow.executions import month_of, summary_line

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


def states_table(view: ExecutionView) -> Table:
    table = Table(title=f"states of {view.name}", title_justify="left", expand=True)
    table.add_column("state", no_wrap=True)
    table.add_column("type")
    table.add_column("status")
    table.add_column("start")
    table.add_column("end")
    table.add_column("duration", justify="right")
    table.add_column("visits", justify="right")
    table.add_column("retries", justify="right")
    table.add_column("heartbeat", overflow="fold")
    table.add_column("error: cause", overflow="fold", ratio=1, min_width=30)
    for run in view.in_order():
        name = f"  {run.branch[0]}[{run.branch[1]}] › {run.name}" if run.branch else run.name
        table.add_row(
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
        )
    return table


def execution_view(view: ExecutionView) -> RenderableType:
    """The header and the states table: what `history`, `watch` and `run` show."""
    return Group(header(view), Text(""), states_table(view))


def executions_table(rows: list[dict[str, Any]], state_machine_arn: str) -> Table:
    """`bisonflow executions`: rows are DescribeExecution results, newest first."""
    table = Table(title=f"executions of {state_machine_arn}", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("status")
    table.add_column("start")
    table.add_column("duration", justify="right")
    table.add_column("month")
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        start, stop = row.get("startDate"), row.get("stopDate")
        seconds = ((stop or now) - start).total_seconds() if start else None
        table.add_row(
            row["name"],
            status_text(row["status"]),
            format_time(start, date=True),
            format_duration(seconds),
            month_of(row),
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
    view: ExecutionView, region: str, local_log_dir: Path | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Per state, (label, URL) links to the logs of the Lambda functions and tasks it ran.

    Function names come from the FunctionName of the state's TaskScheduled events; a
    callback task's EC2 instance id from its TaskSubmitted output. On AWS the links open
    the CloudWatch console (/aws/lambda/<function>, bison_task/<instance id>); with
    local_log_dir (the local runtime's <workdir>/logs) they are file:// links to
    lambda/<function>.log and tasks/<instance id>.log, for files that exist.
    """
    links: dict[str, list[tuple[str, str]]] = {}
    for run in view.in_order():
        found: list[tuple[str, str]] = []
        for event in _events_of(view, run):
            for label, url in _event_links(event, region, local_log_dir):
                if (label, url) not in found:
                    found.append((label, url))
        if found:
            links[run.name] = found
    return links


def _event_links(
    event: dict[str, Any], region: str, local_log_dir: Path | None
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
        return [(group, path.resolve().as_uri())] if path.is_file() else []
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
        return [(label, path.resolve().as_uri())] if path.is_file() else []
    return []
