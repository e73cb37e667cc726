"""Atomic months (issue 11): every execution writes under its own run folders, PublishMonth
publishes the month with one conditional write of its marker, and readers go through it.

bisonflow.steps.publish runs first against a scratch bucket on the session's emulator. Then one
sequence of runs of MONTH through the local runtime, shared by the workflow tests: a published
month is skipped; a forced run switches the marker to its own run (and compares with the
previous month its marker names); a forced rerun that fails late (CalcStats: the snapshot's
citation is gone) leaves every published object byte-identical; the month is still skipped
afterwards. (A run stopped during CalcStats is the fault matrix's: test_fault_matrix_tasks.)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import SCRATCH_BUCKET, published_files, wait_for_end

from bisonflow.history.executions import history
from bisonflow.layout import MonthLayout
from bisonflow.local.credentials import role_credentials
from bisonflow.local.emulator import REGION
from bisonflow.local.runtime import LocalRuntime
from bisonflow.riis.guard import ListSize
from bisonflow.steps.gbif_snapshot import check_month
from bisonflow.steps.publish import (
    MonthPublishedMeanwhile,
    RunIncomplete,
    previous_published,
    publish,
    published,
    published_keys,
)

RUN = MonthLayout.for_run("2024-06", "run-a")
ARN = "arn:aws:states:us-east-1:000000000000:execution:bisonflow:{}"
SNAPSHOT = "s3://gbif/occurrence/2024-06-01/"


def write_run(s3: Any, run: MonthLayout, record: bool = True) -> dict[str, bytes]:
    """A few files of a run, as its tasks and UNLOADs leave them; the month record last."""
    bodies = {
        run.riis_annotated_key: b"scientificName\nAus bus\n",
        f"{run.species_counts_prefix('county')}0000_part_00.parquet": b"PAR1",
        f"{run.summary_prefix}pam_county.parquet": f"pam of {run.run}".encode(),
    }
    if record:
        bodies[run.record_key] = json.dumps({"provenance": {"gbif_snapshot": SNAPSHOT}}).encode()
    for key, body in bodies.items():
        s3.put_object(Bucket=SCRATCH_BUCKET, Key=key, Body=body)
    return bodies


def marker_bytes(s3: Any, layout: MonthLayout, bucket: str = SCRATCH_BUCKET) -> bytes:
    return s3.get_object(Bucket=bucket, Key=layout.done_marker_key)["Body"].read()


def test_a_run_is_published_by_one_marker_naming_the_execution_and_every_file(s3) -> None:
    bodies = write_run(s3, RUN)
    now = dt.datetime(2024, 6, 5, 12, 0, tzinfo=dt.UTC)
    marker = publish(s3, SCRATCH_BUCKET, RUN, ARN.format("run-a"), None, now)

    assert json.loads(marker_bytes(s3, RUN)) == marker
    etags = {k: s3.head_object(Bucket=SCRATCH_BUCKET, Key=k)["ETag"] for k in bodies}
    assert marker == {
        "month": "2024-06",
        "execution": "run-a",
        "execution_arn": ARN.format("run-a"),
        "published": "2024-06-05T12:00:00+00:00",
        "snapshot": SNAPSHOT,
        "record": RUN.record_key,
        "files": [{"key": k, "size": len(bodies[k]), "etag": etags[k]} for k in sorted(bodies)],
    }
    found = published(s3, SCRATCH_BUCKET, MonthLayout.for_month("2024-06"))
    assert found is not None and found.layout == RUN and found.execution == "run-a"
    assert published_keys(s3, SCRATCH_BUCKET, RUN) == [RUN.done_marker_key, *sorted(bodies)]


def test_a_run_without_its_month_record_is_not_published(s3) -> None:
    write_run(s3, RUN, record=False)  # calc_stats failed or was stopped before its record
    with pytest.raises(RunIncomplete, match=r"runs/run-a/month_record\.json \(written last"):
        publish(s3, SCRATCH_BUCKET, RUN, ARN.format("run-a"), None)
    assert published(s3, SCRATCH_BUCKET, RUN) is None


def test_the_marker_is_written_only_over_the_version_the_run_saw(s3) -> None:
    write_run(s3, RUN)
    first = publish(s3, SCRATCH_BUCKET, RUN, ARN.format("run-a"), None)
    seen = published(s3, SCRATCH_BUCKET, RUN)
    assert seen is not None
    other = MonthLayout.for_run(RUN.month, "run-b")
    write_run(s3, other)
    before = marker_bytes(s3, RUN)
    # run-b started when nothing was published, or saw an older marker: it is refused.
    for stale in (None, '"0123456789abcdef0123456789abcdef"'):
        with pytest.raises(MonthPublishedMeanwhile, match="now run-a is published"):
            publish(s3, SCRATCH_BUCKET, other, ARN.format("run-b"), stale)
        assert marker_bytes(s3, RUN) == before
    # run-a's publish retried after its write landed (a lost Lambda response, a redrive).
    assert publish(s3, SCRATCH_BUCKET, RUN, ARN.format("run-a"), None) == first
    assert marker_bytes(s3, RUN) == before
    # With the marker it saw at its start, run-b replaces it.
    publish(s3, SCRATCH_BUCKET, other, ARN.format("run-b"), seen.etag)
    now = published(s3, SCRATCH_BUCKET, RUN)
    assert now is not None and now.layout == other


def test_a_month_published_in_place_before_runs_is_read_where_it_is(s3) -> None:
    month = MonthLayout.for_month("2024-05")
    legacy = {"month": "2024-05", "files": [f"{month.summary_prefix}pam_county.parquet"]}
    for body in (b"", b"{}", json.dumps(legacy).encode()):
        s3.put_object(Bucket=SCRATCH_BUCKET, Key=month.done_marker_key, Body=body)
        found = published(s3, SCRATCH_BUCKET, month)
        assert found is not None and found.layout == month and found.execution is None
    assert found.keys() == [
        month.done_marker_key,
        f"{month.summary_prefix}pam_county.parquet",
        month.riis_annotated_key,
        month.riis_report_key,
    ]


def test_the_previous_published_month_is_the_latest_earlier_marker(s3) -> None:
    april = MonthLayout.for_run("2024-04", "april-run")
    write_run(s3, april)
    publish(s3, SCRATCH_BUCKET, april, ARN.format("april-run"), None)
    write_run(s3, MonthLayout.for_run("2024-05", "may-run"))  # complete, never published
    found = previous_published(s3, SCRATCH_BUCKET, RUN)
    assert found is not None and found.layout == april
    assert previous_published(s3, SCRATCH_BUCKET, april) is None


def test_check_gbif_names_the_published_run_and_hands_on_its_etag(s3, monkeypatch) -> None:
    monkeypatch.setenv("GBIF_BUCKET", SCRATCH_BUCKET)
    s3.put_object(Bucket=SCRATCH_BUCKET, Key=f"{RUN.gbif_prefix}000000", Body=b"PAR1")
    unpublished = check_month(RUN.month_layout)
    assert (unpublished.already_processed, unpublished.published_etag) == (False, None)
    write_run(s3, RUN)
    publish(s3, SCRATCH_BUCKET, RUN, ARN.format("run-a"), None)
    etag = s3.head_object(Bucket=SCRATCH_BUCKET, Key=RUN.done_marker_key)["ETag"]
    done = check_month(RUN.month_layout)
    assert done.already_processed and done.published_etag == etag
    assert "already processed" in done.reason and "run run-a" in done.reason
    forced = check_month(RUN.month_layout, force=True)
    assert not forced.already_processed and forced.published_etag == etag


def _role_client(rt: LocalRuntime, role_arn: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=rt.endpoint_url,
        region_name=REGION,
        **role_credentials(role_arn, "test-publish"),
    )


def test_tasks_cannot_write_a_marker_and_publish_month_writes_nothing_else(
    runtime: LocalRuntime,
) -> None:
    """IAM, enforced by the local runtime as on AWS: the task instances' role is denied the
    month's marker (a task that outlives its stopped execution cannot publish), and
    PublishMonth's role may write the marker and nothing of a run."""
    assert runtime.deployment
    bucket, stack = runtime.deployment.bucket, runtime.deployment.stack_name
    admin = runtime.clients["s3"]
    publisher = runtime.clients["lambda"].get_function_configuration(
        FunctionName=f"{stack}-publish_month"
    )["Role"]
    (task_role,) = [
        r["Arn"]
        for r in runtime.clients["iam"].list_roles()["Roles"]
        if "TaskInstanceRole" in r["RoleName"]
    ]
    run = MonthLayout.for_run("2001-01", "iam-check")  # a month no run publishes
    task, publisher_s3 = _role_client(runtime, task_role), _role_client(runtime, publisher)
    try:
        with pytest.raises(ClientError, match="AccessDenied") as denied:
            task.put_object(Bucket=bucket, Key=run.done_marker_key, Body=b"{}")
        assert "explicit deny" in str(denied.value)
        task.put_object(Bucket=bucket, Key=run.record_key, Body=b"{}")  # its run: allowed
        with pytest.raises(ClientError, match="AccessDenied"):
            publisher_s3.put_object(Bucket=bucket, Key=run.record_key, Body=b"{}")
        publisher_s3.put_object(Bucket=bucket, Key=run.done_marker_key, Body=b"{}", IfNoneMatch="*")
    finally:
        for key in (run.done_marker_key, run.record_key):
            admin.delete_object(Bucket=bucket, Key=key)


