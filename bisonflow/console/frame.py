"""The frame every console page shares: the navigation, the account and region it talks to
(on every page, so nobody starts a month in the wrong account), the stylesheet, and the one
error page."""

from __future__ import annotations

from functools import cache
from html import escape
from pathlib import Path

from bisonflow.console.connection import Connection
from bisonflow.console.server import Request, Response

_STATIC = Path(__file__).parent / "static"
#: The console's sections, in the navigation's order: (path, label).
SECTIONS = (
    ("/", "Workflow"),
    ("/start", "Start execution"),
    ("/executions", "Executions"),
    ("/outputs", "Outputs"),
)


@cache
def static(name: str) -> str:
    """One of the console's own files under static/, inlined into its pages (no request)."""
    return (_STATIC / name).read_text(encoding="utf-8")


def page_html(
    connection: Connection,
    request: Request,
    title: str,
    body: str,
    *,
    head: str = "",
    scripts: str = "",
) -> str:
    """A whole console page: `body` inside the frame, `head` (styles) and `scripts` added."""
    active = ' class="active"'
    links = "".join(
        f'<a href="{escape(request.href(path))}"'
        f"{active if _active(request.path, path) else ''}>{escape(label)}</a>"
        for path, label in SECTIONS
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)} · BISON console</title>",
            f"<style>\n{static('console.css')}</style>",
            head,
            "</head><body>",
            f'<nav class="console"><span class="brand">BISON workflow</span>{links}'
            f'<span class="where" id="where">{escape(connection.where)}</span></nav>',
            f'<main class="console">{body}</main>',
            f"<script>\n{static('console.js')}</script>",
            scripts,
            "</body></html>",
        ]
    )


def page(
    connection: Connection,
    request: Request,
    title: str,
    body: str,
    *,
    head: str = "",
    scripts: str = "",
    status: int = 200,
) -> Response:
    return Response(page_html(connection, request, title, body, head=head, scripts=scripts), status)


def error_page(connection: Connection, request: Request, title: str, message: str) -> str:
    """What the page shows when AWS refused a call (or the endpoint did not answer)."""
    body = (
        f'<section><h1 class="error">{escape(title)}</h1><p id="failure">{escape(message)}</p>'
        '<p class="muted">The console makes each call with your own credentials: it can do '
        "what they allow, no more.</p></section>"
    )
    return page_html(connection, request, title, body)


def _active(current: str, section: str) -> bool:
    return current == section if section == "/" else current.startswith(section)
