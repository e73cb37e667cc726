"""Emulator seam: RunInstances can be refused for lack of capacity, as on AWS.

EC2 refuses a launch when the pool it asks for has no room: `InsufficientInstanceCapacity`
("There is not enough capacity to fulfill your request"; try later, fewer instances or
"different instance types") and `InsufficientCapacity`, both among the EC2 API's server
errors (HTTP 500), and for Spot requests `UnfulfillableCapacity`, `SpotMaxPriceTooLow` (the
maximum price is below the Spot price) and `MaxSpotInstanceCountExceeded` (the account's Spot
limit), client errors (HTTP 400) (EC2 API Reference, "Error codes for the Amazon EC2 API").
An instance type's capacity is per market: Spot and On-Demand are separate pools.

moto 5.2.5 launches every RunInstances it authorizes: the fallback of launch_task
(bisonflow.steps.ec2_tasks.launch: the next instance type, then On-Demand) could never be exercised
locally. Here a test names the (instance type, market) pools that refuse and with which code;
RunInstances for such a pool fails with that code and its HTTP status, after authorization (as
on AWS, where an unauthorized call is refused before capacity is looked at). The type and the
market are the launch's own: the request's, else its launch template's (parameters given in
the request overwrite the template's: EC2 API Reference, RunInstances, LaunchTemplate).
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.instances import InstanceResponse

from bisonflow.local.seams import Patch, Seam

#: Capacity codes and the HTTP status EC2 answers them with (server errors are 500).
CAPACITY_CODES = {
    "InsufficientInstanceCapacity": 500,
    "InsufficientCapacity": 500,
    "UnfulfillableCapacity": 400,
    "SpotMaxPriceTooLow": 400,
    "MaxSpotInstanceCountExceeded": 400,
}
#: InstanceMarketOptions.MarketType as RunInstances names a Spot launch; no market is On-Demand.
SPOT, ON_DEMAND = "spot", "on-demand"

_refusals: dict[tuple[str, str], str] = {}
_lock = threading.Lock()
_moto_run_instances = InstanceResponse.run_instances


def refuse(instance_type: str, market: str, code: str = "InsufficientInstanceCapacity") -> None:
    """From now on, launches of `instance_type` in `market` fail with `code`."""
    if code not in CAPACITY_CODES:
        raise ValueError(
            f"{code} is not a capacity error; expected one of {sorted(CAPACITY_CODES)}"
        )
    if market not in (SPOT, ON_DEMAND):
        raise ValueError(f"market must be {SPOT!r} or {ON_DEMAND!r}, got {market!r}")
    with _lock:
        _refusals[(instance_type, market)] = code


def restore() -> None:
    """Every pool has capacity again."""
    with _lock:
        _refusals.clear()


def refusal(instance_type: str, market: str) -> str | None:
    with _lock:
        return _refusals.get((instance_type, market))


def _launch_pool(response: InstanceResponse) -> tuple[str, str]:
    """(instance type, market) of the RunInstances request, the template filling in."""
    template: dict[str, Any] = {}
    spec = response._get_param("LaunchTemplate", {})
    if spec:
        template = response.ec2_backend._get_template_from_args(spec).data
    instance_type = response._get_param("InstanceType") or template.get("InstanceType")
    market = response._get_param("InstanceMarketOptions.MarketType") or (
        template.get("InstanceMarketOptions") or {}
    ).get("MarketType")
    return instance_type or "m1.small", SPOT if market == SPOT else ON_DEMAND


def run_instances(self: InstanceResponse) -> Any:
    """RunInstances, refused with the pool's capacity code when a test said so."""
    instance_type, market = _launch_pool(self)
    code = refusal(instance_type, market)
    if code is None:
        return _moto_run_instances(self)
    error = EC2ClientError(
        code,
        f"We currently do not have sufficient {instance_type} capacity for {market} instances "
        "(bisonflow.local.ec2.capacity).",
    )
    _, headers, body = self.serialized(ActionResult(error))
    headers["status"] = CAPACITY_CODES[code]
    return body, headers


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        InstanceResponse.__module__,
        "InstanceResponse.run_instances",
        ("self",),
        replacement=run_instances,
    ),
)
