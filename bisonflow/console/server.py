"""The console's HTTP server, safe by default.

- It binds 127.0.0.1 only: nothing off this machine can reach it.
- Every path starts with a random session token (/<token>/...), printed once in the console's
  URL. A request without it is refused (403) before any route runs, so another page open in the
  same browser, which cannot know the token, cannot read or drive the console (a cross-site form
  or script would need the path). Links inside the console carry it (Request.href).
- The Host header must name the loopback address and this port, so a DNS name rebound to
  127.0.0.1 cannot reach it either.
- Whatever changes state (start, stop, redrive, fire the schedule) is a POST route; a GET there
  is refused (405). A POST whose Origin is another site's is refused too.
- Every answer forbids loading anything but from this origin (Content-Security-Policy) and sends
  a Referer only to this origin: a link out (the CloudWatch console) does not carry the token
  away.

Routes are (method, path pattern, handler); a handler takes the Connection, the Request and the
pattern's match, and returns a Response. An AWS refusal (botocore's ClientError) inside a handler
becomes a page with AWS's own code and message: the console can do no more than the user's
credentials allow, and says what they did not allow.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from bisonflow.aws import error_code
from bisonflow.console.connection import Connection

#: The one address the console binds.
LOOPBACK = "127.0.0.1"
#: Bytes of a POST body the console reads at most (its forms are a few fields).
MAX_FORM_BYTES = 64 * 1024
#: What a page may load: only this origin (data: images for the report's inline figures).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends "Origin: null" with the console's own forms.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
#: The one line a request without the session token gets.
NO_TOKEN = (
    "bisonflow console: this request has no session token. Open the URL the console printed "
    "(it carries the token)."
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # after the token: "/", "/executions", ...
    query: dict[str, str]
    form: dict[str, str]
    root: str  # "/<token>": every link starts with it

    def href(self, path: str, **query: str | None) -> str:
        """A link inside the console (the token kept), with the query's non-empty values."""
        given = {k: v for k, v in query.items() if v}
        return f"{self.root}{path}" + (f"?{urlencode(given)}" if given else "")


@dataclass
class Response:
    body: str | bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Connection, Request, re.Match[str]], Response]


@dataclass(frozen=True)
class Route:
    method: str  # "GET" or "POST"
    pattern: str  # a regular expression matched against the whole path
    handler: Handler


def refusal(exc: ClientError) -> str:
    """AWS's refusal as a person reads it: its code and message, as AWS words them."""
    message = exc.response.get("Error", {}).get("Message") or str(exc)
    return f"{error_code(exc)}: {message}"


def json_response(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status, "application/json")


def redirect(request: Request, path: str, **query: str | None) -> Response:
    """303 See Other: after a POST, the browser GETs the result (a reload does not repost)."""
    return Response(b"", HTTPStatus.SEE_OTHER, headers={"Location": request.href(path, **query)})


def text_response(message: str, status: int) -> Response:
    return Response(message + "\n", status, "text/plain; charset=utf-8")


class ConsoleServer:
    """Serves `routes` for `connection` on 127.0.0.1:`port` (0: any free port) in a thread."""

    def __init__(
        self,
        connection: Connection,
        routes: Sequence[Route],
        port: int = 0,
        error_page: Callable[[Request, str, str], str] | None = None,
    ) -> None:
        self.connection = connection
        self.routes = tuple(routes)
        self.token = secrets.token_urlsafe(24)
        self._error_page = error_page
        self._httpd = ThreadingHTTPServer((LOOPBACK, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """The URL to open: the only way in, as it carries the token."""
        return f"{self.origin}/{self.token}/"

    def start(self) -> ConsoleServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="bisonflow-console", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (shutdown() waits for a loop that runs, so only
        a started server is shut down)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one request -----------------------------------------------------------------------

    def answer(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response:
        """The response to one request, every check of the module docstring first."""
        if not self._host_allowed(headers.get("Host", "")):
            return text_response("bisonflow console: refused: Host is not this console", 403)
        parts = urlsplit(raw_path)
        prefix = f"/{self.token}"
        rest = parts.path[len(prefix) :]
        if not secrets.compare_digest(parts.path[: len(prefix)], prefix) or (
            rest and not rest.startswith("/")
        ):
            return text_response(NO_TOKEN, 403)
        path = rest or "/"
        if method == "POST" and headers.get("Origin") not in (None, self.origin):
            return text_response("bisonflow console: refused: a POST from another origin", 403)
        form: dict[str, str] = {}
        if method == "POST":
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        request = Request(method, path, dict(parse_qsl(parts.query)), form, prefix)
        allowed: list[str] = []
        for route in self.routes:
            match = re.fullmatch(route.pattern, path)
            if match is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            return self._run(route, request, match)
        if allowed:
            return Response(
                f"bisonflow console: {path} takes {' or '.join(allowed)}, not {method}\n",
                HTTPStatus.METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                {"Allow": ", ".join(allowed)},
            )
        return text_response(f"bisonflow console: no page {path}", 404)

    def _host_allowed(self, host: str) -> bool:
        return host in (f"{LOOPBACK}:{self.port}", f"localhost:{self.port}")

    def _run(self, route: Route, request: Request, match: re.Match[str]) -> Response:
        try:
            return route.handler(self.connection, request, match)
        except ClientError as exc:
            return self._failure(request, "AWS refused", refusal(exc), 502)
        except BotoCoreError as exc:
            return self._failure(request, "the endpoint could not be reached", str(exc), 502)

    def _failure(self, request: Request, title: str, message: str, status: int) -> Response:
        if self._error_page is None or request.path.endswith(".json"):
            return text_response(f"{title}: {message}", status)
        return Response(self._error_page(request, title, message), status)


def _handler_class(server: ConsoleServer) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = "bisonflow-console"
        sys_version = ""

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self._respond("GET", b"")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_FORM_BYTES:
                self._send(text_response("bisonflow console: the form is too large", 413))
                return
            self._respond("POST", self.rfile.read(length))

        def _respond(self, method: str, body: bytes) -> None:
            self._send(server.answer(method, self.path, self.headers, body))

        def _send(self, response: Response) -> None:
            body = response.body.encode() if isinstance(response.body, str) else response.body
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in {**SECURITY_HEADERS, **response.headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Silent: the request line carries the session token, which belongs in the one
            URL printed at start, not in a scrollback; failures are shown on the page."""

    return _Handler
