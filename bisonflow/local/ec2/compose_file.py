"""What the local EC2 agent reads from a task's compose file (tasks/compose.<task>.yml).

The agent runs the task's command in place of `docker compose up`, so it takes from the
compose file what compose would decide on the instance: the service's network (how far the
container is from instance metadata, bisonflow.local.ec2.instance_metadata) and its logging
driver's destination. Values are interpolated from the boot script's exported variables as
compose interpolates them (Compose file reference, "Interpolation": `${VAR}`, `$VAR`,
`${VAR:-default}` when unset or empty, `${VAR-default}` when unset, `$$` for a literal `$`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_VARIABLE = re.compile(r"\$(?:\$|\{(\w+)(?:(:?-)([^}]*))?\}|(\w+))")


def interpolate(text: str, env: dict[str, str]) -> str:
    """`text` with compose's variable references replaced from `env`."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        operator, default = match.group(2), match.group(3) or ""
        found = env.get(name)
        if operator == ":-" and not found:
            return default
        if operator == "-" and found is None:
            return default
        return found or ""

    return _VARIABLE.sub(value, text)


@dataclass(frozen=True)
class TaskService:
    """The one service of a task's compose file, as compose would run it."""

    name: str
    network_mode: str  # "bridge" when the file sets none: Docker's default network
    log_driver: str | None
    log_options: dict[str, str]

    @property
    def awslogs(self) -> tuple[str, str] | None:
        """(group, stream) where the awslogs driver sends the output; None for another
        driver."""
        if self.log_driver != "awslogs":
            return None
        return self.log_options["awslogs-group"], self.log_options["awslogs-stream"]


def task_service(compose_file: Path, env: dict[str, str]) -> TaskService:
    """The service of `compose_file`, its values interpolated from `env`."""
    services: dict[str, Any] = (yaml.safe_load(compose_file.read_text()) or {}).get(
        "services"
    ) or {}
    if len(services) != 1:
        raise ValueError(
            f"{compose_file}: a task's compose file has one service, found {len(services)}"
        )
    ((name, spec),) = services.items()
    logging = spec.get("logging") or {}
    return TaskService(
        name=name,
        network_mode=interpolate(str(spec.get("network_mode", "bridge")), env),
        log_driver=logging.get("driver"),
        log_options={
            k: interpolate(str(v), env) for k, v in (logging.get("options") or {}).items()
        },
    )
