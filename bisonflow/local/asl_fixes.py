"""Emulator seam: where moto 5.2.5's ASL interpreter (LocalStack's) deviates from AWS.

The state machine is written for AWS; these patches make the emulator behave as AWS does,
each with a test in tests/test_emulator_seams.py that fails if an upgrade moves the target.

1. An error named `States.*` (e.g. `States.Timeout` from a heartbeat timeout) that leaves a
   Parallel branch, or that a Fail state names through ErrorPath, is re-raised by the
   interpreter through `CustomErrorName`, which rejects the `States.` prefix, so the
   execution dies with `States.Runtime` and skips the Parallel's Catch. On AWS the error
   propagates with its own name. Fix: at those runtime call sites, build `States.*` names
   as `StatesErrorName`.
2. SendTaskFailure loses its `cause`: moto's `StepFunctionResponse.send_task_failure` reads
   only `error`, so a failed callback task reaches the Catch (and the Parallel's Catch, and
   the execution's failure) with an empty Cause. Fix: pass the request's cause through to
   the interpreter, which already supports it.
"""

from __future__ import annotations

from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.stepfunctions.parser.asl.component.common.error_name import custom_error_name
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
    iteration_worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl
from moto.stepfunctions.parser.asl.component.state.fail import state_fail
from moto.stepfunctions.responses import StepFunctionResponse

#: Modules whose global `CustomErrorName` is replaced by `runtime_error_name`.
RUNTIME_ERROR_NAME_SITES = (branches_decl, state_fail, iteration_worker)


def runtime_error_name(error_name: str | None = None) -> ErrorName:
    """An error name met at run time: `States.*` names keep their meaning, as on AWS."""
    if error_name is not None and error_name.startswith(custom_error_name.ILLEGAL_CUSTOM_ERROR_PREFIX):
        try:
            return StatesErrorName(StatesErrorNameType.from_name(error_name))
        except ValueError:
            pass
    return custom_error_name.CustomErrorName(error_name=error_name)


def send_task_failure(self: StepFunctionResponse) -> ActionResult:
    """SendTaskFailure with its cause, as the AWS API has it."""
    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
    )
    return EmptyResult()


#: (owner, attribute) pairs this module replaces.
PATCHED: tuple[tuple[Any, str], ...] = (
    *((module, "CustomErrorName") for module in RUNTIME_ERROR_NAME_SITES),
    (StepFunctionResponse, "send_task_failure"),
)


def install() -> None:
    for module in RUNTIME_ERROR_NAME_SITES:
        module.CustomErrorName = runtime_error_name  # type: ignore[attr-defined]
    StepFunctionResponse.send_task_failure = send_task_failure  # type: ignore[method-assign]
