"""The whole workflow end to end through the local runtime: success, skips and failures."""

from __future__ import annotations

import base64
import io
import json
import time
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SUCCESS_PATH, published_files, unload_prefixes, wait_for_end

from bisonflow.history.executions import history, load_view
from bisonflow.history.report import render_report
from bisonflow.layout import DIMENSIONS, NAME_CACHE_KEY, MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import TAG_EXECUTION, TAG_SPEC


def run_to_end(
    rt: LocalRuntime, payload: dict[str, Any], timeout: float = 180
) -> tuple[dict, list]:
    assert rt.deployment
    sfn = rt.clients["stepfunctions"]
    arn = sfn.start_execution(
        stateMachineArn=rt.deployment.state_machine_arn, input=json.dumps(payload)
    )["executionArn"]
    return wait_for_end(rt, arn, timeout), history(sfn, arn)


def entered(events: list[dict]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


def live_instances(rt: LocalRuntime, execution: str) -> list[str]:
    pages = rt.clients["ec2"].describe_instances(
        Filters=[
            {"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]},
            {
                "Name": "instance-state-name",
                "Values": ["pending", "running", "stopping", "stopped"],
            },
        ]
    )
    return [i["InstanceId"] for r in pages["Reservations"] for i in r["Instances"]]


def all_instances(rt: LocalRuntime, execution: str) -> list[dict]:
    pages = rt.clients["ec2"].describe_instances(
        Filters=[{"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]}]
    )
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def keys(rt: LocalRuntime, prefix: str) -> list[str]:
    assert rt.deployment
    page = rt.clients["s3"].list_objects_v2(Bucket=rt.deployment.bucket, Prefix=prefix)
    return [o["Key"] for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def published_before(runtime: LocalRuntime) -> str | None:
    """The latest month before 2026-09 already published (its marker written) when this
    module's run starts: other modules share the session's runtime and publish months too."""
    assert runtime.deployment
    pages = runtime.clients["s3"].get_paginator("list_objects_v2")
    months = [
        MonthLayout.from_datestamp(o["Key"].split("/")[1]).month
        for page in pages.paginate(Bucket=runtime.deployment.bucket, Prefix="summary/")
        for o in page.get("Contents", [])
        if o["Key"].endswith("/_SUCCESS") and o["Key"].count("/") == 2  # month markers
    ]
    return max((m for m in months if m < "2026-09"), default=None)


@pytest.fixture(scope="module")
def succeeded(runtime: LocalRuntime, published_before: str | None) -> tuple[dict, list]:
    runtime.publish_snapshot("2026-09")
    return run_to_end(runtime, {"month": "2026-09"})


def test_workflow_succeeds_through_every_state(succeeded: tuple[dict, list]) -> None:
    description, events = succeeded
    assert description["status"] == "SUCCEEDED", description.get("cause")
    # The month's lock (bisonflow.steps.month_lock) adds three states to SUCCESS_PATH, which
    # test_report_browser compares with a recorded execution that predates them.
    # So does PublishMonth (bisonflow.steps.publish).
    assert set(entered(events)) == set(SUCCESS_PATH) | {
        "LockMonth",
        "MonthLocked?",
        "PublishMonth",
        "ReleaseMonthLock",
    }


def test_callback_steps_are_submitted_then_report_back(succeeded: tuple[dict, list]) -> None:
    _, events = succeeded
    callback = [
        e["type"]
        for e in events
        if any(
            isinstance(v, dict) and v.get("resource") == "invoke.waitForTaskToken"
            for v in e.values()
        )
    ]
    one_task = ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"]
    assert callback == one_task * 2


def test_every_output_is_in_s3(runtime: LocalRuntime, succeeded: tuple[dict, list]) -> None:
    """Everything is under the execution's run folders, and the month's marker (written by
    PublishMonth) names the execution and every file of the run with its size and ETag."""
    layout = MonthLayout.for_run("2026-09", succeeded[0]["name"])
    written = set(keys(runtime, layout.annotated_prefix)) | set(
        keys(runtime, layout.summary_prefix)
    )
    assert published_files(layout) <= written, published_files(layout) - written
    for prefix in unload_prefixes(layout):
        assert any(k.endswith(".parquet") for k in keys(runtime, prefix)), prefix
    assert keys(runtime, NAME_CACHE_KEY) == [NAME_CACHE_KEY]
    assert runtime.deployment
    s3 = runtime.clients["s3"]
    marker = json.loads(
        s3.get_object(Bucket=runtime.deployment.bucket, Key=layout.done_marker_key)["Body"].read()
    )
    assert marker["execution"] == succeeded[0]["name"]
    assert marker["execution_arn"] == succeeded[0]["executionArn"]
    listed = {f["key"]: (f["size"], f["etag"]) for f in marker["files"]}
    assert set(listed) == written
    head = s3.head_object(Bucket=runtime.deployment.bucket, Key=layout.record_key)
    assert listed[layout.record_key] == (head["ContentLength"], head["ETag"])


def test_the_month_names_its_snapshot_and_citation_in_the_record_and_report(
    runtime: LocalRuntime, succeeded: tuple[dict, list], published_before: str | None
) -> None:
    """The snapshot's citation.txt is copied beside the outputs and named in the execution's
    output and report.html; the month compares with the latest earlier published month (none
    when it is the first the session published)."""
    description, _ = succeeded
    layout = MonthLayout.for_run("2026-09", description["name"])
    assert runtime.deployment
    s3, bucket, gbif = (
        runtime.clients["s3"],
        runtime.deployment.bucket,
        runtime.deployment.gbif_bucket,
    )
    output = json.loads(description["output"])["calc_stats"]
    assert output["provenance"]["citation"] == layout.citation_copy_key
    assert output["provenance"]["citation_source"] == f"s3://{gbif}/{layout.gbif_citation_key}"
    original = s3.get_object(Bucket=gbif, Key=layout.gbif_citation_key)["Body"].read()
    assert s3.get_object(Bucket=bucket, Key=layout.citation_copy_key)["Body"].read() == original
    assert output["changes"]["previous_month"] == published_before
    report = render_report(load_view(runtime.clients["stepfunctions"], description["executionArn"]))
    assert layout.citation_copy_key in report and output["provenance"]["doi"] in report


def test_every_dimension_has_sites_and_the_steps_report_their_counts(
    runtime: LocalRuntime, succeeded: tuple[dict, list]
) -> None:
    description, _ = succeeded
    output = json.loads(description["output"])
    assert all(output["calc_stats"]["sites"][dim] > 0 for dim in DIMENSIONS), output["calc_stats"]
    assert not output["calc_stats"]["empty_dimensions"]
    annotate = output["subset_and_annotate"]["annotate"]
    assert annotate["rows"] > 0 and annotate["resolved"] > 0 and "malformed_rows" in annotate


def test_aggregates_mark_riis_status_per_region(
    runtime: LocalRuntime, succeeded: tuple[dict, list]
) -> None:
    layout = MonthLayout.for_run("2026-09", succeeded[0]["name"])
    assert runtime.deployment
    s3 = runtime.clients["s3"]
    tables = []
    for key in keys(runtime, layout.species_counts_prefix("state")):
        if not key.endswith(".parquet"):
            continue  # UNLOAD's manifest
        body = s3.get_object(Bucket=runtime.deployment.bucket, Key=key)["Body"].read()
        tables.append(pq.read_table(io.BytesIO(body)))
    counts = pa.concat_tables(tables).to_pylist()
    assert {r["riis_assessment"] for r in counts} == {
        "established",
        "invasive",
        "widespread invasive",
        "presumed_native",
    }
    # The step's output counts each of BISON's categories as the sample's facts say.
    assert runtime.sample
    summary = json.loads(succeeded[0]["output"])["aggregate"]["counts"]
    expected = runtime.sample.expected["valid_by_assessment"]
    assert summary["occurrences_by_assessment"] == {a: n for a, n in expected.items() if n}
    regions = {r["state"]: r["riis_region"] for r in counts}
    assert regions["AK"] == "AK" and regions["HI"] == "HI"
    assert {v for k, v in regions.items() if k not in ("AK", "HI")} == {"L48"}


def test_tasks_ended_their_instances_and_never_exposed_the_token(
    runtime: LocalRuntime, succeeded: tuple[dict, list]
) -> None:
    description, events = succeeded
    tokens = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]
        for e in events
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"
    ]
    assert len(tokens) == 2
    # Each task terminates its instance right after reporting success.
    deadline = time.monotonic() + 15
    while live_instances(runtime, description["name"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    instances = all_instances(runtime, description["name"])
    assert len(instances) == 2
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    ec2, logs = runtime.clients["ec2"], runtime.clients["logs"]
    exposed = []
    for instance in instances:
        data = ec2.describe_instance_attribute(
            InstanceId=instance["InstanceId"], Attribute="userData"
        )
        exposed.append(base64.b64decode(data["UserData"]["Value"]).decode())
        exposed.extend(f"{t['Key']}={t['Value']}" for t in instance.get("Tags", []))
    for group in ("/aws/lambda/bisonflow-launch_task", "bison_task"):
        for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
            events_ = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])
            exposed.extend(e["message"] for e in events_["events"])
    assert any("TASK_SPEC_URI" in text for text in exposed)
    assert any(text.startswith(f"{TAG_SPEC}=s3://") for text in exposed)
    for token in tokens:
        assert not any(token in text for text in exposed)


def test_a_processed_month_is_skipped(runtime: LocalRuntime, succeeded: tuple[dict, list]) -> None:
    description, events = run_to_end(runtime, {"month": "2026-09"})
    assert description["status"] == "SUCCEEDED"
    assert entered(events)[-1] == "AlreadyProcessed"
    assert "already processed" in json.loads(description["output"])["reason"]


def test_a_month_without_snapshot_ends_with_a_reason(runtime: LocalRuntime) -> None:
    description, events = run_to_end(runtime, {"month": "2025-01"})
    assert description["status"] == "SUCCEEDED"
    assert entered(events)[-1] == "NoSnapshotYet"
    reason = json.loads(description["output"])["reason"]
    assert "occurrence/2025-01-01/occurrence.parquet/" in reason


def test_bad_input_is_rejected_before_any_work(runtime: LocalRuntime) -> None:
    description, events = run_to_end(runtime, {"month": "2026-13"})
    assert description["status"] == "FAILED"
    assert description["error"] == "SchemaViolation"
    assert "2026-13" in description["cause"] and "YYYY-MM" in description["cause"]
    assert "SubsetAndAnnotate" not in entered(events)
    assert all_instances(runtime, description["name"]) == []


def test_a_failing_sql_statement_fails_with_the_sql_error(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    # A snapshot whose coordinates changed type: Spectrum refuses to scan them as DOUBLE.
    broken = pa.table(
        {
            "gbifid": ["1", "2"],
            "countrycode": ["US", "US"],
            "taxonrank": ["SPECIES", "SPECIES"],
            "occurrencestatus": ["PRESENT", "PRESENT"],
            "basisofrecord": ["HUMAN_OBSERVATION", "HUMAN_OBSERVATION"],
            "specieskey": ["5219404", "5219404"],  # the subset keeps only records with one
            "decimallatitude": ["north", "south"],
            "decimallongitude": ["west", "west"],
        }
    )
    sink = io.BytesIO()
    pq.write_table(broken, sink)
    prefix = MonthLayout.for_month("2026-06").gbif_prefix
    runtime.clients["s3"].put_object(
        Bucket=runtime.deployment.gbif_bucket, Key=prefix + "000000", Body=sink.getvalue()
    )
    description, events = run_to_end(runtime, {"month": "2026-06"})
    assert description["status"] == "FAILED"
    assert description["error"] == "SqlStatementFailed"
    assert "incompatible Parquet schema" in description["cause"]
    assert "Column type: DOUBLE PRECISION" in description["cause"]
    assert "CleanupTasks" in entered(events)
    assert live_instances(runtime, description["name"]) == []


def test_an_explicit_deny_added_through_iam_fails_the_next_execution(
    runtime: LocalRuntime,
) -> None:
    """IAM is enforced on the deployed roles, live: a Deny put on CheckGbif's role through
    the IAM API refuses its very next S3 call, as AWS would, and the history says so."""
    assert runtime.deployment
    iam, awslambda = runtime.clients["iam"], runtime.clients["lambda"]
    role_arn = awslambda.get_function_configuration(
        FunctionName=f"{runtime.deployment.stack_name}-check_gbif"
    )["Role"]
    role = role_arn.rsplit("/", 1)[1]
    deny = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    runtime.publish_snapshot("2026-05")
    iam.put_role_policy(RoleName=role, PolicyName="deny-listing", PolicyDocument=json.dumps(deny))
    try:
        description, events = run_to_end(runtime, {"month": "2026-05"})
    finally:
        iam.delete_role_policy(RoleName=role, PolicyName="deny-listing")
    assert description["status"] == "FAILED"
    cause = description["cause"]
    assert "AccessDenied" in cause and "s3:ListBucket" in cause, cause
    assert f"assumed-role/{role}/" in cause and "explicit deny" in cause, cause
    assert "SubsetAndAnnotate" not in entered(events)
    failed = [e for e in events if e["type"] == "TaskFailed"]
    assert failed and "AccessDenied" in failed[0]["taskFailedEventDetails"]["cause"]
