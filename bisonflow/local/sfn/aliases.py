"""StartExecution on a state machine alias or version ARN, as Step Functions accepts it (used
by the StartExecution seam, bisonflow.local.sfn.start).

Step Functions starts an execution from a qualified ARN: an alias ARN runs the version the
alias routes to (one of its RoutingConfiguration versions, by weight), a version ARN that
version (Step Functions Developer Guide, "How Step Functions associates executions with a
version or alias"; API Reference, StartExecution: stateMachineArn accepts an unqualified, a
version or an alias ARN). moto 5.2.5's executing backend finds no state machine for an alias
ARN (StateMachineDoesNotExist) and crashes on a version (its StateMachineVersion has no
`_handle_name_input_idempotency`), so the monthly schedule, whose target is the `live` alias,
could start nothing.

`unqualified` resolves a qualified ARN to its version and starts that version's revision as an
execution of the state machine, which moto can run. It does so only when the version is the
machine's current revision (same definition and role) - after a deploy, `live` routes to the
newest version; a version older than the machine's current definition is refused naming both,
since moto cannot run a stored revision. Not emulated: the execution is listed under the
unqualified machine, and DescribeExecution gives no stateMachineAliasArn/VersionArn.
Authorization is unaffected: the IAM seam sees the request's own (qualified) ARN.
"""

from __future__ import annotations

import random
from typing import Any

from moto.stepfunctions.exceptions import StateMachineDoesNotExist


def _version_arn(backend: Any, arn: str) -> tuple[Any, str] | None:
    """(state machine, version ARN) for an alias or version ARN; None for an unqualified one."""
    base, _, qualifier = arn.rpartition(":")
    if base.count(":") != 6:  # arn:aws:states:region:account:stateMachine:name
        return None
    machine = next((m for m in backend.state_machines if m.arn == base), None)
    if machine is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{base}'")
    if qualifier.isdigit():
        return machine, arn
    alias = machine.aliases.get(qualifier)
    if alias is None:
        raise StateMachineDoesNotExist(f"State Machine Alias Does Not Exist: '{arn}'")
    routes = alias.routing_configuration
    chosen = random.choices(
        [r["stateMachineVersionArn"] for r in routes], [int(r["weight"]) for r in routes]
    )[0]
    return machine, chosen


def unqualified(backend: Any, state_machine_arn: str) -> str:
    """The ARN moto can start for `state_machine_arn`: the machine's own for an alias or version
    ARN that routes to its current revision; an unqualified ARN as given."""
    resolved = _version_arn(backend, state_machine_arn)
    if resolved is None:
        return state_machine_arn
    machine, version_arn = resolved
    version = machine.versions.get(int(version_arn.rsplit(":", 1)[1]))
    if version is None:
        raise StateMachineDoesNotExist(f"State Machine Does Not Exist: '{version_arn}'")
    if (version.definition, version.roleArn) != (machine.definition, machine.roleArn):
        raise StateMachineDoesNotExist(
            f"{state_machine_arn} routes to {version_arn}, which is not the state machine's "
            "current revision: the emulator can run only the current one"
        )
    return machine.arn
