"""The state machine definition: deployable as is, and parsed by the emulator's interpreter."""

from __future__ import annotations

import json
import re

import pytest
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

from bisonflow.deploy.packaging import FUNCTIONS, MACHINE_FUNCTIONS
from bisonflow.local.deploy import ASL_PATH, placeholder, render_definition
from bisonflow.steps import waits

LAMBDA_ERRORS = {
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
FAKE_ARNS = {f: f"arn:aws:lambda:us-east-1:000000000000:function:{f}" for f in FUNCTIONS}


def _all_states(states: dict) -> dict:
    found = {}
    for name, state in states.items():
        found[name] = state
        for branch in state.get("Branches", []):
            found.update(_all_states(branch["States"]))
    return found


@pytest.fixture(scope="module")
def definition() -> dict:
    return json.loads(render_definition(FAKE_ARNS))


def test_placeholders_are_exactly_the_function_arns() -> None:
    found = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text()))
    assert found == {placeholder(f) for f in MACHINE_FUNCTIONS}


def test_parses_in_the_emulators_interpreter(definition: dict) -> None:
    program, _ = AmazonStateLanguageParser.parse(json.dumps(definition))
    assert program is not None


def test_every_lambda_task_retries_lambda_service_errors(definition: dict) -> None:
    tasks = {n: s for n, s in _all_states(definition["States"]).items() if s["Type"] == "Task"}
    assert len(tasks) == 12  # PublishMonth: the publish step (bisonflow.steps.publish)
    for name, state in tasks.items():
        retried = {e for r in state.get("Retry", []) for e in r["ErrorEquals"]}
        assert retried >= LAMBDA_ERRORS or "States.ALL" in retried, name
        backoff = [r for r in state["Retry"] if r.get("BackoffRate", 1) > 1]
        assert backoff, f"{name} retries without backoff"


def test_every_top_level_step_is_caught_into_cleanup(definition: dict) -> None:
    states = definition["States"]
    # After the month is published, failing to release its lock must not fail the run: the
    # lock is stale once the execution ends (bisonflow.steps.month_lock).
    after_publishing = {"ReleaseMonthLock": "Published"}
    # CheckGbif takes the raw workflow input, which may be any JSON value: its error replaces
    # the input (ResultPath $) and CheckGbifFailed nests it as $.error for the cleanup.
    first = {"CheckGbif": "CheckGbifFailed"}
    # CalcStats fails uncaught, so that a redrive reruns it rather than the Fail state a Catch
    # would lead to; ExecutionEndedUncleanRule cleans up after it (docs/aws.md, "Redrive").
    assert "Catch" not in states["CalcStats"]
    for name, state in states.items():
        if state["Type"] in ("Task", "Parallel") and name not in ("CleanupTasks", "CalcStats"):
            targets = {c["Next"] for c in state.get("Catch", [])}
            assert targets == {first.get(name, after_publishing.get(name, "CleanupTasks"))}, name
    assert {c["ResultPath"] for c in states["CheckGbif"]["Catch"]} == {"$"}
    assert states["CheckGbifFailed"] == {
        "Comment": states["CheckGbifFailed"]["Comment"],
        "Type": "Pass",
        "Parameters": {"error.$": "$"},
        "Next": "CleanupTasks",
    }
    assert states["CleanupTasks"]["Next"] == "WorkflowFailed"
    assert states["WorkflowFailed"]["ErrorPath"] == "$.error.Error"


