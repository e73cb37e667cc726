"""Emulator seam: a retried callback task waits for its own outcome, not the failed attempt's.

On AWS each attempt of a Task state is a task of its own: a retry schedules the state again
(TaskScheduled, TaskStarted, TaskSubmitted anew in the history) and the failed attempt is
closed, so a SendTaskFailure that ended it can never end the next one, and a call with a
closed task's token is refused with TaskTimedOut ("The task token has either expired or the
task associated with the token has already been closed", Step Functions API reference,
SendTaskFailure / SendTaskHeartbeat, Errors).

moto 5.2.5's interpreter makes the token once per state entry (StateTaskServiceCallback.
_eval_body) and keeps its callback endpoint for every retry. The endpoint keeps the outcome
that failed the first attempt: the retry's wait returns it again as soon as anything wakes it
(its first heartbeat), so a task that reported TaskInstanceLost (a Spot notice, the boot
script's report of a killed task) failed every relaunch with the same error until the Retry
ran out (issue 11; the killed-task test that relied on the heartbeat timeout never sent an
outcome, so it never met this). Fix: when a callback task is retried, its old token is closed
(further calls with it answer TaskTimedOut) and the retry gets a new token of its own, which
`$$.Task.Token` then gives the relaunch.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.common.retry.retry_outcome import RetryOutcome
from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (  # noqa: E501
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

from bisonflow.local.seams import Patch, Seam

_moto_handle_retry = ExecutionState._handle_retry


def handle_retry(self: ExecutionState, env: Any, failure_event: Any) -> RetryOutcome:
    """moto's retry decision; a retried callback task then gets a fresh token."""
    outcome = _moto_handle_retry(self, env, failure_event)
    context = env.states.context_object.context_object_data
    if (
        outcome == RetryOutcome.CanRetry
        and isinstance(self, StateTaskServiceCallback)
        and "Task" in context
    ):
        closed = env.callback_pool_manager.get(context["Task"]["Token"])
        if closed is not None:
            closed.report(CallbackConsumerTimeout())  # its token now answers TaskTimedOut
        env.callback_pool_manager.add(env.states.context_object.update_task_token())
    return outcome


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        ExecutionState.__module__,
        "ExecutionState._handle_retry",
        ("self", "env", "failure_event"),
        replacement=handle_retry,
    ),
)
