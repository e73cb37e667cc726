"""Emulator seam: RedriveExecution, which moto 5.2.5 does not have, as Step Functions does it.

What AWS documents (Step Functions API reference, RedriveExecution, DescribeExecution,
ExecutionRedrivenEventDetails; developer guide, "Redriving executions" and "Redriving Map
Runs"):

* A redrive "continues the failed execution from the unsuccessful step and uses the same
  input"; the successful steps keep their results and history and are not rerun; the
  execution keeps its ARN and its state machine definition. The unsuccessful step is the one
  "entered" without an "exited" event: "A parent workflow redrives unsuccessful states if
  there's no <stateType>Exited event corresponding to the <stateType>Entered event" ("Redriving
  Map Runs"). So an error a Catch sent on to a Fail state is redriven *at that Fail state*,
  which fails again: only an uncaught failure resumes the work (docs/aws.md, "Redrive").
* Redrivable: a Standard execution that is not RUNNING and not SUCCEEDED (FAILED, ABORTED,
  TIMED_OUT), within 14 days of its end ("redrivable period"), within the one-year maximum
  open time, and whose history has fewer than 24,999 events ("to accommodate the
  ExecutionRedriven history event and at least one other"). Otherwise the API answers
  `ExecutionNotRedrivable`, and DescribeExecution says `redriveStatus: NOT_REDRIVABLE` with a
  `redriveStatusReason` from the documented list (e.g. "Execution is SUCCEEDED and cannot be
  redriven"), which this seam also uses as the error message (AWS's message text is not
  documented). An unknown execution is `ExecutionDoesNotExist`, a malformed ARN `InvalidArn`.
* The history gains `ExecutionRedriven` with `executionRedrivenEventDetails.redriveCount`;
  DescribeExecution gains `redriveCount` (0 before any redrive) and `redriveDate`; the answer
  is `{"redriveDate": ...}`. `clientToken` makes the call idempotent: "idempotent responses
  for the last 10 client tokens used to successfully redrive the execution ... valid for up to
  15 minutes after they are first used".
* "the state machine level timeout, if defined, is reset to 0": the machine's TimeoutSeconds
  counts again from the redrive.

moto's interpreter runs an execution once, in `ExecutionWorker._execution_logic`. The redrive
builds a new interpreter environment that shares the execution's event manager (so the
history continues with the next event id), sets the state data to the unsuccessful state's
input (its `*StateEntered` event, found by bisonflow.steps.redrive), names that state as the next
one and runs the program from there on the execution's own worker communication, which
reflects the final status as for a start. The context object's Execution has `RedriveCount`
(0 until the first redrive) and, once redriven, `RedriveTime` (developer guide, "Context
object": "RedriveTime is only available if you've redriven an execution"); moto has neither.

Not modelled, so refused with a clear message rather than run differently from AWS: a
redrive whose unsuccessful state is a Parallel or Map (AWS reruns only the failed branches or
iterations; moto would rerun all of them). The transient `PENDING_REDRIVE` status is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Any

from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult
from moto.stepfunctions.parser.api import (
    ExecutionStatus,
    HistoryEventType,
    StateMachineType,
)
from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
from moto.stepfunctions.parser.asl.eval.states import (
    ContextObjectData,
    ExecutionData,
    StateMachineData,
)
from moto.stepfunctions.parser.backend.execution import Execution
from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
from moto.stepfunctions.parser.utils import TMP_THREADS
from moto.stepfunctions.responses import StepFunctionResponse

from bisonflow.local.seams import Patch, Seam
from bisonflow.steps.redrive import unsuccessful_state

#: "Your workflow execution has not exceeded the redrivable period of 14 days."
REDRIVABLE_PERIOD = dt.timedelta(days=14)
#: "The workflow execution has not exceeded the maximum open time of one year."
MAX_OPEN_TIME = dt.timedelta(days=365)
#: "The execution event history count is less than 24,999."
MAX_HISTORY_EVENTS = 24_999
#: "the last 10 client tokens ... valid for up to 15 minutes after they are first used".
CLIENT_TOKENS_KEPT = 10
CLIENT_TOKEN_LIFETIME = dt.timedelta(minutes=15)
#: State types whose redrive reruns only failed branches or iterations on AWS.
UNMODELLED_TYPES = ("Parallel", "Map")


class ExecutionNotRedrivable(AWSError):
    """The API's error for an execution that cannot be redriven (HTTP 400)."""

    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _events(execution: Execution) -> list[dict[str, Any]]:
    worker = execution.exec_worker
    if worker is None or worker.env is None:
        return []
    return list(worker.env.event_manager.get_event_history())


