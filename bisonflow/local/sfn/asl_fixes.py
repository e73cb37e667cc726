"""Emulator seam: where moto 5.2.5's ASL interpreter (LocalStack's) deviates from AWS.

The state machine is written for AWS; these patches make the emulator behave as AWS does.
SEAM declares them (bisonflow.local.seams); tests/test_seams.py fails if an upgrade moves a
target.

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
3. A definite JSONPath through an array index, such as `$[1].annotate` in the Parallel's
   ResultSelector, comes back wrapped in a one-element list: moto's `extract_json` lists the
   matches of any path whose match sits under an index (its fix for filter paths, moto issue
   7825). On AWS a definite path (no wildcard, slice, filter, union or descent) selects one
   value. Fix: answer definite paths with their one value, leave indefinite ones to moto.

The larger seams of the same kind have modules of their own in this package, installed by
bisonflow.local.emulator with this one: role_credentials (the interpreter calls services as
the state machine's role), limits (the 256 KiB payload quota where moto's check differs from
AWS), heartbeat (a heartbeat timeout matches `States.HeartbeatTimeout` in Retry and Catch),
stop (a stopped execution ends ABORTED, also inside a Parallel), redrive (RedriveExecution),
events (an execution's end reaches the EventBridge rules matching it) and start
(StartExecution: a UUID for an unnamed execution, names and alias ARNs as AWS has them).
"""

from __future__ import annotations

import functools
import re
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
from moto.stepfunctions.parser.asl.utils import json_path
from moto.stepfunctions.responses import StepFunctionResponse

from bisonflow.local.seams import Patch, Seam

#: The interpreter's package: its modules import moto's helpers by name.
INTERPRETER = "moto.stepfunctions.parser"

#: Modules whose global `CustomErrorName` is replaced by `runtime_error_name`.
RUNTIME_ERROR_NAME_SITES = (branches_decl, state_fail, iteration_worker)


def runtime_error_name(error_name: str | None = None) -> ErrorName:
    """An error name met at run time: `States.*` names keep their meaning, as on AWS."""
    if error_name is not None and error_name.startswith(
        custom_error_name.ILLEGAL_CUSTOM_ERROR_PREFIX
    ):
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


_moto_extract_json = json_path.extract_json
#: Wildcards, slices, filters, unions and recursive descent make a JSONPath indefinite.
_INDEFINITE_PATH = re.compile(r"\[\s*(\*|\?|[^\]]*[:,])|\.\.|\.\*")


#: A JSONPath parsed once: jsonpath-ng builds each parse with its lexer and parser (about a
#: millisecond), and the interpreter evaluates the same few dozen paths at every state.
_parsed = functools.lru_cache(maxsize=1024)(json_path.parse)


def extract_json(path: str, data: Any) -> Any:
    """A JSONPath's value as AWS gives it: a definite path selects exactly one value."""
    if _INDEFINITE_PATH.search(path):
        return _moto_extract_json(path, data)
    matches = _parsed(path).find(data)
    if not matches:
        raise json_path.NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


#: What this module replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    *(
        Patch(module.__name__, "CustomErrorName", replacement=runtime_error_name)
        for module in RUNTIME_ERROR_NAME_SITES
    ),
    Patch(
        "moto.stepfunctions.responses",
        "StepFunctionResponse.send_task_failure",
        ("self",),
        replacement=send_task_failure,
    ),
    Patch(
        json_path.__name__,
        "extract_json",
        ("path", "data"),
        replacement=extract_json,
        copies_under=INTERPRETER,
    ),
)
