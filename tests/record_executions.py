"""Record tests/data/executions again: a succeeded, a failed and a running execution of this
tree's state machine on the local runtime, each beside the definition it ran.

The report, execution-view and cost tests (test_report*.py, test_execution_view.py,
test_cost.py) read these files instead of running the workflow: a run takes half a minute,
they take a second. Record again when the ASL gains or renames states (the recorded histories
must be ones the current machine writes), then update the counts those tests work out by hand:

    .venv/bin/python tests/record_executions.py [FOLDER]   (default tests/data/executions)

- succeeded: month 2026-08 processed, PublishMonth included;
- failed: month 2026-07 with the US-RIIS master list removed from the bucket: AnnotateRiis fails
  with FileNotFoundError, the Parallel's Catch runs CleanupTasks, then WorkflowFailed;
- running: month 2026-06 recorded while the subset loop waits between polls (WaitForSubset,
  its second visit or later), then stopped.

execution.json is DescribeExecution without the HTTP response's metadata, history.json is
GetExecutionHistory's events (bisonflow.history.executions.history), definition.json is
DescribeStateMachineForExecution's definition, pretty-printed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from conftest import wait_for_end

from bisonflow.history.executions import history
from bisonflow.layout import RIIS_INPUT_KEY
from bisonflow.local.runtime import LocalRuntime, LocalSettings

DATA = Path(__file__).parent / "data" / "executions"
#: The test runtime's size and polls (tests/conftest.py): enough batches to loop.
RECORDS = 20_000
#: The running execution is recorded in this state, on this visit or a later one.
RUNNING_IN, RUNNING_VISIT = "WaitForSubset", 2


def _save(rt: LocalRuntime, arn: str, kind: str, data: Path) -> None:
    sfn = rt.clients["stepfunctions"]
    description = sfn.describe_execution(executionArn=arn)
    description.pop("ResponseMetadata", None)
    definition = sfn.describe_state_machine_for_execution(executionArn=arn)["definition"]
    folder = data / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "execution.json").write_text(json.dumps(description, indent=2, default=str) + "\n")
    events = history(sfn, arn)
    (folder / "history.json").write_text(
        json.dumps({"events": events}, indent=2, default=str) + "\n"
    )
    (folder / "definition.json").write_text(json.dumps(json.loads(definition), indent=2) + "\n")
    print(f"{kind}: {description['status']}, {len(events)} events -> {folder}")


def _waiting_in(rt: LocalRuntime, arn: str, state: str, visit: int) -> bool:
    """`state` entered at least `visit` times and not yet left."""
    events = history(rt.clients["stepfunctions"], arn)
    entered = sum(1 for e in events if e.get("stateEnteredEventDetails", {}).get("name") == state)
    exited = sum(1 for e in events if e.get("stateExitedEventDetails", {}).get("name") == state)
    return entered >= visit and entered > exited


def record(rt: LocalRuntime, data: Path) -> None:
    assert rt.deployment and rt.sample
    s3, bucket = rt.clients["s3"], rt.deployment.bucket

    rt.publish_snapshot("2026-08")
    arn = rt.start_execution("2026-08", name="recorded-succeeded")
    assert wait_for_end(rt, arn, timeout=300)["status"] == "SUCCEEDED"
    _save(rt, arn, "succeeded", data)

    rt.publish_snapshot("2026-07")
    s3.delete_object(Bucket=bucket, Key=RIIS_INPUT_KEY)
    try:
        arn = rt.start_execution("2026-07", name="recorded-failed")
        assert wait_for_end(rt, arn, timeout=300)["status"] == "FAILED"
    finally:
        s3.upload_file(str(rt.sample.riis_csv), bucket, RIIS_INPUT_KEY)
    _save(rt, arn, "failed", data)

    rt.publish_snapshot("2026-06")
    arn = rt.start_execution("2026-06", name="recorded-running")
    deadline = time.monotonic() + 300
    while not _waiting_in(rt, arn, RUNNING_IN, RUNNING_VISIT):
        if time.monotonic() > deadline:
            raise SystemExit(f"no visit {RUNNING_VISIT} to {RUNNING_IN} in 300 s")
        time.sleep(0.05)
    _save(rt, arn, "running", data)
    rt.clients["stepfunctions"].stop_execution(executionArn=arn)
    wait_for_end(rt, arn, timeout=300)


def main(data: Path = DATA) -> None:
    settings = LocalSettings(
        records=RECORDS, poll_seconds=1, task_heartbeat_seconds=30, heartbeat_interval=1.0
    )
    with LocalRuntime(settings, progress=print) as rt:
        record(rt, data)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA)
