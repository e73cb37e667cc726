"""The EC2 task runner's own checks, before it ever runs a task."""

from __future__ import annotations

import io
import json
import re
import threading

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


def test_a_cause_leads_with_the_message_and_carries_no_local_path() -> None:
    from bisonflow import PROJECT_ROOT

    def read_month() -> None:
        try:
            json.loads("{month")
        except ValueError as exc:
            raise RuntimeError("cannot read s3://bucket/tasks/spec.json:\n  bad JSON") from exc

    with pytest.raises(RuntimeError) as raised:
        read_month()
    cause = runner.failure_cause(raised.value)
    first, *rest = cause.splitlines()
    assert first == "RuntimeError: cannot read s3://bucket/tasks/spec.json: bad JSON"
    assert rest[0] == "Traceback (innermost last):"
    assert re.fullmatch(r"  tests/test_runner\.py:\d+ in read_month", rest[-2]), rest
    assert rest[-1].startswith("caused by JSONDecodeError: Expecting property name")
    assert str(PROJECT_ROOT) not in cause
    assert runner.failure_cause(raised.value, limit=20) == first[:20]  # cut from the end


def test_threads_printing_at_once_never_split_a_line() -> None:
    stream = io.StringIO()
    writer = runner.LineAtomicWriter(stream)

    def chatter(name: str) -> None:
        for i in range(300):
            print(f"{name} line {i}", file=writer, flush=True)

    threads = [threading.Thread(target=chatter, args=(f"t{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    writer.flush()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 8 * 300
    assert all(re.fullmatch(r"t\d line \d+", line) for line in lines), lines[:5]
