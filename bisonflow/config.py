"""Workflow configuration, read only from environment variables.

Nothing here has a default that names an account, a bucket or a date: a missing required
variable fails the step with a message naming it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from bisonflow.aws import region

#: BISON's presence threshold: the seed's calc_stats builds its PAM with `min_count = 3`
#: (github lifemapper/bison, commit be5204f, `bison/task/calc_stats.py` lines 171-172;
#: `PAM.init_from_heatmap` keeps a cell when its count is >= min_count). The one default of
#: PAM_MIN_PRESENCE_COUNT: the template's PamMinPresenceCount and the calc_stats task's
#: fallback are tested against it.
DEFAULT_MIN_PRESENCE_COUNT = 3


class ConfigError(RuntimeError):
    """A required environment variable is missing or malformed."""


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"environment variable {name} is not set")
    return value


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer setting; a malformed or too small value fails naming the variable."""
    return int(_env_number(name, default, int, "an integer", minimum))


def env_float(name: str, default: float, minimum: float, maximum: float, unit: str = "") -> float:
    """A number setting within [minimum, maximum]; `unit` (e.g. " days (why)") follows the
    range in the message a value outside it gets."""
    return float(_env_number(name, default, float, "a number", minimum, maximum, unit))


def _env_number(
    name: str,
    default: float,
    parse: Callable[[str], float],
    noun: str,
    minimum: float,
    maximum: float | None = None,
    unit: str = "",
) -> float:
    """One reading of a numeric setting for env_int and env_float: blank means the default,
    and every bad value fails naming the variable, what it must be and what it was."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be {noun}, got {raw!r}") from None
    if maximum is not None and not minimum <= value <= maximum:
        raise ConfigError(
            f"environment variable {name} must be between {minimum:g} and {maximum:g}"
            f"{unit}, got {value}"
        )
    if value < minimum:
        raise ConfigError(f"environment variable {name} must be >= {minimum}, got {value}")
    return value


def bison_bucket() -> str:
    """The BISON bucket: inputs, task specs, annotated RIIS and summaries."""
    return _required("BISON_BUCKET")


def statement_canceller() -> str:
    """The SQL Lambda (its live alias) the cleanup asks to cancel a run's statements: only the
    role that ran a statement may act on it (bisonflow.steps.run_cleanup)."""
    return _required("SQL_CANCEL_FUNCTION")


def workflow_alias() -> str:
    """The state machine's `live` alias ARN, which StartMonth starts (steps.scheduled_start)."""
    return _required("WORKFLOW_ALIAS_ARN")


def gbif_bucket() -> str:
    """GBIF's open-data bucket for this region (`gbif-open-data-<region>`), unless overridden."""
    return os.environ.get("GBIF_BUCKET", "").strip() or f"gbif-open-data-{region()}"


def gbif_api_url() -> str:
    """Base URL of the GBIF API (v1); the local runtime points it at its stand-in."""
    return os.environ.get("GBIF_API_URL", "").strip().rstrip("/") or "https://api.gbif.org/v1"


@dataclass(frozen=True)
class RedshiftTarget:
    """Where Data API statements run: a Serverless workgroup and database."""

    workgroup: str
    database: str
    iam_role: str

    @classmethod
    def from_env(cls) -> RedshiftTarget:
        return cls(
            workgroup=_required("REDSHIFT_WORKGROUP"),
            database=os.environ.get("REDSHIFT_DATABASE", "").strip() or "dev",
            # COPY / UNLOAD / external schema credentials: the workgroup's default IAM role
            # unless an explicit role ARN is configured.
            iam_role=os.environ.get("REDSHIFT_IAM_ROLE", "").strip() or "default",
        )


@dataclass(frozen=True)
class Timing:
    """Poll interval and callback-task limits, handed to the state machine by CheckGbif."""

    poll_seconds: int
    task_heartbeat_seconds: int
    task_timeout_seconds: int

    @classmethod
    def from_env(cls) -> Timing:
        return cls(
            poll_seconds=env_int("POLL_SECONDS", 30),
            task_heartbeat_seconds=env_int("TASK_HEARTBEAT_SECONDS", 600, minimum=1),
            task_timeout_seconds=env_int("TASK_TIMEOUT_SECONDS", 4 * 3600, minimum=1),
        )


def name_cache_max_age_days() -> int:
    """NAME_CACHE_MAX_AGE_DAYS: cached GBIF matches older than this are asked again (0: never
    use the cache). GBIF's backbone changes a few times a year, so a month is the default."""
    return env_int("NAME_CACHE_MAX_AGE_DAYS", 30)


def min_presence_count() -> int:
    """PAM_MIN_PRESENCE_COUNT: occurrences of a species at a site for it to count as present."""
    return env_int("PAM_MIN_PRESENCE_COUNT", DEFAULT_MIN_PRESENCE_COUNT, minimum=1)


def launch_template(task: str) -> str:
    """The EC2 launch template id (lt-...) of one task, e.g. ANNOTATE_RIIS_LAUNCH_TEMPLATE.

    The template's boot script runs the task; the stack sets these from its launch templates.
    """
    return _required(f"{task.upper()}_LAUNCH_TEMPLATE")


def heartbeat_interval_seconds() -> float:
    """How often a running task sends SendTaskHeartbeat."""
    raw = os.environ.get("TASK_HEARTBEAT_INTERVAL", "").strip()
    try:
        return float(raw) if raw else 60.0
    except ValueError:
        raise ConfigError(f"TASK_HEARTBEAT_INTERVAL must be a number, got {raw!r}") from None