# --- through the workflow: one sequence of runs of MONTH ---------------------------------

MONTH = MonthLayout.for_month("2028-05")
#: Published before the sequence, by a run that exists only as its marker and files.
PLANTED = MonthLayout.for_run(MONTH.month, "planted-run")
BEFORE = MonthLayout.for_run(MONTH.previous.month, "april-run")
PLANTED_FOLDERS = (PLANTED.summary_prefix, PLANTED.annotated_prefix)


@dataclass
class Sequence:
    """What each run of MONTH did, and the published month at each point."""

    skipped: dict  # an unforced start over the planted month
    planted: dict[str, tuple[bytes, str]]  # the planted month's objects: key -> (body, ETag)
    previous_rows: int  # rows of BEFORE's annotated list
    switched: dict  # a forced run: SUCCEEDED, published
    published: dict[str, tuple[bytes, str]]  # after it
    failed: dict  # a forced rerun whose CalcStats failed
    failed_events: list
    after: dict[str, tuple[bytes, str]]  # the published month after it
    skipped_again: dict


def objects(s3: Any, bucket: str, keys: list[str]) -> dict[str, tuple[bytes, str]]:
    got = {key: s3.get_object(Bucket=bucket, Key=key) for key in keys}
    return {key: (o["Body"].read(), o["ETag"]) for key, o in got.items()}


