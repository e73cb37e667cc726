"""GBIF species-API client: a RIIS name → the accepted backbone taxon, judged for doubt.

annotate_riis resolves thousands of names against a public API that rate-limits (429) and
now and then fails (5xx, timeouts). Each request retries within a time budget
(bisonflow.gbif.retry_budget: Retry-After honoured, GBIF_RETRY_BUDGET_SECONDS), so an hour-long run
outlives a storm of 429s and still fails loudly, naming the URL, the attempts and the time
spent, when the API is really down. How many requests are in flight is not fixed but found
(bisonflow.gbif.concurrency_limit: AIMD between 1 and GBIF_API_CONCURRENCY).

What a match means is decided here too, once, so the annotated file, the curators' report and
the name cache can never disagree:

* **unresolved** (no key): GBIF found nothing (matchType NONE), only a higher taxon
  (HIGHERRANK: "Festuca rubra ssp. fallax" resolved to the species, or a genus, would flag
  every occurrence of a broader, possibly native, taxon), a usage in another kingdom than the
  list says (a homonym), or a synonym without an accepted usage.
* **doubtful** (key kept, reported): a FUZZY match (a misspelling on the list), a backbone
  usage whose status is DOUBTFUL, a confidence below DOUBTFUL_CONFIDENCE, or a usage ranked
  above species. The key is the best evidence there is, so it is used; the curators are
  asked to check it.
* **resolved**: everything else; a synonym resolves to its accepted usage.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

import requests

from bisonflow.config import gbif_api_url
from bisonflow.gbif.concurrency_limit import (
    AimdLimit,
    LimitSettings,
    Outcome,
)
from bisonflow.gbif.retry_budget import (
    REAL_CLOCK,
    Clock,
    RetrySchedule,
    retry_after_seconds,
    retry_budget_from_env,
)

#: Statuses worth another try: rate limiting and server-side trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Match statuses whose usage is not itself accepted but points at the accepted taxon.
SYNONYM_STATUSES = frozenset(
    {"SYNONYM", "HETEROTYPIC_SYNONYM", "HOMOTYPIC_SYNONYM", "PROPARTE_SYNONYM", "MISAPPLIED"}
)
#: What GBIF answers for a name it cannot match (matchType NONE): the body interpret_match reads
#: as unresolved, which the local stand-in answers and the sample's unplaceable names carry.
NO_MATCH: dict[str, Any] = {"confidence": 100, "matchType": "NONE", "synonym": False}
#: GBIF scores an exact, unambiguous name 95-100; below this a match is worth a curator's look.
DOUBTFUL_CONFIDENCE = 90
#: Backbone ranks above species: the list holds species and lower ranks only.
ABOVE_SPECIES_RANKS = frozenset(
    {"KINGDOM", "PHYLUM", "CLASS", "ORDER", "FAMILY", "GENUS", "SUBGENUS", "SECTION", "SERIES"}
)
#: RIIS kingdom spellings that differ from the backbone's.
GBIF_KINGDOM_NAMES = {"Virus": "Viruses"}


class GbifApiError(RuntimeError):
    """The GBIF API kept failing (or answered with something unusable)."""


@dataclass(frozen=True, order=True)
class NameQuery:
    """The (scientificName, authorship, kingdom) triple RIIS rows share: one request, one cache
    entry. Authorship tells homonyms apart, kingdom keeps a plant from matching an animal."""

    name: str
    authorship: str = ""
    kingdom: str = ""

    @property
    def gbif_kingdom(self) -> str:
        return GBIF_KINGDOM_NAMES.get(self.kingdom, self.kingdom)

    def params(self) -> dict[str, str]:
        """/v1/species/match parameters; strict: never fall back to a higher taxon."""
        params = {"name": self.name, "strict": "true"}
        if self.authorship:
            params["authorship"] = self.authorship
        if self.kingdom:
            params["kingdom"] = self.gbif_kingdom
        return params


@dataclass(frozen=True)
class NameMatch:
    """What one name resolved to, with the evidence kept for the report and the cache.

    Besides the accepted key, three fields of GBIF's answer decide which occurrence records
    a listing applies to (bisonflow.sql.workflow_sql `_mark_sql`). GBIF's match model
    (gbif/gbif-api `src/main/java/org/gbif/api/model/checklistbank/NameUsageMatch.java`,
    commit 05db5aa) defines `usageKey` as "the key of the name usage that has been looked
    up", `acceptedUsageKey` as "the key of the accepted name usage in case the matched usage
    was a synonym", `rank` as "the rank of the matching usage", and carries the accepted
    classification's `speciesKey`. Occurrence records carry the same two kinds of key:
    `taxonkey`, the taxon "corresponding to `scientificname`" (a synonym's own key, a
    subspecies' key), and `specieskey`, the one "corresponding to `species`" (gbif/occurrence
    `aws-public-data.md`, "Schema"). So a species listing meets its records through
    `species_key`, an infraspecific one through `key` and `usage_key`.
    """

    key: int | None  # accepted backbone taxon key (None: unresolved)
    name: str  # accepted scientific name ("" when unresolved)
    match_type: str  # EXACT, FUZZY, HIGHERRANK, NONE
    confidence: int | None
    status: str  # backbone status of the matched usage (ACCEPTED, SYNONYM, DOUBTFUL, ...)
    matched_name: str  # the usage GBIF matched (a synonym's own name), "" if none
    rank: str  # backbone rank of the matched usage (SPECIES, SUBSPECIES, ...), "" if none
    species_key: int | None  # speciesKey: the accepted species (None: unresolved or above)
    usage_key: int | None  # usageKey: the name as written (a synonym's own key; else = key)
    reason: str = ""  # why the match is unresolved or doubtful; "" when it is sound

    @property
    def resolved(self) -> bool:
        return self.key is not None

    @property
    def doubtful(self) -> bool:
        return self.resolved and bool(self.reason)

    def to_dict(self) -> dict[str, Any]:
        """The fields by name. Not dataclasses.asdict, which deep-copies every value: all are
        ints, strings or None, and asdict was a quarter of a warm rerun's CPU (15,000 names
        written back to the cache)."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NameMatch:
        """Inverse of to_dict; a missing or mistyped field raises (the cache drops the entry,
        so an entry written before rank, species_key and usage_key were kept is asked again)."""
        numbers = {f: data[f] for f in ("key", "confidence", "species_key", "usage_key")}
        for field, value in numbers.items():
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise TypeError(f"{field} must be an integer or null, got {value!r}")
        texts = {
            f: data[f] for f in ("name", "match_type", "status", "matched_name", "rank", "reason")
        }
        for field, value in texts.items():
            if not isinstance(value, str):
                raise TypeError(f"{field} must be a string, got {value!r}")
        return cls(**numbers, **texts)

    def with_accepted_name(self, name: str) -> NameMatch:
        values = self.to_dict()
        values["name"] = name
        return NameMatch(**values)


