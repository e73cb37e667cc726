"""The EC2 task runner's own checks, before it ever runs a task."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import threading

import pytest
from botocore.exceptions import ClientError
from conftest import SCRATCH_BUCKET

from bisonflow import PROJECT_ROOT
from bisonflow.layout import MonthLayout
from bisonflow.schemas import SchemaViolation
from bisonflow.steps.taskspec import SPEC_CLASSES, CalcStatsSpec, TaskSpec, spec_schema
from tasks import runner
from tasks.spot_notice import InterruptionNotice


def _spec(**overrides: object) -> CalcStatsSpec:
    """A calc_stats spec of a run (the `s3` fixture's bucket), with `overrides`."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BISON_BUCKET", SCRATCH_BUCKET)
        spec = CalcStatsSpec.for_run(MonthLayout.for_run("2026-05", "exec-1"), "exec-1")
    return dataclasses.replace(spec, **overrides)


def test_spec_round_trips_through_s3(s3) -> None:
    spec = _spec()
    s3.put_object(Bucket=SCRATCH_BUCKET, Key="tasks/spec.json", Body=spec.to_json().encode())
    assert runner.read_spec(f"s3://{SCRATCH_BUCKET}/tasks/spec.json") == spec


def test_a_bad_spec_uri_or_missing_spec_is_named(s3) -> None:
    with pytest.raises(ValueError, match="TASK_SPEC_URI must be s3://bucket/key"):
        runner.read_spec("/local/spec.json")
    with pytest.raises(RuntimeError, match=f"s3://{SCRATCH_BUCKET}/tasks/absent.json"):
        runner.read_spec(f"s3://{SCRATCH_BUCKET}/tasks/absent.json")


def test_a_spec_for_an_unknown_task_is_rejected() -> None:
    with pytest.raises(SchemaViolation, match=r"\$\.task"):
        TaskSpec.from_json(json.dumps(_spec().to_dict() | {"task": "rm_rf"}))


def test_a_spec_read_back_is_checked_against_its_tasks_schema() -> None:
    """The envelope is not enough: a key calc_stats does not read, or one it needs missing,
    is refused naming the field (the spec carried aiannh_counts, which nothing read)."""
    data = _spec().to_dict()
    extra = data | {"inputs": data["inputs"] | {"aiannh_counts": "summary/x/aiannh_counts/"}}
    with pytest.raises(
        SchemaViolation, match=r"calc_stats\.spec: .*'aiannh_counts' was unexpected"
    ):
        TaskSpec.from_json(json.dumps(extra))
    del data["settings"]
    with pytest.raises(SchemaViolation, match=r"\$ is missing required field 'settings'"):
        TaskSpec.from_json(json.dumps(data))
    with pytest.raises(SchemaViolation, match="task_spec: not JSON"):
        TaskSpec.from_json(b"{not json")


def test_every_task_a_spec_can_name_has_an_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.ENTRY_POINTS.keys() == SPEC_CLASSES.keys()
    common = json.loads((PROJECT_ROOT / "definitions/common.schema.json").read_text())
    assert common["$defs"]["task"]["enum"] == list(SPEC_CLASSES)  # what launch_task accepts
    for task in SPEC_CLASSES:
        assert (PROJECT_ROOT / f"definitions/{spec_schema(task)}.schema.json").is_file()
    from tasks import calc_stats

    ran: list[object] = []
    monkeypatch.setattr(calc_stats, "run", lambda spec: ran.append(spec) or {"ok": True})
    spec = _spec()
    assert runner.run_task(spec) == {"ok": True}
    assert ran == [spec]


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


# --- the lease: a task Step Functions no longer waits for, and the Spot notice ----------------


class _Exited(Exception):
    """What the test's exit_process raises instead of os._exit."""


class _FakeSfn:
    """SendTaskHeartbeat / SendTaskFailure as Step Functions answers them; calls recorded."""

    def __init__(self, heartbeat_error: str | None = None) -> None:
        self.heartbeat_error = heartbeat_error
        self.calls: list[tuple[str, dict]] = []

    def send_task_heartbeat(self, **kwargs: object) -> dict:
        self.calls.append(("heartbeat", kwargs))
        if self.heartbeat_error:
            error = {"Error": {"Code": self.heartbeat_error, "Message": "gone"}}
            raise ClientError(error, "SendTaskHeartbeat")
        return {}

    def send_task_failure(self, **kwargs: object) -> dict:
        self.calls.append(("failure", kwargs))
        return {}


def _lease(sfn: _FakeSfn, clock: list[float]) -> runner.Lease:
    def exit_process(status: int) -> None:
        raise _Exited(status)

    return runner.Lease("token-1", sfn, exit_process=exit_process, clock=lambda: clock[0])


@pytest.fixture
def no_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """terminate_self only logs; logging.shutdown() would close pytest's capture handlers."""
    monkeypatch.delenv("INSTANCE_ID", raising=False)
    monkeypatch.setattr(runner.logging, "shutdown", lambda: None)


def test_a_write_asks_step_functions_first_and_a_stopped_run_never_writes(
    no_instance: None,
) -> None:
    clock = [100.0]
    awaited = _FakeSfn()
    lease = _lease(awaited, clock)
    lease.before_write()
    lease.before_write()  # within WRITE_CHECK_SECONDS of a heartbeat: no second call
    assert [c for c, _ in awaited.calls] == ["heartbeat"]
    clock[0] += runner.WRITE_CHECK_SECONDS + 0.1
    lease.before_write()
    assert [c for c, _ in awaited.calls] == ["heartbeat", "heartbeat"]

    stopped = _FakeSfn(heartbeat_error="TaskTimedOut")
    lease = _lease(stopped, clock)
    with pytest.raises(_Exited) as exited:
        lease.before_write()
    assert exited.value.args == (runner.EXIT_ABANDONED,)
    assert not lease.settle()  # nothing reports the task's outcome after that
    with pytest.raises(_Exited):
        lease.before_write()  # any later write of another thread ends the process too


def test_a_transient_heartbeat_failure_does_not_abandon_the_task(no_instance: None) -> None:
    lease = _lease(_FakeSfn(heartbeat_error="ThrottlingException"), [0.0])
    lease.beat()
    assert lease.settle()


def test_the_spot_notice_reports_instance_lost_once_unless_the_task_reported_first(
    no_instance: None,
) -> None:
    notice = InterruptionNotice("terminate", "2029-10-01T00:02:00Z")
    sfn = _FakeSfn()
    lease = _lease(sfn, [0.0])
    with pytest.raises(_Exited) as exited:
        lease.interrupt(notice)
    assert exited.value.args == (runner.EXIT_INTERRUPTED,)
    assert sfn.calls == [
        (
            "failure",
            {"taskToken": "token-1", "error": "TaskInstanceLost", "cause": notice.describe()},
        )
    ]
    reported = _FakeSfn()
    lease = _lease(reported, [0.0])
    assert lease.settle()  # the task's own outcome came first
    lease.interrupt(notice)
    assert reported.calls == []


def _stored_token(aws_env, spec: TaskSpec, value: str = "not-a-live-token") -> int:
    ssm = aws_env.clients["ssm"]
    stored = ssm.put_parameter(
        Name=spec.token_parameter, Value=value, Type="SecureString", Overwrite=True
    )
    return stored["Version"]


def test_the_boot_script_reports_only_its_own_attempts_unreported_task(aws_env) -> None:
    """After the container exited: nothing when the task reported (its token is deleted),
    nothing when the token is a later attempt's, and a token Step Functions no longer
    accepts is not an error."""
    spec = _spec(execution="boot-exec", token_parameter="/bisonflow/task-tokens/boot-exec/x")
    assert runner.report_unreported(spec, "1", "0") == (
        "the task reported its outcome: nothing to do"
    )
    _stored_token(aws_env, spec)  # this instance's attempt
    version = _stored_token(aws_env, spec)  # a relaunch stored its own token
    try:
        assert runner.report_unreported(spec, str(version - 1), "137") == (
            f"the stored token is version {version}, not this instance's {version - 1}: "
            "a later attempt's, left alone"
        )
        outcome = runner.report_unreported(spec, str(version), "137")
        assert outcome.startswith("Step Functions no longer waits for the task ("), outcome
    finally:
        aws_env.clients["ssm"].delete_parameter(Name=spec.token_parameter)


def test_the_boot_script_command_line(capsys: pytest.CaptureFixture) -> None:
    assert runner.main(["--report-everything"]) == 2
    assert capsys.readouterr().err == "usage: python -m tasks.runner [--report-unreported]\n"
