"""A loopback stand-in for the GBIF species API, answering from a JSON table.

Tests and the local runtime must not depend on api.gbif.org (rate limits, a changing
backbone), and benchmarks need a controllable latency; tests of the client's retry need
an API that fails on cue. The table maps an exact name to the body GBIF's
/v1/species/match returns for it; /v1/species/<key> is answered from the same bodies so a
synonym's accepted name can be looked up as on GBIF.

The match parameters the client sends are honoured as GBIF does, as far as a table can:
`authorship` picks the entry "<name> <authorship>" when the table has one (GBIF uses
authorship to tell homonyms apart), else the entry for the bare name; `strict=true` turns a
HIGHERRANK answer into no match. Other parameters (kingdom, verbose) are recorded only.

Rate limiting is played two ways, both answering 429 at once (as a gateway rejects, before
any work) with a Retry-After in seconds or as an HTTP-date (RFC 9110 section 10.2.3): a
storm (every request for `storm_seconds` from the first one, read on a clock a test can
fake) and a concurrency limit (a request arriving while `max_in_flight` are being answered).
An outage (`outage`, for the fault matrix through the local runtime) answers every request
with one status for a while from now (5xx: GBIF failing; 429: a storm), or drops every
connection unanswered (GBIF down, as a failed load balancer or network leaves a client).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bisonflow.gbif.retry_budget import REAL_CLOCK, Clock
from bisonflow.gbif.species_api import NO_MATCH

#: The status `answer` gives for a request whose connection is dropped unanswered (an outage).
DROPPED = 0
#: A fail_first entry that answers only after `stall_seconds` (for the client's read timeout).
STALL = "stall"


def accepted_match(key: int, name: str, kingdom: str = "Plantae", **fields: Any) -> dict[str, Any]:
    """A /species/match answer naming an accepted species, as GBIF words it; `fields`
    override (e.g. status="SYNONYM", synonym=True, acceptedUsageKey=...), for match tables.

    A match at species rank carries its species' key, `speciesKey`, as GBIF's answer does
    (the accepted classification's key: gbif/gbif-api NameUsageMatch.java): the usage's own
    key, or a synonym's acceptedUsageKey. Below species the caller gives it (the parent
    species' key is not known here); above species there is none."""
    body = {
        "usageKey": key,
        "scientificName": name,
        "rank": "SPECIES",
        "status": "ACCEPTED",
        "matchType": "EXACT",
        "confidence": 98,
        "synonym": False,
        "kingdom": kingdom,
        **fields,
    }
    if body["rank"] == "SPECIES" and "speciesKey" not in body:
        body["speciesKey"] = body.get("acceptedUsageKey") or key
    return body


class GbifStandin:
    """`with GbifStandin(path) as gbif:` serves the table at `gbif.base_url` (".../v1").

    latency_seconds delays every answer (the benchmark's 200 ms of a distant API); requests
    are served on a thread each, so concurrent clients overlap their waits as on GBIF.
    fail_first={"Name": [429, 503, STALL]} answers the first match requests for "Name" with
    those statuses, or stalls, then normally. Every 429 carries Retry-After
    `retry_after_seconds` (default 0), as an HTTP-date when `retry_after_date`. `storm_seconds`
    answers every GET 429 for that long from the first; `max_in_flight` answers 429 to a GET
    arriving while that many are being answered. `requests` counts every GET, `rejected` the
    429s among them; `match_params` keeps the parameters of every /species/match request;
    `peak_in_flight` is the most requests answered at once (rejections excluded);
    `outage_answers` counts the requests an outage answered or dropped.
    """

    def __init__(
        self,
        table_path: Path,
        latency_seconds: float = 0.0,
        fail_first: Mapping[str, Sequence[int | str]] | None = None,
        stall_seconds: float = 1.0,
        *,
        retry_after_seconds: float = 0.0,
        retry_after_date: bool = False,
        storm_seconds: float = 0.0,
        max_in_flight: int | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.table: dict[str, dict[str, Any]] = json.loads(Path(table_path).read_text("utf-8"))
        self.latency_seconds = latency_seconds
        self.stall_seconds = stall_seconds
        self.retry_after_seconds = retry_after_seconds
        self.retry_after_date = retry_after_date
        self.storm_seconds = storm_seconds
        self.max_in_flight = max_in_flight
        self.clock = clock
        self._storm_started: float | None = None
        self._outage_seconds = 0.0
        self._outage_started: float | None = None  # None: from the next request
        self._outage_status = DROPPED
        self.requests = 0
        self.rejected = 0
        self.outage_answers = 0  # requests an outage answered (or dropped)
        self.match_params: list[dict[str, str]] = []
        self.peak_in_flight = 0  # most requests being answered at the same time
        self._in_flight = 0
        self._failures = {name: list(codes) for name, codes in (fail_first or {}).items()}
        self._usages = _usages_by_key(self.table)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _handler_for(self))
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},  # so stop() returns promptly
                name="gbif-standin",
                daemon=True,
            )
            self._thread.start()
        return self.base_url

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the GBIF stand-in is not running")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host  # typeshed allows bytes
        return f"http://{host}:{port}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join()
            self._server = self._thread = None

    def __enter__(self) -> GbifStandin:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def outage(self, seconds: float, status: int | None, retry_after_seconds: float = 0.0) -> None:
        """For `seconds` from the next request (so a client that has not started yet meets
        all of it), answer every GET `status` at once (a 429 with Retry-After
        `retry_after_seconds`), or with None drop its connection unanswered; 0 s ends it."""
        with self._lock:
            self._outage_seconds, self._outage_started = seconds, None
            self._outage_status = DROPPED if status is None else status
            if status == 429:
                self.retry_after_seconds = retry_after_seconds

    def answer(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        """(status, body) for one GET; the HTTP handler only serialises it (DROPPED: it
        closes the connection without an answer)."""
        with self._lock:
            self.requests += 1
            now = self.clock.monotonic()
            if self._outage_started is None:
                self._outage_started = now
            if now - self._outage_started < self._outage_seconds:
                self.outage_answers += 1
                if self._outage_status == 429:
                    self.rejected += 1
                return self._outage_status, {"error": f"outage: {self._outage_status or 'down'}"}
            refusal = self._refusal()
            if refusal:
                self.rejected += 1
                return 429, {"error": refusal}
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            status, body = self._answer(path, query)
        finally:
            with self._lock:
                self._in_flight -= 1
        if status == 429:
            with self._lock:
                self.rejected += 1
        return status, body

    def retry_after(self) -> str:
        """The Retry-After value of a 429: delay-seconds, or the HTTP-date that far ahead."""
        if self.retry_after_date:
            return formatdate(math.ceil(self.clock.time() + self.retry_after_seconds), usegmt=True)
        return f"{self.retry_after_seconds:g}"

    def _refusal(self) -> str:
        """Why this request is rate limited before any work ("" if it is not); under _lock."""
        now = self.clock.monotonic()
        if self._storm_started is None:
            self._storm_started = now
        if now - self._storm_started < self.storm_seconds:
            return f"rate limited: storm of {self.storm_seconds:g} s"
        if self.max_in_flight is not None and self._in_flight >= self.max_in_flight:
            return f"rate limited: more than {self.max_in_flight} requests at once"
        return ""

    def _answer(self, path: str, query: str) -> tuple[int, dict[str, Any]]:
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if path == "/v1/species/match":
            params = {k: v[0] for k, v in parse_qs(query).items()}
            name = params.get("name", "")
            with self._lock:
                self.match_params.append(params)
            failure = self._next_failure(name)
            if failure == STALL:
                time.sleep(self.stall_seconds)
            elif failure:
                return int(failure), {"error": f"injected failure {failure} for {name!r}"}
            return 200, self._match(name, params)
        key = path.removeprefix("/v1/species/")
        if key != path and key.isdigit() and int(key) in self._usages:
            return 200, self._usages[int(key)]
        return 404, {"error": f"not found: {path}"}

    def _match(self, name: str, params: Mapping[str, str]) -> dict[str, Any]:
        authorship = params.get("authorship", "").strip()
        body = self.table.get(f"{name} {authorship}") if authorship else None
        body = body or self.table.get(name, NO_MATCH)
        if params.get("strict", "").lower() == "true" and body.get("matchType") == "HIGHERRANK":
            return NO_MATCH
        return body

    def _next_failure(self, name: str) -> int | str | None:
        with self._lock:
            codes = self._failures.get(name)
            return codes.pop(0) if codes else None


class _Server(ThreadingHTTPServer):
    """A listen backlog for a benchmark's worth of clients connecting at once (the default of
    5 makes the sixth wait for a SYN retry, a second)."""

    request_queue_size = 128
    daemon_threads = True


def _usages_by_key(table: Mapping[str, Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """A /species/<key> body for every usage a match body names (accepted ones win)."""
    usages: dict[int, dict[str, Any]] = {}
    for body in table.values():
        if "usageKey" in body and not body.get("synonym"):
            usages.setdefault(int(body["usageKey"]), _usage(body))
    for body in table.values():
        if "usageKey" in body:
            usages.setdefault(int(body["usageKey"]), _usage(body))
        if body.get("acceptedUsageKey") is not None and body.get("accepted"):
            key = int(body["acceptedUsageKey"])
            usages.setdefault(key, {"key": key, "scientificName": body["accepted"]})
    return usages


def _usage(body: Mapping[str, Any]) -> dict[str, Any]:
    usage = {
        "key": int(body["usageKey"]),
        "scientificName": body.get("scientificName", ""),
        "canonicalName": body.get("canonicalName", ""),
        "rank": body.get("rank", ""),
        "kingdom": body.get("kingdom", ""),
        "taxonomicStatus": body.get("status", "ACCEPTED"),
    }
    if body.get("acceptedUsageKey") is not None:
        usage["acceptedKey"] = int(body["acceptedUsageKey"])
    return usage


def _handler_for(standin: GbifStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as with the real API
        # Headers and body go out in two writes; without TCP_NODELAY the body waits for the
        # client's delayed ACK (~40 ms a request), which would swamp latency_seconds.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            status, body = standin.answer(url.path, url.query)
            if status == DROPPED:
                self.close_connection = True  # the client sees the connection end unanswered
                return
            payload = json.dumps(body).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status == 429:
                    self.send_header("Retry-After", standin.retry_after())
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a stall)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Silent: a benchmark makes thousands of requests."""

    return Handler
