"""Faults: one run per month at a time (issue 11), the lock itself (bisonflow.steps.month_lock): a
running holder keeps it; one that ended (stopped, failed without cleanup) or whose lease
expired loses it; only the holder releases it; concurrent takes let one win. A second start of
a running month through the workflow is in test_fault_matrix (it shares that month's run)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import wait_for_end, waiting_for_its_snapshot
from lambda_live import live_environment
from moto.s3.models import S3Backend

from bisonflow.cli.outcome import EXIT_SKIPPED, outcome
from bisonflow.layout import MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.month_lock import acquire, lock_key, release


def waiting_execution(rt: LocalRuntime, month: str) -> str:
    """A RUNNING execution that holds nothing and costs nothing: a scheduled run waiting for
    a snapshot that is not there (bisonflow.steps.waits)."""
    settings = {"SNAPSHOT_WAIT_DAYS": "0.01", "SNAPSHOT_RECHECK_SECONDS": "30"}
    with live_environment(rt, "check_gbif", settings):
        when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        arn = rt.start_execution(month, scheduled_time=when)
        waiting_for_its_snapshot(rt.clients["stepfunctions"], arn)
    return arn


def stop(rt: LocalRuntime, arn: str) -> None:
    rt.clients["stepfunctions"].stop_execution(executionArn=arn)
    wait_for_end(rt, arn, timeout=90)


def test_a_running_holder_keeps_the_month_and_an_ended_one_loses_it(
    aws_env: LocalRuntime, s3
) -> None:
    layout = MonthLayout.for_month("2021-03")
    first = waiting_execution(aws_env, "2021-04")
    second = waiting_execution(aws_env, "2021-05")
    try:
        assert acquire(layout, first).acquired
        refused = acquire(layout, second)
        assert not refused.acquired and refused.holder == first
        assert f"being processed by execution {first}" in refused.reason
        assert "refused" in refused.reason
        again = acquire(layout, first)  # a retried step of the holder itself
        assert again.acquired and "already locked for this execution" in again.reason
        assert release(second, layout) == []  # only the holder releases
        stop(aws_env, first)
        taken = acquire(layout, second)
        assert taken.acquired and f"taken over from {first}: it is ABORTED" in taken.reason
        body = json.loads(
            s3.get_object(Bucket="bisonflow-test-scratch", Key=lock_key(layout))["Body"].read()
        )
        assert body["execution"] == second and body["month"] == "2021-03"
        assert release(first) == []
        assert release(second) == [lock_key(layout)]
        assert s3.list_objects_v2(Bucket="bisonflow-test-scratch", Prefix="locks/")["KeyCount"] == 0
    finally:
        for arn in (first, second):
            if (
                aws_env.clients["stepfunctions"].describe_execution(executionArn=arn)["status"]
                == "RUNNING"
            ):
                stop(aws_env, arn)


def test_a_refused_start_ends_succeeded_naming_the_holder_and_alarms_nothing(
    aws_env: LocalRuntime, capsys: pytest.CaptureFixture
) -> None:
    """MonthAlreadyRunning ends the refused run as AlreadyProcessed ends a done month: the
    month is fine, so the alarm rule (FAILED, TIMED_OUT, ABORTED) must not fire; `run` and
    `watch` say in one line why it did nothing."""
    layout = MonthLayout.for_month("2021-09")
    aws_env.publish_snapshot("2021-09")
    holder = waiting_execution(aws_env, "2021-08")
    try:
        assert acquire(layout, holder).acquired  # the holder runs 2021-09, as far as anyone knows
        refused = wait_for_end(aws_env, aws_env.start_execution("2021-09"), timeout=90)
        assert refused["status"] == "SUCCEEDED"
        output = json.loads(refused["output"])
        assert (output["month"], output["already_running"]) == ("2021-09", True)
        assert output["running_execution"] == holder
        assert f"being processed by execution {holder}" in output["reason"]
        capsys.readouterr()
        assert outcome(refused, require_processed=False) == 0
        assert outcome(refused, require_processed=True) == EXIT_SKIPPED
        said = capsys.readouterr()
        lines = (said.out + said.err).strip().splitlines()
        assert len(lines) == 2 and all(line == lines[0] for line in lines)
        assert lines[0].startswith("month not processed: 2021-09 is being processed by execution")
    finally:
        release(holder, layout)
        stop(aws_env, holder)


def test_an_expired_lease_is_taken_over_even_from_a_running_holder(
    aws_env: LocalRuntime, s3
) -> None:
    layout = MonthLayout.for_month("2021-06")
    holder = waiting_execution(aws_env, "2021-07")
    try:
        expired = {
            "month": "2021-06",
            "execution": holder,
            "acquired": "2021-06-02T06:00:00+00:00",
            "lease_until": "2021-06-14T06:00:00+00:00",
        }
        s3.put_object(
            Bucket="bisonflow-test-scratch", Key=lock_key(layout), Body=json.dumps(expired)
        )
        other = holder.rsplit(":", 1)[0] + ":another-run"
        taken = acquire(layout, other)
        assert taken.acquired and "its lease expired" in taken.reason
    finally:
        stop(aws_env, holder)


def test_concurrent_conditional_writes_of_one_key_let_exactly_one_win(
    aws_env: LocalRuntime, s3, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The s3_conditional seam. Two `If-None-Match: *` writes of one key at the same instant:
    moto tests the precondition, then writes, so if both test before either writes (forced
    here: each write waits for the other request) both would succeed. On S3 one wins and the
    other gets 412 (S3 User Guide, conditional requests)."""
    key = "locks/race.json"
    barrier = threading.Barrier(2, timeout=2)
    original = S3Backend.put_object

    def meeting_put_object(self: S3Backend, bucket_name: str, key_name: str, *a, **k):
        if key_name == key:
            # Broken: the other request is held back, the writes are serialized.
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()
        return original(self, bucket_name, key_name, *a, **k)

    monkeypatch.setattr(S3Backend, "put_object", meeting_put_object)
    outcomes: list[str] = []
    # One attempt each: a retry would hide what the first attempt got.
    once = boto3.client(
        "s3",
        endpoint_url=aws_env.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )

    def put(body: bytes) -> None:
        try:
            once.put_object(Bucket="bisonflow-test-scratch", Key=key, Body=body, IfNoneMatch="*")
            outcomes.append("written")
        except ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])

    writers = [threading.Thread(target=put, args=(body,)) for body in (b"a", b"b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert sorted(outcomes) == ["PreconditionFailed", "written"]
