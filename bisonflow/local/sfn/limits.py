"""Emulator seam: Step Functions' payload quota, where moto 5.2.5's interpreter differs.

The quota (developer guide, "Quotas", "Quotas related to task executions": "Maximum input or
output size for a task, state, or execution"): 262,144 bytes of data as a UTF-8 encoded
string; it "affects tasks (activity, Lambda function, or integrated service), state or
execution output, and input data when scheduling a task, entering a state, or starting an
execution".

Where AWS enforces it, and what moto already does:

* A state's output, and a task's result ("the output of a connector"): `States.DataLimitExceeded`
  (developer guide, "Error handling", States.DataLimitExceeded). moto checks both
  (`State._verify_size_quota` after OutputPath, `StateTaskService._verify_size_quota` on the
  integration's result) with the cause AWS writes, "The state/task '…' returned a result with
  a size exceeding the maximum number of bytes service limit." Kept.
* "When, after Parameters processing, the input of a state is larger than the payload size
  quota" (same section), which is also the data a task is scheduled with: moto does not check
  it. Fix 1: `Parameters`/`Arguments` whose result is over the quota fail the state with
  States.DataLimitExceeded. The cause text of this case is not documented; ours names the state.
* moto's size test is `size < 262144`, so a value of exactly 262,144 bytes fails; the quota is
  a maximum (and the API's "Maximum length of 262144"). It also measures JSON with
  `json.dumps`' default spaces and \\uXXXX escapes, not the UTF-8 bytes. Fix 2: a value fails
  only above 262,144 bytes of its compact UTF-8 JSON.
* StartExecution's `input` ("Length constraints apply to the payload size, and are expressed as
  bytes in UTF-8 encoding. Maximum length of 262144.", API reference, StartExecution) and
  SendTaskSuccess's `output` (the same constraint, API reference, SendTaskSuccess): moto takes
  any size. Fix 3: refuse them as the API refuses a length constraint, ValidationException
  (HTTP 400, "The input does not satisfy the constraints specified by an AWS service"), with
  the service's "1 validation error detected: … failed to satisfy constraint: Member must have
  length less than or equal to 262144" message (the value itself, sensitive data, is not echoed).

Catching it: the guide says States.DataLimitExceeded is "a terminal error that can't be caught
by the States.ALL error type". Executions recorded on AWS say otherwise for a task's oversized
result: LocalStack's AWS-validated snapshots (tests/aws/services/stepfunctions/v2/
error_handling/test_states_errors.snapshot.json, validated 2024-03-21) show a lambda:invoke
result over the quota caught by `"ErrorEquals": ["States.DataLimitExceeded"]` and, with only a
States.ALL catcher, by States.ALL; and a Pass state's oversized output failing the execution
(no catcher applies to a state's own output). moto behaves the same way: a task's result and
its Parameters are checked inside the task's Retry/Catch, a state's output after it. So the
emulator matches the recorded behaviour; the ASL in this project must not rely on either.
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.responses import ActionResult
from moto.stepfunctions.exceptions import ValidationException
from moto.stepfunctions.parser import quotas
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.parargs import Parargs
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.responses import StepFunctionResponse

from bisonflow.local.seams import Patch, Seam
from bisonflow.local.sfn.asl_fixes import INTERPRETER

#: The quota: 256 KiB of UTF-8 (developer guide, "Quotas related to task executions").
MAX_PAYLOAD_BYTES = 262_144
DATA_LIMIT_EXCEEDED = StatesErrorNameType.StatesStatesDataLimitExceeded


def payload_bytes(value: Any) -> int:
    """Size of state data as Step Functions measures it: compact JSON, UTF-8 bytes."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8"))


def is_within_size_quota(value: Any) -> bool:
    """Whether state data fits the quota (at most MAX_PAYLOAD_BYTES, as AWS allows)."""
    return payload_bytes(value) <= MAX_PAYLOAD_BYTES


def check_api_payload(member: str, text: str | None) -> None:
    """Refuse an API request whose `member` (a JSON string) is over the quota, as the API does."""
    if text is not None and len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES:
        raise ValidationException(
            f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PAYLOAD_BYTES}"
        )


_moto_parargs_eval = Parargs._eval_body


def parargs_eval(self: Parargs, env: Environment) -> None:
    """Parameters/Arguments; a result over the quota fails the state (States.DataLimitExceeded)."""
    _moto_parargs_eval(self, env)
    if is_within_size_quota(env.stack[-1]):
        return
    cause = (
        f"The state '{env.next_state_name}' has an input, after Parameters processing, with a "
        "size exceeding the maximum number of bytes service limit."
    )
    raise FailureEventException(
        failure_event=FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=DATA_LIMIT_EXCEEDED),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=DATA_LIMIT_EXCEEDED.to_name(), cause=cause
                )
            ),
        )
    )


_moto_start_execution = StepFunctionResponse.start_execution
_moto_send_task_success = StepFunctionResponse.send_task_success


def start_execution(self: StepFunctionResponse) -> ActionResult:
    """StartExecution; an input over the quota is refused, as the API does."""
    check_api_payload("input", self._get_param("input"))
    return _moto_start_execution(self)


def send_task_success(self: StepFunctionResponse) -> ActionResult:
    """SendTaskSuccess; an output over the quota is refused, as the API does."""
    check_api_payload("output", self._get_param("output"))
    return _moto_send_task_success(self)


_moto_is_within_size_quota = quotas.is_within_size_quota


#: What this module replaces; the emulator installs it (bisonflow.local.seams). Every
#: interpreter module that imported moto's size test by name gets this one.
SEAM = Seam(
    __name__,
    Patch(
        quotas.__name__,
        "is_within_size_quota",
        ("value",),
        replacement=is_within_size_quota,
        copies_under=INTERPRETER,
    ),
    Patch(Parargs.__module__, "Parargs._eval_body", ("self", "env"), replacement=parargs_eval),
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.start_execution",
        ("self",),
        replacement=start_execution,
    ),
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.send_task_success",
        ("self",),
        replacement=send_task_success,
    ),
)
