"""Issue 12: a deploy that cannot succeed says so before any work, and leaves nothing behind."""

from __future__ import annotations

import pytest
from conftest import leave_half_way

from bisonflow.cli.main import main
from bisonflow.local.runtime import LocalRuntime


def test_a_deploy_without_the_required_values_names_them_all_before_any_work(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    """moto accepted the change set and failed at ExecuteChangeSet, naming one parameter per
    attempt and leaving the stack REVIEW_IN_PROGRESS, so the next deploy was refused too."""
    cfn = runtime.clients["cloudformation"]
    artifacts = runtime.clients["s3"].list_buckets()["Buckets"]
    with pytest.raises(SystemExit) as exited:
        main(["deploy", "--endpoint-url", runtime.endpoint_url, "--stack-name", "needs-values"])
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured
    (line,) = captured.err.splitlines()
    assert line.startswith("bisonflow: the template needs a value for --bucket-name (BucketName), ")
    for option in ("--redshift-workgroup-arn", "--task-subnet-id", "--task-repository-url"):
        assert option in line
    assert line.endswith("; give them to deploy")
    assert captured.out == "", "nothing built or uploaded"
    assert runtime.clients["s3"].list_buckets()["Buckets"] == artifacts
    stacks = cfn.list_stacks()["StackSummaries"]
    assert not [s for s in stacks if s["StackName"] == "needs-values"]


def test_a_stack_left_half_way_is_named_before_the_missing_values_and_any_work(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    """What to do about the stack (destroy it) comes first: a REVIEW_IN_PROGRESS stack reports
    no parameters, so it looked new and its values were asked for instead."""
    leave_half_way(runtime.clients["cloudformation"], "left-half-way")
    with pytest.raises(SystemExit) as exited:
        main(["deploy", "--endpoint-url", runtime.endpoint_url, "--stack-name", "left-half-way"])
    captured = capsys.readouterr()
    assert exited.value.code == 2, captured
    assert captured.err.splitlines() == [
        "bisonflow: stack left-half-way is REVIEW_IN_PROGRESS (an earlier deploy stopped after "
        "creating its first change set, so the stack has no resources); run `bisonflow destroy "
        "--stack-name left-half-way` and deploy again"
    ]
    assert captured.out == "", "nothing built or uploaded"
    main(["destroy", "--endpoint-url", runtime.endpoint_url, "--stack-name", "left-half-way"])
