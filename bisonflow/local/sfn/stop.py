"""Emulator seam: a stopped execution ends ABORTED, as on AWS, even inside a Parallel.

StopExecution "stops an execution"; the execution's status becomes ABORTED and its history
ends with ExecutionAborted (Step Functions API reference, StopExecution; DescribeExecution,
status). moto 5.2.5's interpreter marks the program stopped, which wakes the callback task a
Parallel branch was waiting on; the branch then fails (its wait ended without an outcome,
States.Timeout), the Parallel raises that failure, and `Environment.set_error` replaces the
stopped state with an error: the execution came out FAILED with `States.Timeout` (issue 11,
"StopExecution inside the Parallel came out FAILED States.Timeout instead of ABORTED"). Fix:
an error met after the stop leaves the program stopped.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

from bisonflow.local.seams import Patch, Seam

_moto_set_error = Environment.set_error


def set_error(self: Environment, error: Any) -> None:
    """Environment.set_error, except that a stopped program stays stopped."""
    with self._state_mutex:  # an RLock: moto's set_error takes it again
        if isinstance(self._program_state, ProgramStopped):
            return
        _moto_set_error(self, error)


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        Environment.__module__, "Environment.set_error", ("self", "error"), replacement=set_error
    ),
)
