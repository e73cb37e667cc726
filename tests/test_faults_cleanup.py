"""Faults: a cleanup that fails is reported as its own error beside the original one
(issue 11), not silently: instances, tokens or the month lock may have been left behind."""

from __future__ import annotations

import json

import pytest
from conftest import wait_for_end

from bisonflow.local.runtime import LocalRuntime


def test_a_failing_cleanup_fails_the_run_with_both_errors(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    iam, awslambda = runtime.clients["iam"], runtime.clients["lambda"]
    role = awslambda.get_function_configuration(
        FunctionName=f"{runtime.deployment.stack_name}-cleanup_task"
    )["Role"].rsplit("/", 1)[1]
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "ec2:DescribeInstances", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=role, PolicyName="deny-finding", PolicyDocument=json.dumps(deny))
    try:
        # A bad month fails CheckGbif, whose Catch runs the cleanup, which IAM now refuses.
        description = wait_for_end(runtime, runtime.start_execution("2026-13"), timeout=90)
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="deny-finding")
    assert description["status"] == "FAILED"
    assert description["error"] == "CleanupFailed"
    cause = description["cause"]
    assert "ec2:DescribeInstances" in cause and "explicit deny" in cause, cause
    assert "The step had failed with SchemaViolation" in cause and "2026-13" in cause, cause


def test_the_rules_cleanup_leaves_a_redriven_execution_alone(aws_env: LocalRuntime) -> None:
    """ExecutionEndedUncleanRule's cleanup of an execution that is RUNNING again (redriven
    before the event was delivered) would end the redriven run's instance and lock: it does
    nothing. CleanupTasks' own call, inside the running execution, names no `ended`."""
    from test_redrive import _machine

    from bisonflow.steps.run_cleanup import clean_up_run

    machine = _machine(
        aws_env,
        {"First": {"Type": "Wait", "Seconds": 2, "Next": "Done"}, "Done": {"Type": "Succeed"}},
    )
    sfn = aws_env.clients["stepfunctions"]
    arn = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    name = arn.rsplit(":", 1)[1]
    skipped = clean_up_run(name, arn, "FAILED")
    assert skipped["terminated"] == [] and skipped["released_locks"] == []
    assert "running again" in skipped["skipped"]
    assert "skipped" not in clean_up_run(name, arn, None)  # CleanupTasks: always cleans
    wait_for_end(aws_env, arn, timeout=30)
    assert "skipped" not in clean_up_run(name, arn, "FAILED")


def test_a_cancel_that_fails_still_deletes_the_tokens_then_says_so(
    aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SQL Lambda refusing the cleanup's request (here the submit Lambda stands in for it:
    its input schema refuses `cancel_run`) must not keep the run's task token in SSM: the rest
    of the cleanup runs, then the failure is raised for CleanupFailed to report."""
    from bisonflow import aws
    from bisonflow.steps.ec2_tasks import TOKEN_PARAMETER_ROOT
    from bisonflow.steps.run_cleanup import StatementsNotCancelled, clean_up_run

    assert aws_env.deployment
    ssm = aws.client("ssm")
    run = "cancel-refused"
    ssm.put_parameter(
        Name=f"{TOKEN_PARAMETER_ROOT}/{run}/calc_stats", Value="token", Type="SecureString"
    )
    refuser = f"{aws_env.deployment.stack_name}-submit_statements:live"
    monkeypatch.setenv("SQL_CANCEL_FUNCTION", refuser)
    with pytest.raises(StatementsNotCancelled) as raised:
        clean_up_run(run, None, None)
    message = str(raised.value)
    assert refuser in message and "SchemaViolation" in message and "1 task tokens" in message
    left = ssm.get_parameters_by_path(Path=f"{TOKEN_PARAMETER_ROOT}/{run}", Recursive=True)
    assert left["Parameters"] == []
