"""Redrive through the real local runtime (issue 11): a run that failed at CalcStats, its last
step, is redriven with `bisonflow redrive` and publishes the month, without rerunning the steps
before it. CalcStats fails uncaught (a Catch into CleanupTasks would leave the Fail state as
the state a redrive reruns: bisonflow.steps.redrive), and the stack's ExecutionEndedUncleanRule
cleans up after the FAILED execution (bisonflow.local.sfn.events delivers it locally)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import published_files, wait_for_end
from fault_harness import assert_nothing_left
from test_redrive import _cli, _entered, _history

from bisonflow.layout import MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.publish import published

#: A month no other test runs.
WORKFLOW_MONTH = "2030-03"  # a month no other test file runs (one runtime per worker)


def _task_role(rt: LocalRuntime) -> str:
    """The tasks' instance role (the stack's TaskInstanceRole, named by CloudFormation)."""
    roles = [
        role["RoleName"]
        for page in rt.clients["iam"].get_paginator("list_roles").paginate()
        for role in page["Roles"]
        if "TaskInstanceRole" in role["RoleName"]
    ]
    assert len(roles) == 1, roles
    return roles[0]


def _calc_stats_cannot_read_its_inputs(rt: LocalRuntime) -> dict[str, Any]:
    """A Deny on the task role for the aggregate step's species lists, which only calc_stats
    reads: the task fails (AccessDenied) and reports it, as a permission mistake would."""
    assert rt.deployment
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{rt.deployment.bucket}/summary/*_species_counts/*",
            }
        ],
    }


def test_a_run_failed_at_calc_stats_is_redriven_and_publishes_the_month(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    """CalcStats fails once; the rule cleans up after the FAILED run; `bisonflow redrive`
    reruns CalcStats alone and the month is published as a clean run publishes it."""
    assert runtime.deployment
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    month = MonthLayout.for_month(WORKFLOW_MONTH)
    iam = runtime.clients["iam"]
    runtime.publish_snapshot(WORKFLOW_MONTH)
    role = _task_role(runtime)
    policy = json.dumps(_calc_stats_cannot_read_its_inputs(runtime))
    iam.put_role_policy(RoleName=role, PolicyName="deny-calc-inputs", PolicyDocument=policy)
    try:
        arn = runtime.start_execution(WORKFLOW_MONTH)
        failed = wait_for_end(runtime, arn, timeout=300)
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="deny-calc-inputs")
    assert failed["status"] == "FAILED", failed
    assert "AccessDenied" in failed.get("cause", ""), failed.get("cause")
    first = _history(runtime, arn)
    assert _entered(first)[-1] == "CalcStats" and "CleanupTasks" not in _entered(first)
    assert_nothing_left(runtime, arn)  # the rule's cleanup: instance, token, month lock
    assert published(s3, bucket, month) is None

    code, out = _cli(runtime, capsys, failed["name"])
    assert code == 0 and "from CalcStats" in out, out
    description = wait_for_end(runtime, arn, timeout=300)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert description["redriveCount"] == 1
    events = _history(runtime, arn)
    assert events[: len(first)] == first  # the first attempt's history, kept as it was
    assert events[len(first)]["type"] == "ExecutionRedriven"
    again = _entered(events[len(first) :])
    assert again[0] == "CalcStats" and "CheckGbif" not in again and "LockMonth" not in again
    assert not {"SubsetAndAnnotate", "SubmitAssignAndAggregate"} & set(again)
    assert_nothing_left(runtime, arn)
    # The month as a clean run publishes it: the marker names this execution and every file
    # of its run, and every file a processed month's run writes is among them and exists.
    found = published(s3, bucket, month)
    assert found is not None and found.execution == failed["name"]
    keys = found.keys()
    assert published_files(MonthLayout.for_run(WORKFLOW_MONTH, failed["name"])) <= set(keys)
    for key in keys:
        s3.head_object(Bucket=bucket, Key=key)