def plant(s3: Any, bucket: str, sample_list: bytes) -> tuple[dict[str, bytes], int]:
    """BEFORE and PLANTED as published months: their run files and a marker naming the run.
    BEFORE's list is the sample's without its last 5 rows (a loss the guard allows); its county
    species list is empty (an UNLOAD manifest without parts)."""
    lines = sample_list.decode().splitlines(keepends=True)
    shorter = "".join(lines[:-5]).encode()
    files = {
        BEFORE.riis_annotated_key: shorter,
        f"{BEFORE.species_counts_prefix('county')}manifest": b'{"entries": []}',
        BEFORE.done_marker_key: json.dumps({"execution": BEFORE.run}).encode(),
        PLANTED.riis_annotated_key: sample_list,
        f"{PLANTED.summary_prefix}pam_county.parquet": b"the planted month's PAM",
    }
    files[PLANTED.done_marker_key] = json.dumps(
        {"execution": PLANTED.run, "files": [{"key": k} for k in list(files)[-2:]]}
    ).encode()
    for key, body in files.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return files, ListSize.of_annotated(shorter.decode()).rows


@pytest.fixture(scope="module")
def sequence(runtime: LocalRuntime) -> Sequence:
    assert runtime.deployment and runtime.sample
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    gbif = runtime.deployment.gbif_bucket
    runtime.publish_snapshot(MONTH.month)
    planted, previous_rows = plant(s3, bucket, runtime.sample.riis_csv.read_bytes())
    try:
        skipped = wait_for_end(runtime, runtime.start_execution(MONTH.month))
        planted_objects = objects(s3, bucket, list(planted))
        switched = wait_for_end(
            runtime, runtime.start_execution(MONTH.month, force=True), timeout=240
        )
        published_now = objects(s3, bucket, published_keys(s3, bucket, MONTH))
        citation = s3.get_object(Bucket=gbif, Key=MONTH.gbif_citation_key)["Body"].read()
        s3.delete_object(Bucket=gbif, Key=MONTH.gbif_citation_key)
        try:
            failed_arn = runtime.start_execution(MONTH.month, force=True)
            failed = wait_for_end(runtime, failed_arn, timeout=240)
        finally:
            s3.put_object(Bucket=gbif, Key=MONTH.gbif_citation_key, Body=citation)
        failed_events = history(runtime.clients["stepfunctions"], failed_arn)
        after = objects(s3, bucket, list(published_now))
        skipped_again = wait_for_end(runtime, runtime.start_execution(MONTH.month))
    finally:
        s3.delete_object(Bucket=bucket, Key=BEFORE.done_marker_key)  # later months: unseen
    return Sequence(
        skipped,
        planted_objects,
        previous_rows,
        switched,
        published_now,
        failed,
        failed_events,
        after,
        skipped_again,
    )


