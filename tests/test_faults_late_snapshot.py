"""Faults: a late GBIF snapshot (issue 11). A scheduled run waits and rechecks for
SNAPSHOT_WAIT_DAYS after its scheduled time; a month that ends without its snapshot fails
with SnapshotNotPublished, which the deployed alarm rule matches. A run started by hand for
an unpublished month still ends at once (test_workflow's NoSnapshotYet)."""

from __future__ import annotations

import datetime as dt
import time

from conftest import wait_for_end
from lambda_live import live_environment
from moto.events.models import EventPattern

from bisonflow.history.executions import history
from bisonflow.layout import MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.gbif_snapshot import SnapshotCheck
from bisonflow.steps.waits import SnapshotWait, late_snapshot

SCHEDULED = "2026-06-02T06:00:00Z"
WAIT = SnapshotWait(days=2, recheck_seconds=3600)


def check(exists: bool) -> SnapshotCheck:
    reason = "processing" if exists else "GBIF has not published the 2026-06 snapshot"
    return SnapshotCheck(
        "2026-06", exists, False, reason, "s3://gbif/occurrence/2026-06-01/", published_etag=None
    )


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_a_scheduled_run_waits_until_its_deadline_and_then_not() -> None:
    early = late_snapshot(check(False), SCHEDULED, False, WAIT, at("2026-06-03T06:00:00+00:00"))
    assert early["scheduled"] and early["wait_for_snapshot"]
    assert "rechecking every 3600 s until 2026-06-04T06:00:00+00:00" in early["reason"]
    assert early["recheck"] == {"month": "2026-06", "force": False, "scheduled_time": SCHEDULED}
    late = late_snapshot(check(False), SCHEDULED, False, WAIT, at("2026-06-04T06:00:01+00:00"))
    assert late["scheduled"] and not late["wait_for_snapshot"]
    assert "ended at 2026-06-04T06:00:00+00:00 (2 days after" in late["reason"]


def test_only_a_missing_snapshot_of_a_scheduled_run_waits() -> None:
    now = at("2026-06-02T07:00:00+00:00")
    published = late_snapshot(check(True), SCHEDULED, True, WAIT, now)
    assert published["scheduled"] and not published["wait_for_snapshot"]
    assert published["recheck"]["force"] is True
    by_hand = late_snapshot(check(False), None, False, WAIT, now)
    assert by_hand == {
        "scheduled": False,
        "wait_for_snapshot": False,
        "recheck": {"month": "2026-06", "force": False},
    }


def entered(events: list[dict]) -> list[str]:
    return [
        e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
    ]


def scheduled_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def test_a_late_snapshot_is_rechecked_until_it_appears(runtime: LocalRuntime) -> None:
    """The snapshot appears after two rechecks; the run goes on (here to AlreadyProcessed: a
    marker stands in for a processed month, so the test does not process one)."""
    assert runtime.deployment
    month, s3, bucket = "2022-08", runtime.clients["s3"], runtime.deployment.bucket
    marker = MonthLayout.for_month(month).done_marker_key
    sfn = runtime.clients["stepfunctions"]
    settings = {"SNAPSHOT_WAIT_DAYS": "0.01", "SNAPSHOT_RECHECK_SECONDS": "1"}
    s3.put_object(Bucket=bucket, Key=marker, Body=b"{}")
    try:
        with live_environment(runtime, "check_gbif", settings):
            arn = runtime.start_execution(month, scheduled_time=scheduled_now())
            deadline = time.monotonic() + 60
            while entered(history(sfn, arn)).count("RecheckSnapshot") < 2:
                assert time.monotonic() < deadline, "no recheck came"
                time.sleep(0.2)
            runtime.publish_snapshot(month)
            description = wait_for_end(runtime, arn, timeout=60)
    finally:
        s3.delete_object(Bucket=bucket, Key=marker)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    states = entered(history(sfn, arn))
    assert states[-1] == "AlreadyProcessed"
    assert states.count("WaitForSnapshot") >= 2
    assert "SubsetAndAnnotate" not in states


def test_a_month_whose_snapshot_never_comes_fails_and_reaches_the_alarm(
    runtime: LocalRuntime,
) -> None:
    assert runtime.deployment
    month = "2022-09"
    settings = {"SNAPSHOT_WAIT_DAYS": "0.0001", "SNAPSHOT_RECHECK_SECONDS": "2"}  # 8.6 s
    with live_environment(runtime, "check_gbif", settings):
        arn = runtime.start_execution(month, scheduled_time=scheduled_now())
        description = wait_for_end(runtime, arn, timeout=60)
    assert description["status"] == "FAILED"
    assert description["error"] == "SnapshotNotPublished"
    assert "occurrence/2022-09-01/occurrence.parquet/" in description["cause"]
    assert "SNAPSHOT_WAIT_DAYS" in description["cause"]
    states = entered(history(runtime.clients["stepfunctions"], arn))
    # (Whether it rechecked depends on how soon the wait ended on a loaded machine; the test
    # above shows the rechecks.)
    assert states[-1] == "SnapshotNotPublished"
    # The deployed alarm rule matches this execution's status change as EventBridge sends it
    # (Step Functions "Execution Status Change" event, detail status FAILED). moto's
    # TestEventPattern answers nothing, so the rule's pattern goes through the matcher moto's
    # PutEvents uses to route events to rules.
    events = runtime.clients["events"]
    topic = runtime.deployment.outputs["AlarmTopicArn"]
    rules = [
        rule
        for rule in events.list_rules()["Rules"]
        if any(t["Arn"] == topic for t in events.list_targets_by_rule(Rule=rule["Name"])["Targets"])
    ]
    assert len(rules) == 1  # the alarm rule: the one that sends to the maintainers' topic
    event = {
        "id": "1",
        "version": "0",
        "account": arn.split(":")[4],
        "time": scheduled_now(),
        "region": "us-east-1",
        "resources": [arn],
        "source": "aws.states",
        "detail-type": "Step Functions Execution Status Change",
        "detail": {
            "executionArn": arn,
            "stateMachineArn": runtime.deployment.state_machine_arn,
            "status": description["status"],
        },
    }
    assert EventPattern.load(rules[0]["EventPattern"]).matches_event(event)
    assert not EventPattern.load(rules[0]["EventPattern"]).matches_event(
        {**event, "detail": {**event["detail"], "status": "SUCCEEDED"}}
    )
