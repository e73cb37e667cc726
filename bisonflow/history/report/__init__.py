"""report.html for one execution: a self-contained page (graph, state details, timeline,
events) rendered from the ExecutionView model; the same sections, and the live_update model
that keeps them current, serve the console's page of a running execution."""

from bisonflow.history.report.live import (
    live_script,
    live_update,
    render_report,
    report_body,
    report_head,
    report_scripts,
    write_report,
)

__all__ = [
    "live_script",
    "live_update",
    "render_report",
    "report_body",
    "report_head",
    "report_scripts",
    "write_report",
]
