"""Faults: a stopped (or timed-out) run is cleaned up (issue 11). StopExecution runs no Catch,
so CleanupTasks never runs; the stack's ExecutionEndedUncleanRule sends the execution's status
change to the cleanup Lambda instead. moto's EventBridge neither receives Step Functions'
events nor invokes Lambda targets: the seam bisonflow.local.sfn.events plays that part with the
deployed rule (its pattern, its input transformer, the function's resource policy)."""

from __future__ import annotations

import time
from typing import Any

from conftest import launched_instance, wait_for_end
from moto.events.models import EventPattern
from test_faults_cancel import SUBSET_SQL, assert_cancelled, wait_for_running_statement

from bisonflow.history.executions import find_state_machine
from bisonflow.layout import MonthLayout
from bisonflow.local import faults
from bisonflow.local.runtime import LocalRuntime
from bisonflow.local.sfn import events as sfn_events
from bisonflow.local.sfn.events import transformed  # tests/fault_harness.py imports it here
from bisonflow.steps.month_lock import lock_key

MONTH = "2023-08"


def cleanup_rule(rt: LocalRuntime) -> tuple[dict, dict]:
    """The deployed rule whose target is the cleanup Lambda, and that target."""
    events = rt.clients["events"]
    for rule in events.list_rules()["Rules"]:
        for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
            if "cleanup_task" in target["Arn"]:
                return rule, target
    raise AssertionError("no rule targets the cleanup Lambda")


def delivered(arn: str, timeout: float = 60) -> list[tuple[str, str, dict[str, Any]]]:
    """What the status change of execution `arn` delivered (bisonflow.local.sfn.events)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for execution, outcome in list(sfn_events.DELIVERIES):
            if execution == arn:
                if isinstance(outcome, BaseException):
                    raise AssertionError(f"the delivery failed: {outcome!r}")
                return outcome
        time.sleep(0.2)
    raise AssertionError(f"no status change of {arn} was delivered in {timeout} s")


def test_a_stopped_run_leaves_nothing_once_its_rule_ran_the_cleanup(runtime: LocalRuntime) -> None:
    """Stopped while its task's instance waits and its subset SQL runs (held running by
    bisonflow.local.faults.sql_fault, as a long Redshift query runs): the rule's cleanup
    terminates the instance, deletes the token, releases the lock and cancels the statement
    through the SQL Lambda (bisonflow.steps.run_cleanup), which ends it ABORTED."""
    assert runtime.deployment
    runtime.publish_snapshot(MONTH)
    runtime.agent.paused = True  # the instance stays idle: the task never writes anything
    try:
        with faults.sql_fault(SUBSET_SQL, hang=True):
            arn = runtime.start_execution(MONTH)
            name = arn.rsplit(":", 1)[1]
            ec2 = runtime.clients["ec2"]
            instance = launched_instance(runtime, name)
            statement = wait_for_running_statement(runtime, name)
            runtime.clients["stepfunctions"].stop_execution(executionArn=arn)
            description = wait_for_end(runtime, arn, timeout=90)
            ((rule_name, function, result),) = delivered(arn)
            assert_cancelled(runtime, name, statement)  # before sql_fault would end it FAILED
    finally:
        runtime.agent.paused = False
    assert description["status"] == "ABORTED", (description.get("error"), description.get("cause"))

    rule, target = cleanup_rule(runtime)
    assert (rule_name, function) == (rule["Name"], target["Arn"])
    assert result == {
        "terminated": [instance],
        "deleted_tokens": 1,
        "released_locks": [lock_key(MonthLayout.for_month(MONTH))],
        "cancelled_statements": [statement],
    }
    assert ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0][
        "State"
    ]["Name"] in ("shutting-down", "terminated")


def test_the_rule_matches_what_step_functions_sends(runtime: LocalRuntime) -> None:
    """The rule's pattern against the event Step Functions documents, for each status."""
    rule, target = cleanup_rule(runtime)
    pattern = EventPattern.load(rule["EventPattern"])
    event = {
        "version": "0",
        "id": "1",
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "account": "123456789012",
        "time": "2023-08-02T06:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:states:us-east-1:123456789012:execution:bison-workflow:x"],
        "detail": {
            "executionArn": "arn:aws:states:us-east-1:123456789012:execution:bison-workflow:x",
            "stateMachineArn": find_state_machine(runtime.clients["stepfunctions"]),
            "name": "x",
            "status": "ABORTED",
        },
    }
    for status, matches in (
        ("ABORTED", True),
        ("TIMED_OUT", True),
        ("FAILED", True),  # a step that fails uncaught, so that a redrive can resume it
        ("SUCCEEDED", False),
        ("RUNNING", False),
    ):
        changed = {**event, "detail": {**event["detail"], "status": status}}
        assert pattern.matches_event(changed) is matches, status
    payload = sfn_events.target_input(target, event)
    assert payload == transformed(target["InputTransformer"], event)
    assert payload.startswith('{"execution": "x", "execution_arn": "arn:aws:states:')
