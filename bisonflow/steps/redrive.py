"""Where a redrive resumes: the rule Step Functions applies to an execution's history.

"A parent workflow redrives unsuccessful states if there's no <stateType>Exited event
corresponding to the <stateType>Entered event for a state" (Step Functions developer guide,
"Redriving Map Runs"); a redrive "continues the failed execution from the unsuccessful step and
uses the same input" (API reference, RedriveExecution). The emulator's RedriveExecution
(bisonflow.local.sfn.redrive) resumes there, and `bisonflow redrive` reads it to refuse a
redrive that can only fail again: an error a Catch sent to a Fail state leaves that Fail state
as the unsuccessful one, and redriving a Fail state fails at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resumption:
    """The top-level state a redrive reruns, and the input it was entered with."""

    state: str
    state_input: Any


def unsuccessful_state(events: list[dict[str, Any]], top_level: set[str]) -> Resumption | None:
    """The top-level state entered last and never exited; None if every state exited.

    `top_level` names the machine's own states: states inside a Parallel or Map have events
    too, and ASL makes every state name in a machine unique.
    """
    open_states: dict[str, Any] = {}
    for event in events:
        kind = str(event["type"])
        if kind.endswith("StateEntered"):
            details = event["stateEnteredEventDetails"]
            if details["name"] in top_level:
                open_states.pop(details["name"], None)  # re-entered: it goes last
                open_states[details["name"]] = json.loads(details.get("input") or "null")
        elif kind.endswith("StateExited"):
            open_states.pop(event["stateExitedEventDetails"]["name"], None)
    if not open_states:
        return None
    state = list(open_states)[-1]
    return Resumption(state, open_states[state])


class RedriveRefused(ValueError):
    """Why a redrive would be refused, or could only fail again: one line for a person."""


def redrive_from(
    description: dict[str, Any], definition: dict[str, Any], events: list[dict[str, Any]]
) -> str:
    """The state a redrive of the described execution reruns; RedriveRefused if the API would
    refuse it (DescribeExecution's redriveStatus and its reason) or it is futile (it would
    rerun a Fail state). `bisonflow redrive` and the console's Redrive both ask here first."""
    arn = description["executionArn"]
    if description.get("redriveStatus") == "NOT_REDRIVABLE":
        reason = description.get("redriveStatusReason") or description["status"]
        raise RedriveRefused(f"cannot redrive {arn}: {reason}")
    states = definition["States"]
    resumed = unsuccessful_state(events, set(states))
    if resumed is None:
        raise RedriveRefused(f"cannot redrive {arn}: every state it entered has exited")
    if states[resumed.state]["Type"] == "Fail":
        raise RedriveRefused(
            f"redriving {arn} would only fail again: it ended in the Fail state "
            f"{resumed.state!r} after a Catch took its {description.get('error')} error, and "
            "Step Functions redrives that Fail state. Start a new run (bisonflow start); "
            "every step may run again"
        )
    return resumed.state