def limit_from_env(clock: Clock = REAL_CLOCK) -> AimdLimit:
    """The adaptive limit the environment asks for (concurrency_limit.LimitSettings)."""
    return LimitSettings.from_env().limit(clock)


def interpret_match(body: dict[str, Any], query: NameQuery | None = None) -> NameMatch:
    """Judge a /species/match body (see the module docstring); its accepted name may be "".

    v1 match responses carry a synonym's acceptedUsageKey but (usually) not the accepted name,
    so the caller looks the name up by key when it is missing.
    """
    match_type = str(body.get("matchType") or "NONE").upper()
    status = str(body.get("status") or "").upper()
    confidence = body.get("confidence")
    confidence = int(confidence) if isinstance(confidence, int | float) else None
    matched = str(body.get("scientificName") or "")
    rank = str(body.get("rank") or "").upper()

    def unresolved(reason: str) -> NameMatch:
        return NameMatch(
            None, "", match_type, confidence, status, matched, rank, None, None, reason
        )

    if match_type == "NONE":
        return unresolved("no match in the GBIF backbone")
    if match_type == "HIGHERRANK":
        return unresolved(f"GBIF matched only {rank.lower() or 'a higher rank'} {matched!r}")
    kingdom = str(body.get("kingdom") or "")
    if query is not None and query.kingdom and kingdom and kingdom != query.gbif_kingdom:
        return unresolved(f"GBIF matched {matched!r} in kingdom {kingdom}, not {query.kingdom}")
    if body.get("synonym") or status in SYNONYM_STATUSES:
        key, name = body.get("acceptedUsageKey"), str(body.get("accepted") or "")
        if key is None:
            return unresolved(f"synonym {matched!r} has no accepted usage")
    else:
        key, name = body.get("usageKey"), matched
        if key is None:
            return unresolved(f"match without a usageKey ({match_type})")
    usage_key = body.get("usageKey")
    usage_key = int(key) if usage_key is None else int(usage_key)
    species_key = body.get("speciesKey")
    species_key = None if species_key is None else int(species_key)
    return NameMatch(
        int(key), name, match_type, confidence, status, matched, rank, species_key, usage_key,
        _doubt(body),
    )  # fmt: skip


def _doubt(body: dict[str, Any]) -> str:
    """Why a match with a key still needs a curator's look ("" if it does not)."""
    reasons = []
    if str(body.get("matchType")).upper() == "FUZZY":
        reasons.append("fuzzy match (the list's spelling differs)")
    if str(body.get("status") or "").upper() == "DOUBTFUL":
        reasons.append("backbone status DOUBTFUL")
    confidence = body.get("confidence")
    if isinstance(confidence, int | float) and confidence < DOUBTFUL_CONFIDENCE:
        reasons.append(f"confidence {int(confidence)} < {DOUBTFUL_CONFIDENCE}")
    rank = str(body.get("rank") or "").upper()
    if rank in ABOVE_SPECIES_RANKS:
        reasons.append(f"matched rank {rank}, above species")
    return "; ".join(reasons)


