"""GBIF species-API client: name → accepted backbone taxon, with retries and bounded concurrency.

annotate_riis resolves thousands of names against a public API that rate-limits (429) and
now and then fails (5xx, timeouts). One retry policy here keeps an hour-long run from dying on
a transient error, and still fails loudly, naming the URL, when the API is really down.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from bisonflow.config import env_int, gbif_api_url

#: Statuses worth another try: rate limiting and server-side trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Match statuses whose usage is not itself accepted but points at the accepted taxon.
SYNONYM_STATUSES = frozenset(
    {"SYNONYM", "HETEROTYPIC_SYNONYM", "HOMOTYPIC_SYNONYM", "PROPARTE_SYNONYM", "MISAPPLIED"}
)
#: Match types that do not identify the RIIS taxon itself. HIGHERRANK is refused on purpose:
#: resolving "Festuca rubra ssp. fallax" to the species (or a genus) would flag every
#: occurrence of the broader, possibly native, taxon as introduced.
NO_MATCH_TYPES = frozenset({"NONE", "HIGHERRANK"})

DEFAULT_CONCURRENCY = 16


class GbifApiError(RuntimeError):
    """The GBIF API kept failing (or answered with something unusable)."""


@dataclass(frozen=True, order=True)
class NameQuery:
    """What is sent to /species/match; RIIS rows sharing it are resolved by one request."""

    name: str
    kingdom: str = ""


@dataclass(frozen=True)
class AcceptedTaxon:
    key: int | None
    name: str

    @property
    def resolved(self) -> bool:
        return self.key is not None


UNRESOLVED = AcceptedTaxon(None, "")


def concurrency_from_env() -> int:
    """GBIF_API_CONCURRENCY: GBIF throttles per client, so the fan-out is kept adjustable."""
    return env_int("GBIF_API_CONCURRENCY", DEFAULT_CONCURRENCY, minimum=1)


def interpret_match(body: dict[str, Any]) -> AcceptedTaxon:
    """The accepted taxon a /species/match body names; its name is empty when only a key is given.

    v1 match responses carry a synonym's acceptedUsageKey but (usually) not the accepted name,
    so the caller looks the name up by key when it is missing.
    """
    if body.get("matchType", "NONE") in NO_MATCH_TYPES:
        return UNRESOLVED
    status = str(body.get("status") or "").upper()
    if body.get("synonym") or status in SYNONYM_STATUSES:
        key = body.get("acceptedUsageKey")
        name = body.get("accepted") or ""
    else:
        key = body.get("usageKey")
        name = body.get("scientificName") or ""
    return UNRESOLVED if key is None else AcceptedTaxon(int(key), str(name))


class GbifClient:
    """Thread-safe (one requests.Session per thread) GET client for the GBIF v1 API."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        max_attempts: int = 8,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = (base_url or gbif_api_url()).rstrip("/")
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._sleep = sleep
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._names_by_key: dict[int, str] = {}

    def __enter__(self) -> GbifClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        """Retry-After when the server gives one, else capped exponential backoff, full jitter."""
        retry_after = _retry_after_seconds(response) if response is not None else None
        if retry_after is not None:
            return min(retry_after, self.max_backoff_seconds)
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET base_url + path; None on 404; retries transient failures, then raises."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        last = "no attempt made"
        for attempt in range(1, self.max_attempts + 1):
            response = None
            try:
                response = self._session().get(url, params=params, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 404:
                    return None
                if response.ok:
                    return _json_body(response, url, params)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    break
            if attempt < self.max_attempts:
                self._sleep(self._delay(attempt, response))
        raise GbifApiError(f"GBIF API GET {url} params={params} failed: {last} (gave up)")

    def match(self, query: NameQuery) -> dict[str, Any]:
        params = {"name": query.name}
        if query.kingdom:
            params["kingdom"] = query.kingdom
        body = self.get_json("species/match", params)
        if body is None:
            raise GbifApiError(f"GBIF API {self.base_url}/species/match answered 404")
        return body

    def accepted_name(self, key: int) -> str:
        """Scientific name of a backbone usage; cached because many synonyms share one key."""
        with self._lock:
            if key in self._names_by_key:
                return self._names_by_key[key]
        usage = self.get_json(f"species/{key}")
        name = str((usage or {}).get("scientificName") or "")
        with self._lock:
            self._names_by_key[key] = name
        return name

    def accepted_taxon(self, query: NameQuery) -> AcceptedTaxon:
        taxon = interpret_match(self.match(query))
        if taxon.key is not None and not taxon.name:
            taxon = AcceptedTaxon(taxon.key, self.accepted_name(taxon.key))
        return taxon


def resolve_all(
    client: GbifClient,
    queries: Iterable[NameQuery],
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: Callable[[str], None] | None = None,
) -> dict[NameQuery, AcceptedTaxon]:
    """Resolve each distinct query once; stop at the first query that keeps failing."""
    todo = sorted(set(queries))
    results: dict[NameQuery, AcceptedTaxon] = {}
    if not todo:
        return results
    report = _progress_reporter(len(todo), progress)
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="gbif") as pool:
        futures = {pool.submit(client.accepted_taxon, q): q for q in todo}
        for future in as_completed(futures):
            query = futures[future]
            try:
                results[query] = future.result()
            except Exception as exc:
                for other in futures:
                    other.cancel()
                raise GbifApiError(f"could not resolve {query.name!r}: {exc}") from exc
            report(len(results))
    return results


def _progress_reporter(total: int, progress: Callable[[str], None] | None) -> Callable[[int], None]:
    """Report at every 10% so a long run shows it is alive without flooding the log."""
    reported = [0]  # tenths already reported

    def report(done: int) -> None:
        tenths = done * 10 // total
        if progress is not None and tenths > reported[0]:
            reported[0] = tenths
            progress(f"resolved {done}/{total} names ({tenths * 10}%)")

    return report


def _retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _json_body(response: requests.Response, url: str, params: dict[str, str] | None) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GbifApiError(
            f"GBIF API GET {url} params={params} answered non-JSON: {response.text[:200]!r}"
        ) from None
