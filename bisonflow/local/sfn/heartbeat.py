"""Emulator seam: a heartbeat timeout matches `States.HeartbeatTimeout`, as on AWS.

Step Functions names two errors for a callback task that went quiet: `States.Timeout`, "A Task
state either ran longer than the TimeoutSeconds value, or failed to send a heartbeat for a
period longer than the HeartbeatSeconds value", and `States.HeartbeatTimeout`, "A Task state
failed to send a heartbeat for a period longer than the HeartbeatSeconds value. This error is
only available inside the Catch and Retry fields" (Step Functions Developer Guide, "Error
handling in Step Functions", Error names; AWS added the second so that a worker lost, which a
heartbeat timeout implies, can be retried apart from a task that ran too long: aws/aws-cdk
issue 16084). So on AWS a heartbeat timeout is reported as `States.Timeout` and is matched by
a retrier or catcher naming either; a task that exceeded TimeoutSeconds only by the first.

moto 5.2.5's interpreter (LocalStack's) reports both as a plain `States.Timeout`, which a
retrier naming `States.HeartbeatTimeout` never matches: the workflow's relaunch of a lost task
(statemachines/bison_workflow.asl.json, the callback steps' Retry) would never fire locally.
Fix: a heartbeat timeout fails the task with an error name that reports as `States.Timeout`
and also matches `States.HeartbeatTimeout`; every other timeout is left as moto makes it.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task import StateTask
from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

from bisonflow.local.seams import Patch, Seam

HEARTBEAT_TIMEOUT = StatesErrorNameType.StatesHeartbeatTimeout.to_name()


class HeartbeatTimeoutName(StatesErrorName):
    """`States.Timeout` as reported, matching `States.HeartbeatTimeout` in Retry and Catch too.

    Overriding __eq__ on a subclass makes Python try it first when a retrier's declared
    `StatesErrorName` is compared with it (the reflected operand of a subclass has priority),
    which is how moto's ErrorEqualsDecl tests `error_name in error_names`.
    """

    def __init__(self) -> None:
        super().__init__(StatesErrorNameType.StatesTimeout)

    def matches(self, error_name: str | None) -> bool:
        return error_name in (self.error_name, HEARTBEAT_TIMEOUT)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorName) and self.matches(other.error_name)

    __hash__ = StatesErrorName.__hash__


_moto_from_error = StateTask._from_error


def from_error(self: StateTask, env: Any, ex: Exception) -> FailureEvent:
    """The failure of a task: a heartbeat timeout gets HeartbeatTimeoutName, the rest moto's."""
    event = _moto_from_error(self, env, ex)
    if isinstance(ex, HeartbeatTimeoutError):
        event.error_name = HeartbeatTimeoutName()
    return event


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        StateTask.__module__,
        "StateTask._from_error",
        ("self", "env", "ex"),
        replacement=from_error,
    ),
)