def test_a_published_month_is_skipped_naming_its_run(sequence: Sequence) -> None:
    for description, run in ((sequence.skipped, PLANTED.run), (sequence.skipped_again, None)):
        assert description["status"] == "SUCCEEDED"
        reason = json.loads(description["output"])["reason"]
        assert "already processed" in reason
        expected = run or sequence.switched["name"]
        assert f"run {expected};" in reason, reason


def test_a_forced_run_switches_the_marker_to_its_run_and_loses_nothing(
    runtime: LocalRuntime, sequence: Sequence
) -> None:
    assert sequence.switched["status"] == "SUCCEEDED", sequence.switched.get("cause")
    name = sequence.switched["name"]
    run = MonthLayout.for_run(MONTH.month, name)
    marker = json.loads(sequence.published[MONTH.done_marker_key][0])
    assert (marker["execution"], marker["execution_arn"]) == (
        name,
        sequence.switched["executionArn"],
    )
    files = {f["key"]: f["etag"] for f in marker["files"]}
    assert published_files(run) <= set(files)
    assert all(key.startswith((run.summary_prefix, run.annotated_prefix)) for key in files)
    assert all(sequence.published[key][1] == etag for key, etag in files.items())
    output = json.loads(sequence.switched["output"])
    assert output["published"]["summary_prefix"] == run.summary_prefix
    assert output["calc_stats"]["summary_prefix"] == run.summary_prefix
    # The planted month's files stay as they were: a switch removes nothing.
    assert runtime.deployment
    planted_files = {k: v for k, v in sequence.planted.items() if k.startswith(PLANTED_FOLDERS)}
    still = objects(runtime.clients["s3"], runtime.deployment.bucket, list(planted_files))
    assert len(still) == 2 and still == planted_files


def test_the_run_compares_with_the_previous_month_its_marker_names(sequence: Sequence) -> None:
    """Both readers of the previous month go through its marker: the RIIS guard reads the
    list of the run the marker names (not a list at the month's own folder), and "new this
    month" compares with that month."""
    output = json.loads(sequence.switched["output"])
    assert output["subset_and_annotate"]["annotate"]["previous_rows"] == sequence.previous_rows
    assert output["calc_stats"]["changes"]["previous_month"] == BEFORE.month


def test_a_failed_forced_rerun_leaves_the_published_month_byte_identical(
    runtime: LocalRuntime, sequence: Sequence
) -> None:
    assert (sequence.failed["status"], sequence.failed["error"]) == ("FAILED", "CitationError")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in sequence.failed_events
        if "stateEnteredEventDetails" in e
    ]
    assert "CalcStats" in entered and "PublishMonth" not in entered
    # It failed late: its own annotated list and UNLOADed tables were written, in its folders.
    assert runtime.deployment
    s3, bucket = runtime.clients["s3"], runtime.deployment.bucket
    failed_run = MonthLayout.for_run(MONTH.month, sequence.failed["name"])
    written = s3.list_objects_v2(Bucket=bucket, Prefix=failed_run.summary_prefix)
    assert written.get("KeyCount", 0) > 0
    s3.head_object(Bucket=bucket, Key=failed_run.riis_annotated_key)
    # Every published object, the marker first, is byte for byte and ETag for ETag as before.
    assert sequence.after == sequence.published
