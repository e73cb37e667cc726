"""One local runtime per test session: moto's backends are process-global, so one server."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bisonflow import aws
from bisonflow.deploy import cfn_template
from bisonflow.deploy.packaging import FUNCTIONS
from bisonflow.history.executions import history
from bisonflow.history.report.diagram import CHROMEDRIVER, CHROMIUM, headless_chromium
from bisonflow.layout import DIMENSIONS, RECORD_NAME, MonthLayout
from bisonflow.local.runtime import LocalRuntime, LocalSettings
from bisonflow.steps.ec2_tasks import TAG_EXECUTION

#: A bucket of its own for tests that run one task module directly.
SCRATCH_BUCKET = "bisonflow-test-scratch"

#: The states an execution that processes a month passes through.
SUCCESS_PATH = (
    "CheckGbif",
    "SnapshotReady?",
    "SubsetAndAnnotate",
    "StartSubset",
    "SubmitSubset",
    "WaitForSubset",
    "PollSubset",
    "SubsetBatchDone?",
    "SubsetDone",
    "AnnotateRiis",
    "StartAssignAndAggregate",
    "SubmitAssignAndAggregate",
    "WaitForAssignAndAggregate",
    "PollAssignAndAggregate",
    "AssignAndAggregateBatchDone?",
    "AssignAndAggregateSummary",
    "CalcStats",
    "Published",
)

#: Small enough to keep the suite fast, large enough for every state and county.
TEST_RECORDS = 20_000

#: The files that take longest (whole workflow runs, waits for faults to be noticed), longest
#: first, as `--durations` measured them in a clean-clone run. They are collected first, and
#: scripts/test runs xdist with --no-loadscope-reorder, which keeps that order: by default
#: xdist hands out files with the most tests first, so these few-test files came last and one
#: worker ran the longest of them alone while the others sat idle.
LONGEST_FILES = (
    "test_fault_matrix_tasks.py",
    "test_fault_matrix.py",
    "test_new_user_commands.py",
    "test_console_browser.py",
    "test_faults_spot.py",
    "test_cli.py",
    "test_publish.py",
    "test_scheduler_fire.py",
    "test_redrive_workflow.py",
    "test_history_cli.py",
    "test_workflow.py",
    "test_deploy.py",
    "test_riis_guard.py",
    "test_faults_stopped.py",
    "test_riis_status.py",
    "test_record_taxonomy.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """LONGEST_FILES first, in that order; every other file after them, as collected (the
    sort is stable, so a file's tests keep their order)."""
    rank = {name: position for position, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


#: A laptop's browser window (issue 12: the report readable at 1400 px wide), for every
#: browser test.
WINDOW = (1400, 900)


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None: Chromium is installed by
    scripts/install-browser (tried once more here), selenium by the test extra."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        install = Path(__file__).resolve().parents[1] / "scripts" / "install-browser"
        result = subprocess.run([str(install)], capture_output=True, text=True)
        if result.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
            return (
                "headless Chromium could not be installed (scripts/install-browser failed: "
                f"{(result.stderr or result.stdout).strip()[-300:]}); browser tests skipped"
            )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]'); browser tests skipped"
    return None


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Headless Chromium in a WINDOW-sized window, one per test process (a start is ~2.5 s
    of CPU; every browser test loads its own page first)."""
    reason = browser_missing()
    if reason:
        pytest.skip(reason)
    browser = headless_chromium(
        tmp_path_factory.mktemp("chromium-profile"), f"--window-size={WINDOW[0]},{WINDOW[1]}"
    )
    yield browser
    browser.quit()


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> LocalRuntime:
    settings = LocalSettings(
        records=TEST_RECORDS,
        workdir=tmp_path_factory.mktemp("runtime"),
        poll_seconds=1,
        task_heartbeat_seconds=30,
        heartbeat_interval=1.0,
    )
    with LocalRuntime(settings, progress=lambda message: None) as rt:
        yield rt


@pytest.fixture
def aws_env(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> LocalRuntime:
    """Point this process's boto3 (bisonflow.aws) at the emulator, with the environment the
    deployed Lambdas have (all five functions' variables together)."""
    assert runtime.deployment is not None
    for function in FUNCTIONS:
        fn = runtime.clients["lambda"].get_function_configuration(
            FunctionName=f"{runtime.deployment.stack_name}-{function}"
        )
        for name, value in fn["Environment"]["Variables"].items():
            monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("AWS_ENDPOINT_URL", runtime.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    aws.reset_clients()
    yield runtime
    aws.reset_clients()


@pytest.fixture
def s3(aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch):
    """An empty BISON bucket on the emulator for one test; removed with its objects after."""
    monkeypatch.setenv("BISON_BUCKET", SCRATCH_BUCKET)
    client = aws.client("s3")
    client.create_bucket(Bucket=SCRATCH_BUCKET)
    yield client
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=SCRATCH_BUCKET):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=SCRATCH_BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=SCRATCH_BUCKET)


def wait_for_end(rt: LocalRuntime, arn: str, timeout: float = 120) -> dict:
    """DescribeExecution once the execution has left RUNNING."""
    sfn = rt.clients["stepfunctions"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        description = sfn.describe_execution(executionArn=arn)
        if description["status"] != "RUNNING":
            return description
        time.sleep(0.5)  # each look costs the emulator's CPU, which the run needs
    raise AssertionError(f"{arn} still running after {timeout} s")


def launched_instance(rt: LocalRuntime, execution: str, timeout: float = 150) -> str:
    """The instance execution `execution` (its name) launched for a task, once it is pending
    or running (generous: the suite shares two cores)."""
    ec2 = rt.clients["ec2"]
    deadline = time.monotonic() + timeout
    while True:
        found = ec2.describe_instances(
            Filters=[
                {"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        if found:
            return str(found[0]["Instances"][0]["InstanceId"])
        assert time.monotonic() < deadline, f"{execution} launched no task in {timeout} s"
        time.sleep(0.2)


#: Files calc_stats publishes for every dimension (issue 3), and its figures.
STATS_FILES = ("pam_{}.parquet", "heatmap_{}.parquet") + tuple(
    f"stats_{kind}_{{}}.csv" for kind in ("sites", "species", "diversity")
)
FIGURES = ("figure_richness_state.png", "figure_riis_share_state.png", "figure_heatmap_county.png")
#: The maps (bisonflow.graphics.maps), on the county boundaries the aggregate step loaded.
MAPS = ("map_richness_county.png", "map_riis_share_county.png", "map_richness_state.png")


def published_files(layout: MonthLayout) -> set[str]:
    """Every file a processed month's run writes outside the UNLOAD folders (keys in the
    bucket; `layout` is the run's, MonthLayout.for_run). The month's marker is not the run's:
    PublishMonth writes it at layout.done_marker_key."""
    summary = {name.format(dim) for dim in DIMENSIONS for name in STATS_FILES}
    summary |= set(FIGURES) | set(MAPS) | {RECORD_NAME}
    month_record = {  # provenance and change (bisonflow.steps.month_record)
        layout.citation_copy_key,
        layout.new_in_county_key,
        layout.county_changes_key,
        layout.new_this_month_figure_key,
    }
    # The aggregate step's CSV copies, UNLOADed beside the folders (bisonflow.sql.workflow_sql).
    csv_copies = {layout.table_csv_key(prefix) for prefix in unload_prefixes(layout)}
    return (
        {layout.riis_annotated_key, layout.riis_report_key}
        | month_record
        | csv_copies
        | {layout.summary_prefix + name for name in summary}
    )


def unload_prefixes(layout: MonthLayout) -> list[str]:
    """The aggregate step's UNLOAD folders: species lists and per-site counts per dimension."""
    return [
        prefix(dim)
        for dim in DIMENSIONS
        for prefix in (layout.species_counts_prefix, layout.region_counts_prefix)
    ]


@pytest.fixture
def without_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """calc_stats writes a placeholder for each figure and map instead of drawing it.

    For tests of its tables, marker and outputs run in-process: drawing the six images is
    about a CPU-second a run (matplotlib, 3,219 counties projected and drawn per map), and the
    suite is CPU-bound. The images themselves are tested in test_figures.py and test_maps.py,
    and every workflow run in the suite draws and publishes the real ones."""
    from tasks import calc_stats

    def placeholders(*names: str):
        return lambda *args, **kwargs: {name: b"not drawn: tests/conftest.py" for name in names}

    monkeypatch.setattr(calc_stats, "figure_files", placeholders(*FIGURES))
    monkeypatch.setattr(calc_stats, "map_files", placeholders(*MAPS))
    monkeypatch.setattr(calc_stats, "read_county_map", lambda *args, **kwargs: None)


@pytest.fixture(scope="module")
def template() -> dict:
    """The stack's template as CloudFormation reads it."""
    return cfn_template.template()


def leave_half_way(cfn: Any, stack: str) -> None:
    """A deploy interrupted after CreateChangeSet (CREATE): the stack REVIEW_IN_PROGRESS, with
    no resources, as `bisonflow deploy` stopped half-way leaves it."""
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName="interrupted",
        ChangeSetType="CREATE",
        TemplateBody=cfn_template.template_text(),
        Parameters=[{"ParameterKey": "BucketName", "ParameterValue": f"{stack}-bucket"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )


def waiting_for_its_snapshot(sfn: Any, arn: str) -> None:
    """Until the run waits for its snapshot: RUNNING, its interpreter started (moto cannot stop
    an execution whose interpreter thread has not started yet)."""
    deadline = time.monotonic() + 90  # generous: the suite shares two cores
    while not any(
        e.get("stateEnteredEventDetails", {}).get("name") == "WaitForSnapshot"
        for e in history(sfn, arn)
    ):
        assert time.monotonic() < deadline, "the scheduled run never started waiting"
        time.sleep(0.25)