def not_redrivable_reason(execution: Execution, now: dt.datetime | None = None) -> str | None:
    """DescribeExecution's redriveStatusReason for `execution`, or None if it is redrivable."""
    now = now or _now()
    status = execution.exec_status
    if execution.sm_type == StateMachineType.EXPRESS:
        return "Execution is of type EXPRESS and cannot be redriven"
    if status in (ExecutionStatus.RUNNING, ExecutionStatus.SUCCEEDED):
        return f"Execution is {status.value} and cannot be redriven"
    if execution.stop_date is not None and now - execution.stop_date > REDRIVABLE_PERIOD:
        return "Execution redrivable period exceeded"
    if now - execution.start_date > MAX_OPEN_TIME:
        return "Execution has exceeded the max execution time"
    if len(_events(execution)) >= MAX_HISTORY_EVENTS:
        return "Execution history event limit exceeded"
    return None


class RedriveWorker(ExecutionWorker):
    """Runs an execution's program again from its unsuccessful state, appending to its history."""

    def __init__(self, execution: Execution, state: str, state_input: Any, count: int) -> None:
        previous = execution.exec_worker
        assert previous is not None and previous.env is not None
        super().__init__(
            evaluation_details=previous._evaluation_details,
            exec_comm=previous._execution_communication,
            cloud_watch_logging_session=previous._cloud_watch_logging_session,
            activity_store=previous._activity_store,
        )
        self._previous_env = previous.env
        self._state = state
        self._state_input = state_input
        self._count = count
        self._redrive_time = _now()

    def _get_evaluation_environment(self) -> Environment:
        details = self._evaluation_details
        execution = ExecutionData(
            Id=details.execution_details.arn,
            Input=details.execution_details.inpt,
            Name=details.execution_details.name,
            RoleArn=details.execution_details.role_arn,
            StartTime=details.execution_details.start_time,
        )
        execution["RedriveCount"] = self._count
        execution["RedriveTime"] = self._redrive_time.isoformat()
        env = Environment(
            aws_execution_details=details.aws_execution_details,
            execution_type=details.state_machine_details.typ,
            context=ContextObjectData(
                Execution=execution,
                StateMachine=StateMachineData(
                    Id=details.state_machine_details.arn, Name=details.state_machine_details.name
                ),
            ),
            event_history_context=EventHistoryContext.of_program_start(),
            cloud_watch_logging_session=self._cloud_watch_logging_session,
            activity_store=self._activity_store,
        )
        env.event_manager = self._previous_env.event_manager  # the history goes on
        return env

    def _execution_logic(self) -> None:
        program = self._get_evaluation_entrypoint()
        self.env = env = self._get_evaluation_environment()
        event_id = env.event_manager.add_event(
            context=env.event_history_context,
            event_type=HistoryEventType.ExecutionRedriven,
            event_details={"executionRedrivenEventDetails": {"redriveCount": self._count}},
        )
        env.event_history_context.source_event_id = event_id
        env.states.reset(input_value=self._state_input)
        env.next_state_name = self._state
        timeout = program.timeout_seconds.timeout_seconds if program.timeout_seconds else None
        # Program.eval, from the unsuccessful state instead of StartAt; the machine's
        # TimeoutSeconds counts from the redrive.
        worker = threading.Thread(target=EvalComponent.eval, args=(program, env), daemon=True)
        TMP_THREADS.append(worker)
        worker.start()
        worker.join(timeout=timeout)
        if worker.is_alive():
            env.set_timed_out()
        self._execution_communication.terminated()


