"""The console's routes, page by page, and serve(): what `bisonflow local up` and `bisonflow
console` start."""

from __future__ import annotations

from functools import partial

from bisonflow.console.connection import Connection
from bisonflow.console.frame import error_page
from bisonflow.console.pages import execution, executions, outputs, overview, start
from bisonflow.console.server import ConsoleServer, Route

#: Every page's routes; a path matches at most one pattern per method.
ROUTES: tuple[Route, ...] = (
    *overview.ROUTES,
    *start.ROUTES,
    *executions.ROUTES,
    *execution.ROUTES,
    *outputs.ROUTES,
)


def console_server(connection: Connection, port: int = 0) -> ConsoleServer:
    """The console for `connection` on 127.0.0.1:`port` (0: any free port); start() it, or
    use it as a context manager."""
    return ConsoleServer(connection, ROUTES, port, error_page=partial(error_page, connection))
