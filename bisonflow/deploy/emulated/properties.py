"""What a service-API creator (service_apis, metric_alarm in bisonflow.deploy.emulated)
may be given: the properties it can apply; the rest is an error naming them, so the deploy
never silently drops a setting of the template."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class UnsupportedProperty(ValueError):
    """The template sets a property this module cannot apply, or the target did not apply."""


def require_known(what: str, given: dict[str, Any], known: Iterable[str]) -> None:
    """Refuse `given` if it names a property outside `known`."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UnsupportedProperty(
            f"{what}: {', '.join(unknown)} cannot be applied through the service API "
            f"(supported: {', '.join(sorted(known))})"
        )