_moto_evaluation_environment = ExecutionWorker._get_evaluation_environment


def evaluation_environment(self: ExecutionWorker) -> Environment:
    """A fresh execution's environment, its context object's RedriveCount 0 as on AWS."""
    env = _moto_evaluation_environment(self)
    env.states.context_object.context_object_data["Execution"].setdefault("RedriveCount", 0)
    return env


def _top_level_states(definition: str) -> dict[str, str]:
    """{state name: Type} of the machine's own (top-level) states."""
    return {name: s["Type"] for name, s in json.loads(definition)["States"].items()}


def redrive(execution: Execution, client_token: str | None) -> dt.datetime:
    """Redrive `execution` (or answer a repeated client token); the redrive date."""
    now = _now()
    tokens: dict[str, dt.datetime] = getattr(execution, "redrive_client_tokens", {})
    tokens = {t: at for t, at in tokens.items() if now - at <= CLIENT_TOKEN_LIFETIME}
    if client_token and client_token in tokens:
        return execution.redrive_date
    reason = not_redrivable_reason(execution, now)
    if reason:
        raise ExecutionNotRedrivable(reason)
    states = _top_level_states(execution.state_machine.definition)
    resumption = unsuccessful_state(_events(execution), set(states))
    if resumption is None:
        raise ExecutionNotRedrivable("Execution has no unsuccessful state to redrive")
    state, state_input = resumption.state, resumption.state_input
    if states[state] in UNMODELLED_TYPES:
        raise ExecutionNotRedrivable(
            f"the emulator cannot redrive the {states[state]} state {state!r}: AWS reruns only "
            "its failed branches or iterations, which bisonflow.local.sfn.redrive does not model"
        )
    count = getattr(execution, "redrive_count", 0) + 1
    worker = RedriveWorker(execution, state, state_input, count)
    execution.redrive_count = count
    execution.redrive_date = worker._redrive_time
    if client_token:
        tokens[client_token] = now
    execution.redrive_client_tokens = dict(list(tokens.items())[-CLIENT_TOKENS_KEPT:])
    execution.exec_worker = worker
    execution.exec_status = ExecutionStatus.RUNNING
    execution.stop_date = None
    execution.error = execution.cause = None
    worker.start()
    return worker._redrive_time


def redrive_execution(self: StepFunctionResponse) -> ActionResult:
    """The RedriveExecution action on moto's server."""
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    return ActionResult({"redriveDate": redrive(execution, self._get_param("clientToken"))})


_moto_describe_execution = StepFunctionResponse.describe_execution


def describe_execution(self: StepFunctionResponse) -> ActionResult:
    """DescribeExecution with the redrive fields AWS returns."""
    answer = _moto_describe_execution(self)
    execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
    body: dict[str, Any] = answer.result
    body["redriveCount"] = getattr(execution, "redrive_count", 0)
    if getattr(execution, "redrive_date", None) is not None:
        body["redriveDate"] = execution.redrive_date
    reason = not_redrivable_reason(execution)
    body["redriveStatus"] = "NOT_REDRIVABLE" if reason else "REDRIVABLE"
    if reason:
        body["redriveStatusReason"] = reason
    return answer


#: What this module adds or replaces; the emulator installs it (bisonflow.local.seams).
SEAM = Seam(
    __name__,
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.redrive_execution",
        replacement=redrive_execution,
        added=True,
    ),
    Patch(
        StepFunctionResponse.__module__,
        "StepFunctionResponse.describe_execution",
        ("self",),
        replacement=describe_execution,
    ),
    Patch(
        ExecutionWorker.__module__,
        "ExecutionWorker._get_evaluation_environment",
        ("self",),
        replacement=evaluation_environment,
    ),
)
