"""The EC2 task runner's own checks, before it ever runs a task."""

from __future__ import annotations

import pytest
from conftest import SCRATCH_BUCKET

from bisonflow.schemas import SchemaViolation
from bisonflow.taskspec import TaskSpec
from tasks import runner


def _spec(**overrides: object) -> TaskSpec:
    fields = {
        "task": "calc_stats",
        "month": "2026-05",
        "bucket": SCRATCH_BUCKET,
        "execution": "exec-1",
        "token_parameter": "/bisonflow/task-tokens/exec-1/calc_stats",
        "inputs": {},
        "outputs": {},
        "params": {},
    }
    return TaskSpec(**{**fields, **overrides})


def test_spec_round_trips_through_s3(s3) -> None:
    spec = _spec(inputs={"county_counts": "summary/2026_05_01/county_species_counts/"})
    s3.put_object(Bucket=SCRATCH_BUCKET, Key="tasks/spec.json", Body=spec.to_json().encode())
    assert runner.read_spec(f"s3://{SCRATCH_BUCKET}/tasks/spec.json") == spec


def test_a_bad_spec_uri_or_missing_spec_is_named(s3) -> None:
    with pytest.raises(ValueError, match="TASK_SPEC_URI must be s3://bucket/key"):
        runner.read_spec("/local/spec.json")
    with pytest.raises(RuntimeError, match=f"s3://{SCRATCH_BUCKET}/tasks/absent.json"):
        runner.read_spec(f"s3://{SCRATCH_BUCKET}/tasks/absent.json")


def test_a_spec_for_an_unknown_task_is_rejected() -> None:
    with pytest.raises(SchemaViolation, match=r"\$\.task"):
        TaskSpec.from_json(_spec(task="rm_rf").to_json())


def test_task_app_must_match_the_spec(s3, monkeypatch: pytest.MonkeyPatch) -> None:
    s3.put_object(Bucket=SCRATCH_BUCKET, Key="tasks/spec.json", Body=_spec().to_json().encode())
    monkeypatch.setenv("TASK_SPEC_URI", f"s3://{SCRATCH_BUCKET}/tasks/spec.json")
    monkeypatch.setenv("TASK_APP", "annotate_riis")
    monkeypatch.delenv("INSTANCE_ID", raising=False)
    with pytest.raises(ValueError, match="TASK_APP='annotate_riis' but the task spec is for"):
        runner.main()
