"""The console's pages, one module per page; each module's ROUTES lists its (method, path,
handler) routes (bisonflow.console.server.Route), gathered by bisonflow.console.app."""

from __future__ import annotations

from urllib.parse import quote


def execution_path(arn: str) -> str:
    """An execution's page, the ARN as one path segment (its colons kept, its slashes not)."""
    return f"/executions/{quote(arn, safe=':')}"
