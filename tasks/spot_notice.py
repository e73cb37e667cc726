"""Watch instance metadata for a Spot interruption notice, so a reclaimed task reports at once.

EC2 warns a Spot instance two minutes before it stops or terminates it: the instance metadata
item `spot/instance-action` appears, `{"action": "terminate", "time": "2017-09-18T08:22:00Z"}`
(action `stop`, `terminate` or `hibernate`), and until then it is absent: "you receive an HTTP
404 error when you try to retrieve it". AWS recommends checking "every 5 seconds"; the notice
is given "on a best effort basis" (EC2 User Guide, "Spot Instance interruption notices",
instance-action). Without this watch a reclaimed task was noticed only when its heartbeat
timed out (600 s by default).

Reads use IMDSv2, as the launch templates require (HttpTokens required; a token from `PUT
/latest/api/token`, sent as `X-aws-ec2-metadata-token`; EC2 User Guide, "Use the Instance
Metadata Service to access instance metadata"). The endpoint is botocore's setting
AWS_EC2_METADATA_SERVICE_ENDPOINT, default http://169.254.169.254/; the local EC2 agent points
it at its stand-in (bisonflow.local.ec2.instance_metadata). AWS_EC2_METADATA_DISABLED is botocore's
switch for its own credential and region lookups, not for this watch: the local agent sets it
so that boto3 never looks for credentials there.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from tasks.periodic import Periodic

log = logging.getLogger("bisonflow.task")

ENDPOINT_VARIABLE = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
DEFAULT_ENDPOINT = "http://169.254.169.254/"
INTERVAL_VARIABLE = "TASK_SPOT_CHECK_SECONDS"
DEFAULT_INTERVAL = (
    5.0  # AWS: "We recommend that you check for these interruption notices every 5 seconds"
)
TOKEN_TTL_SECONDS = 21_600  # the longest IMDSv2 allows
NOTICE_PATH = "spot/instance-action"
#: instance-action's actions that end the instance's work.
INTERRUPTING = ("stop", "terminate", "hibernate")


class MetadataUnavailable(RuntimeError):
    """Instance metadata did not answer (no IMDS here, or it refused the token)."""


class InstanceMetadata:
    """A small IMDSv2 client: a session token, then GETs under /latest/meta-data/."""

    def __init__(self, endpoint: str | None = None, timeout: float = 1.0) -> None:
        base = endpoint or os.environ.get(ENDPOINT_VARIABLE, "").strip() or DEFAULT_ENDPOINT
        self._base = base.rstrip("/") + "/"
        self._timeout = timeout
        self._token: str | None = None
        self._token_expires = 0.0

    def get(self, path: str) -> str | None:
        """The item at `path`, or None where IMDS answers 404 (not present)."""
        request = urllib.request.Request(
            f"{self._base}latest/meta-data/{path}",
            headers={"X-aws-ec2-metadata-token": self._session_token()},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return response.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            if exc.code == 401:  # the token expired early: ask for another next time
                self._token = None
            raise MetadataUnavailable(f"GET {path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise MetadataUnavailable(f"GET {path}: {exc}") from exc

    def _session_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        request = urllib.request.Request(
            f"{self._base}latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                self._token = response.read().decode()
        except (urllib.error.URLError, OSError) as exc:
            raise MetadataUnavailable(f"no IMDSv2 token from {self._base}: {exc}") from exc
        self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token


@dataclass(frozen=True)
class InterruptionNotice:
    action: str  # stop, terminate or hibernate
    time: str  # when, UTC, as EC2 gives it

    def describe(self) -> str:
        return f"Spot interruption notice: EC2 will {self.action} this instance at {self.time}"


def parse_notice(body: str | None) -> InterruptionNotice | None:
    """instance-action's item as a notice; None when absent or not an interruption."""
    if not body:
        return None
    try:
        item = json.loads(body)
    except ValueError:
        return None
    if not isinstance(item, dict) or item.get("action") not in INTERRUPTING:
        return None
    return InterruptionNotice(str(item["action"]), str(item.get("time", "")))


def check_interval() -> float:
    """Seconds between checks: TASK_SPOT_CHECK_SECONDS, else AWS's 5."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_INTERVAL
    except ValueError:
        value = -1.0
    if value <= 0:
        raise ValueError(f"{INTERVAL_VARIABLE} must be a positive number of seconds, got {raw!r}")
    return value


class SpotWatch(Periodic):
    """A thread that checks for the notice every `interval` seconds and calls `on_notice`
    once when it appears. An unreachable IMDS is logged once; the watch keeps trying."""

    at_once = True

    def __init__(
        self,
        on_notice: Callable[[InterruptionNotice], None],
        interval: float,
        metadata: InstanceMetadata | None = None,
    ) -> None:
        super().__init__(interval, name="spot-watch")
        self._on_notice = on_notice
        self._metadata = metadata or InstanceMetadata()
        self._warned = False

    def check_once(self) -> InterruptionNotice | None:
        try:
            return parse_notice(self._metadata.get(NOTICE_PATH))
        except MetadataUnavailable as exc:
            if not self._warned:
                log.warning("no Spot interruption watch for now: %s", exc)
                self._warned = True
            return None

    def tick(self) -> bool:
        """Checks at once, then every interval (`at_once`): a notice given before the task
        started (EC2 may give it while the instance boots) is met before any work, not an
        interval later, by which time a short task may have finished on an instance about to
        go."""
        notice = self.check_once()
        if notice is not None:
            self._on_notice(notice)
        return notice is not None
