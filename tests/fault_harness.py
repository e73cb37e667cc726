"""Shared checks of the fault tests (issue 11): after a fault, nothing of the execution is
left running, and the month readers see is the one published before.

`assert_nothing_left` waits a little before it fails: a task reports, then terminates its own
instance, so the execution may end a moment before its last instance does; what is still
there after LEFT_WAIT_SECONDS is left behind. `published_month` reads every object of the
month's published outputs with its ETag and SHA-256, to compare before and after a fault.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from typing import Any

from bisonflow.history.executions import history
from bisonflow.layout import MonthError, MonthLayout
from bisonflow.local.faults import execution_instances, task_process
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import LIVE_STATES, TOKEN_PARAMETER_ROOT
from bisonflow.steps.month_lock import lock_key
from bisonflow.steps.publish import published

#: Data API statement states that are still queued or running (Redshift Data API reference,
#: DescribeStatement, Status).
LIVE_STATEMENTS = ("SUBMITTED", "PICKED", "STARTED")
#: How long a run's leftovers may take to go after it ended (a task's own terminate, a
#: cleanup's terminate reaching the agent's next poll), on a machine the suite loads.
LEFT_WAIT_SECONDS = 20.0

#: The folder of each run's staging folders inside a month's folders (bisonflow.layout RUNS).
STAGING_FOLDER = "runs"
#: Object -> (ETag, SHA-256 of its bytes).
Published = dict[str, tuple[str, str]]


def published_prefixes(layout: MonthLayout) -> tuple[str, ...]:
    """Where a month's published objects are: its summary folder and annotated list's folder."""
    return (layout.summary_prefix, f"annotated_riis/{layout.datestamp}/")


def published_month(rt: LocalRuntime, month: str) -> Published:
    """Every object a reader of the month can reach: under the month's published prefixes,
    except other runs' staging folders (`.../runs/<execution>/`; only the run its marker
    names is part of the month, bisonflow.steps.publish): key -> (ETag, SHA-256). Objects written
    in the month's own folders outside any run count too: no run should write there."""
    assert rt.deployment
    s3, bucket = rt.clients["s3"], rt.deployment.bucket
    layout = MonthLayout.for_month(month)
    found_month = published(s3, bucket, layout)
    run = None if found_month is None else found_month.execution
    found: Published = {}
    for prefix in published_prefixes(layout):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                staged = key.removeprefix(prefix).split("/")
                if staged[0] == STAGING_FOLDER and len(staged) > 2 and staged[1] != run:
                    continue  # another run's staging folder: no reader is sent there
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                found[key] = (obj["ETag"], hashlib.sha256(body).hexdigest())
    return found


def what_is_left(rt: LocalRuntime, description: dict[str, Any]) -> list[str]:
    """What the ended execution (DescribeExecution) left: live instances, task processes,
    statements still queued or running since it started, task tokens, and its month lock."""
    assert rt.deployment
    arn, name = description["executionArn"], description["name"]
    left: list[str] = []
    for instance in execution_instances(rt, name):
        instance_id, state = instance["InstanceId"], instance["State"]["Name"]
        if state in LIVE_STATES:
            left.append(f"instance {instance_id} is {state}")
        pid = task_process(instance_id)
        if pid is not None:
            left.append(f"task process {pid} of instance {instance_id} is alive ({state})")
    started: dt.datetime = description["startDate"]
    data = rt.clients["redshift-data"]
    for page in data.get_paginator("list_statements").paginate(Status="ALL"):
        for statement in page["Statements"]:
            if statement["Status"] in LIVE_STATEMENTS and statement["CreatedAt"] >= started:
                left.append(f"statement {statement['Id']} is {statement['Status']}")
    ssm = rt.clients["ssm"]
    for page in ssm.get_paginator("get_parameters_by_path").paginate(
        Path=f"{TOKEN_PARAMETER_ROOT}/{name}", Recursive=True
    ):
        left += [f"task token {p['Name']} is stored" for p in page["Parameters"]]
    try:
        layout = MonthLayout.for_month(json.loads(description["input"]).get("month"))
    except MonthError:  # refused before it could lock anything
        return left
    key = lock_key(layout)
    s3, bucket = rt.clients["s3"], rt.deployment.bucket
    try:  # one read: the cleanup may delete the lock between a listing and a read
        holder = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except s3.exceptions.NoSuchKey:
        return left
    if holder.get("execution") == arn:
        left.append(f"the month lock {key} still names the execution")
    return left


def assert_nothing_left(rt: LocalRuntime, execution_arn: str) -> None:
    """The execution has ended and, within LEFT_WAIT_SECONDS, nothing of it is left: no
    instance pending/running/stopping/stopped, no task process, no statement queued or
    running, no task token in SSM, no month lock naming it."""
    description = rt.clients["stepfunctions"].describe_execution(executionArn=execution_arn)
    assert description["status"] != "RUNNING", f"{execution_arn} is still running"
    deadline = time.monotonic() + LEFT_WAIT_SECONDS
    while left := what_is_left(rt, description):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{description['name']} ({description['status']}) left behind after "
                f"{LEFT_WAIT_SECONDS:g} s: " + "; ".join(left)
            )
        time.sleep(0.5)


def explained(rt: LocalRuntime, description: dict[str, Any]) -> str:
    """An ended execution's status, error and cause, and the failures in its history: what an
    assertion on its outcome should print."""
    failures = [
        f"{e['type']}: {json.dumps(details, default=str)[:300]}"
        for e in history(rt.clients["stepfunctions"], description["executionArn"])
        if e["type"].endswith(("Failed", "TimedOut", "Aborted"))
        for details in [next((v for k, v in e.items() if k.endswith("EventDetails")), {})]
    ]
    return (
        f"{description['name']}: {description['status']} {description.get('error')}: "
        f"{description.get('cause')}; failures: " + " | ".join(failures)
    )
