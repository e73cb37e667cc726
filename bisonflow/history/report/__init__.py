"""report.html for one execution: a self-contained page (graph, state details, timeline,
events) rendered from the ExecutionView model."""

from bisonflow.history.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
