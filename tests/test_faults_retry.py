"""Faults: a callback step whose task is lost is retried on a new instance (issue 11): the
heartbeat seam that makes a heartbeat timeout match States.HeartbeatTimeout, as on AWS, so
the callback states' Retry fires at all.

Runs that lose tasks through the real local runtime (kill -9, SIGSTOP, instance terminated,
instances that never boot) are the fault matrix's: test_fault_matrix_tasks.py and
test_fault_matrix.py.
"""

from __future__ import annotations

from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)

from bisonflow.local.sfn import heartbeat as sfn_heartbeat


class _Env:
    """The little of moto's Environment that ErrorEqualsDecl uses: a stack."""

    def __init__(self, error_name: object) -> None:
        self.stack = [error_name]


def matched(declared: list[str], error_name: object) -> bool:
    """Whether a retrier or catcher declaring `declared` matches `error_name`, as moto's
    interpreter evaluates ErrorEquals."""
    decl = ErrorEqualsDecl([StatesErrorName.from_name(name) for name in declared])
    env = _Env(error_name)
    decl._eval_body(env)  # type: ignore[arg-type]
    return env.stack.pop()


def test_a_heartbeat_timeout_matches_both_timeout_names_and_a_task_timeout_only_one() -> None:
    """AWS: a heartbeat timeout is reported as States.Timeout and matched by a retrier naming
    States.HeartbeatTimeout or States.Timeout; a task past TimeoutSeconds by States.Timeout
    only (Developer Guide, "Error handling in Step Functions", Error names)."""
    heartbeat = sfn_heartbeat.HeartbeatTimeoutName()
    task_timeout = StatesErrorName(StatesErrorNameType.StatesTimeout)
    assert heartbeat.error_name == "States.Timeout"  # what the history and the Catch see
    assert matched(["States.HeartbeatTimeout"], heartbeat)
    assert matched(["States.Timeout"], heartbeat)
    assert matched(["States.ALL"], heartbeat)
    assert not matched(["States.TaskFailed"], heartbeat)
    assert not matched(["States.HeartbeatTimeout"], task_timeout)
    assert matched(["States.Timeout"], task_timeout)