def test_callback_steps_wait_for_the_task_token_with_limits(definition: dict) -> None:
    states = _all_states(definition["States"])
    for name in ("AnnotateRiis", "CalcStats"):
        state = states[name]
        assert state["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
        assert state["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"
        assert "HeartbeatSecondsPath" in state and "TimeoutSecondsPath" in state


def test_no_state_passes_data_only_keys_and_small_dicts(definition: dict) -> None:
    # Every Lambda result is narrowed by ResultSelector or OutputPath to named small fields.
    for name, state in _all_states(definition["States"]).items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke":
            assert "ResultSelector" in state or state.get("OutputPath") == "$.Payload", name


def test_aggregate_ends_with_its_counts_in_the_state_data(definition: dict) -> None:
    """The last poll reads the summary SELECT; a Pass state puts it at $.aggregate."""
    states = definition["States"]
    poll = states["PollAssignAndAggregate"]
    assert poll["ResultSelector"]["result.$"] == "$.Payload.result"
    schema = json.loads(
        (ASL_PATH.parents[1] / "definitions/poll_statement.output.schema.json").read_text()
    )
    polled = schema["oneOf"][0]  # the other shape answers the cleanup's cancel request
    assert "result" in polled["required"], "the ResultSelector path must always exist"
    done = [c["Next"] for c in states["AssignAndAggregateBatchDone?"]["Choices"]]
    assert done == ["SubmitAssignAndAggregate", "AssignAndAggregateSummary"]
    summary = states["AssignAndAggregateSummary"]
    assert summary["Type"] == "Pass"
    assert summary["Parameters"]["counts.$"] == "$.sql.result"
    assert summary["ResultPath"] == "$.aggregate"
    assert summary["Next"] == "CalcStats"


def test_a_lost_callback_task_is_retried_a_bounded_number_of_times(definition: dict) -> None:
    """A heartbeat timeout (or TaskInstanceLost, reported on a Spot interruption notice)
    relaunches the task; a task past TimeoutSeconds (States.Timeout alone) is not retried.
    launch_task learns the attempt to end the lost attempt's instance."""
    states = _all_states(definition["States"])
    for name in ("AnnotateRiis", "CalcStats"):
        state = states[name]
        (lost,) = [r for r in state["Retry"] if "States.HeartbeatTimeout" in r["ErrorEquals"]]
        assert set(lost["ErrorEquals"]) == {"States.HeartbeatTimeout", "TaskInstanceLost"}
        assert 1 <= lost["MaxAttempts"] <= 3
        assert not any("States.Timeout" in r["ErrorEquals"] for r in state["Retry"]), name
        assert state["Parameters"]["Payload"]["attempt.$"] == "$$.State.RetryCount"


def test_the_execution_is_bounded_beyond_its_longest_wait(definition: dict) -> None:
    """TimeoutSeconds ends a hung execution TIMED_OUT (the alarm rule reports it); it must
    outlast the longest snapshot wait the template allows plus a month's processing."""
    assert definition["TimeoutSeconds"] == waits.EXECUTION_TIMEOUT_SECONDS
    assert waits.EXECUTION_TIMEOUT_SECONDS > waits.MAX_SNAPSHOT_WAIT_DAYS * waits.DAY_SECONDS


def test_a_failed_cleanup_is_its_own_error_naming_both(definition: dict) -> None:
    states = definition["States"]
    (catch,) = states["CleanupTasks"]["Catch"]
    assert catch["Next"] == "CleanupFailed" and catch["ResultPath"] == "$.cleanup_error"
    failed = states["CleanupFailed"]
    assert failed["Type"] == "Fail" and failed["Error"] == "CleanupFailed"
    assert "$.cleanup_error.Cause" in failed["CausePath"] and "$.error.Cause" in failed["CausePath"]


def test_every_lambda_step_retries_transient_aws_errors_with_backoff(definition: dict) -> None:
    """An AWS error that outlasted boto3's own retries leaves a Lambda as AwsTransientError
    (bisonflow.steps.lambda_edge); every Lambda step retries it, bounded (CleanupTasks retries
    States.ALL)."""
    tasks = {n: s for n, s in _all_states(definition["States"]).items() if s["Type"] == "Task"}
    for name, state in tasks.items():
        if name == "CleanupTasks":
            continue
        (retrier,) = [r for r in state["Retry"] if r["ErrorEquals"] == ["AwsTransientError"]]
        assert retrier["BackoffRate"] > 1 and retrier["MaxAttempts"] <= 6, name
        assert retrier["MaxDelaySeconds"] <= 300, name