class GbifClient:
    """Thread-safe (one requests.Session per thread) GET client for the GBIF v1 API.

    `calls` counts HTTP requests sent, retries included: the figure the name cache saves;
    `throttled` counts the 429s among them. Every attempt passes `limit` (one AimdLimit shared
    by the worker threads; from the environment unless given). A request retries transient
    failures for up to `retry_budget_seconds` (GBIF_RETRY_BUDGET_SECONDS unless given) and, if
    `max_attempts` is given, at most that many times. `clock` is for tests (a fake replays a
    long storm at once).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        timeout: tuple[float, float] = (10.0, 60.0),
        retry_budget_seconds: float | None = None,
        max_attempts: int | None = None,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        limit: AimdLimit | None = None,
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.base_url = (base_url or gbif_api_url()).rstrip("/")
        self.timeout = timeout
        budget = retry_budget_seconds
        self.retry_budget_seconds = float(retry_budget_from_env() if budget is None else budget)
        self.max_attempts = None if max_attempts is None else max(1, max_attempts)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.clock = clock
        self.limit = limit if limit is not None else limit_from_env(clock)
        self.calls = 0
        self.retries = 0
        self.throttled = 0
        self._abort = threading.Event()
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

    def abort(self) -> None:
        """Make requests in flight give up at their next retry instead of backing off, and
        those waiting for a slot give up waiting."""
        self._abort.set()
        self.limit.interrupt()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers["Accept"] = "application/json"
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET base_url + path; None on 404; retries transient failures within the budget,
        then raises naming the URL, the attempts and the time spent."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        schedule = RetrySchedule(
            self.retry_budget_seconds,
            self.backoff_seconds,
            self.max_backoff_seconds,
            self.max_attempts,
            self.clock,
        )
        last = "no attempt made"
        while True:
            if self._abort.is_set() or (ticket := self.limit.acquire()) is None:
                schedule.stop_reason = "aborted after another name failed"
                break
            response, outcome = None, Outcome.CONGESTED
            with self._lock:
                self.calls += 1
                self.retries += schedule.attempts > 0
            schedule.attempts += 1
            try:
                response = self._session().get(url, params=params, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                outcome = _outcome(response.status_code)
                if response.status_code == 429:
                    with self._lock:
                        self.throttled += 1
            finally:
                self.limit.release(ticket, outcome)
            if response is not None:
                if response.status_code == 404:
                    return None
                if response.ok:
                    return _json_body(response, url, params)
                last = f"HTTP {response.status_code}"
                if response.status_code not in RETRY_STATUSES:
                    schedule.stop_reason = "not a transient status"
                    break
            header = None if response is None else response.headers.get("Retry-After")
            delay = schedule.next_delay(retry_after_seconds(header, self.clock.time()))
            if delay is None:
                break
            if self.clock.wait(delay, self._abort):
                schedule.stop_reason = "aborted after another name failed"
                break
        raise GbifApiError(
            f"GBIF API GET {url} params={params} failed: {last}; {schedule.summary()}"
        )

    def match(self, query: NameQuery) -> dict[str, Any]:
        body = self.get_json("species/match", query.params())
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

    def resolve(self, query: NameQuery) -> NameMatch:
        """The judged match of one name, with the accepted name filled in."""
        found = interpret_match(self.match(query), query)
        if found.key is not None and not found.name:
            found = found.with_accepted_name(self.accepted_name(found.key))
        return found


def resolve_all(
    client: GbifClient,
    queries: Iterable[NameQuery],
    concurrency: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[NameQuery, NameMatch]:
    """Resolve each distinct query once on `concurrency` worker threads (default: the client's
    ceiling), whose requests the client's adaptive limit admits; stop at the first query that
    keeps failing (the others give up rather than finish their backoff)."""
    todo = sorted(set(queries))
    results: dict[NameQuery, NameMatch] = {}
    if not todo:
        return results
    report = _progress_reporter(len(todo), progress)
    workers = client.limit.ceiling if concurrency is None else concurrency
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="gbif")
    try:
        futures = {pool.submit(client.resolve, q): q for q in todo}
        for future in as_completed(futures):
            query = futures[future]
            try:
                results[query] = future.result()
            except Exception as exc:
                client.abort()
                raise GbifApiError(f"could not resolve {query.name!r}: {exc}") from exc
            report(len(results))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
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


def _outcome(status: int) -> Outcome:
    """What an HTTP status says about the server's load, for the adaptive limit."""
    if status in RETRY_STATUSES:
        return Outcome.CONGESTED
    if status < 400 or status == 404:
        return Outcome.CLEAN
    return Outcome.IGNORED


def _json_body(response: requests.Response, url: str, params: dict[str, str] | None) -> Any:
    try:
        return response.json()
    except ValueError:
        raise GbifApiError(
            f"GBIF API GET {url} params={params} answered non-JSON: {response.text[:200]!r}"
        ) from None
