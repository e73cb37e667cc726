"""Issue 12: a deploy that cannot succeed says so before any work, and leaves nothing behind."""

from __future__ import annotations

import pytest

from bisonflow.cli import main
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
