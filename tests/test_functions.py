"""Each Lambda handler called directly against the emulator, with its deployed environment."""

from __future__ import annotations

import base64
import json
import re
import time

import pytest

from bisonflow import PROJECT_ROOT, aws, config
from bisonflow.config import DEFAULT_MIN_PRESENCE_COUNT, RedshiftTarget
from bisonflow.deploy import cfn_template
from bisonflow.layout import MonthLayout
from bisonflow.local.runtime import LocalRuntime
from bisonflow.schemas import SchemaViolation
from bisonflow.sql.subset_rules import DEFAULT_SUBSET_RULES, SubsetRules, sql_in_list
from bisonflow.steps.ec2_tasks import (
    TAG_EXECUTION,
    TAG_SPEC,
    TAG_STACK,
    TAG_TASK,
    TOKEN_PARAMETER_ROOT,
    launch_client,
    task_spec,
)
from bisonflow.steps.statements import SqlStatementFailed
from bisonflow.steps.taskspec import CalcStatsSpec
from functions import check_gbif, cleanup_task, launch_task, poll_statement, submit_statements


def test_check_gbif_reports_snapshot_and_settings(aws_env: LocalRuntime) -> None:
    aws_env.publish_snapshot("2026-05")
    result = check_gbif.handler({"month": "2026-05"}, None)
    assert result["snapshot_exists"] is True and result["already_processed"] is False
    assert (
        result["gbif_uri"]
        == "s3://gbif-open-data-us-east-1/occurrence/2026-05-01/occurrence.parquet/"
    )
    assert result["settings"]["poll_seconds"] == 1
    missing = check_gbif.handler({"month": "2024-02"}, None)
    assert missing["snapshot_exists"] is False and "2024-02" in missing["reason"]


def test_check_gbif_defaults_to_the_current_month(aws_env: LocalRuntime) -> None:
    result = check_gbif.handler({}, None)
    assert result["month"] == time.strftime("%Y-%m", time.gmtime())


def test_a_scheduled_run_processes_the_month_of_its_fire_time(aws_env: LocalRuntime) -> None:
    # EventBridge Scheduler passes <aws.scheduler.scheduled-time>; a retry on the 3rd of
    # December, or a fire time given with an offset, still means December (in UTC).
    assert (
        check_gbif.handler({"scheduled_time": "2026-12-02T06:00:00Z"}, None)["month"] == "2026-12"
    )
    late = check_gbif.handler({"scheduled_time": "2026-12-31T23:30:00-05:00"}, None)
    assert late["month"] == "2027-01"
    explicit = {"scheduled_time": "2026-12-02T06:00:00Z", "month": "2026-10"}
    assert check_gbif.handler(explicit, None)["month"] == "2026-10"


def test_a_scheduled_time_without_offset_is_refused(aws_env: LocalRuntime) -> None:
    with pytest.raises(ValueError, match="has no time zone offset"):
        check_gbif.handler({"scheduled_time": "2026-12-02T06:00:00"}, None)


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"scheduled_time": "yesterday"}, "$.scheduled_time"),
        ({"month": "2026-13"}, "$.month"),
        ({"month": "26-01"}, "$.month"),
        ({"monht": "2026-01"}, "monht"),
        ({"month": "2026-01", "force": "yes"}, "$.force"),
    ],
)
def test_check_gbif_names_the_bad_field(aws_env: LocalRuntime, event: dict, named: str) -> None:
    with pytest.raises(SchemaViolation, match=named.replace("$", r"\$")):
        check_gbif.handler(event, None)


def test_submit_and_poll_run_every_subset_batch(aws_env: LocalRuntime) -> None:
    aws_env.publish_snapshot("2026-05")
    batch, batches = 0, 1
    while batch < batches:
        submitted = submit_statements.handler(
            {"step": "subset", "month": "2026-05", "execution": "unit-exec", "batch": batch},
            None,
        )
        batches = submitted["batches"]
        event = {k: submitted[k] for k in ("statement_id", "step", "batch", "batches")}
        for _ in range(200):
            polled = poll_statement.handler(event, None)
            if polled["status"] == "FINISHED":
                break
            time.sleep(0.05)
        assert polled["status"] == "FINISHED"
        assert polled["next_batch"] == batch + 1
        assert polled["more_batches"] == (batch + 1 < batches)
        batch = polled["next_batch"]
    rows = aws_env.clients["redshift-data"].execute_statement(
        WorkgroupName=RedshiftTarget.from_env().workgroup,  # the deployed one
        Database="dev",
        Sql=f"SELECT count(*) FROM {MonthLayout.for_month('2026-05').subset_table}",
    )
    for _ in range(200):
        if (
            aws_env.clients["redshift-data"].describe_statement(Id=rows["Id"])["Status"]
            == "FINISHED"
        ):
            break
        time.sleep(0.05)
    result = aws_env.clients["redshift-data"].get_statement_result(Id=rows["Id"])
    assert aws_env.sample
    assert result["Records"][0][0]["longValue"] == aws_env.sample.expected["us_valid_records"]


def test_submit_rejects_a_batch_that_does_not_exist(aws_env: LocalRuntime) -> None:
    with pytest.raises(ValueError, match="batch 99 does not exist"):
        submit_statements.handler(
            {"step": "subset", "month": "2026-05", "execution": "unit-exec", "batch": 99}, None
        )


def test_poll_raises_the_sql_error(aws_env: LocalRuntime) -> None:
    data = aws_env.clients["redshift-data"]
    statement = data.execute_statement(
        WorkgroupName="bison", Database="dev", Sql="SELECT no_such_column FROM no_such_table"
    )
    event = {"statement_id": statement["Id"], "step": "aggregate", "batch": 0, "batches": 1}
    with pytest.raises(SqlStatementFailed, match="no_such_table"):
        for _ in range(200):
            poll_statement.handler(event, None)
            time.sleep(0.05)


def test_launch_stores_the_token_in_ssm_and_cleanup_removes_everything(
    aws_env: LocalRuntime,
) -> None:
    aws_env.agent.paused = True  # keep the instance idle: this test is about launch/cleanup
    sent: list[dict] = []
    launch_client().meta.events.register(  # RunInstances goes without botocore's retries
        "provide-client-params.ec2.RunInstances", lambda params, **_: sent.append(params)
    )
    try:
        launched = launch_task.handler(
            {
                "task": "calc_stats",
                "month": "2026-05",
                "execution": "unit-exec",
                "task_token": "tok-123",
            },
            None,
        )
        ssm = aws_env.clients["ssm"]
        stored = ssm.get_parameter(
            Name=f"{TOKEN_PARAMETER_ROOT}/unit-exec/calc_stats", WithDecryption=True
        )
        assert stored["Parameter"]["Value"] == "tok-123"
        assert stored["Parameter"]["Type"] == "SecureString"
        instance = aws_env.clients["ec2"].describe_instances(InstanceIds=[launched["instance_id"]])
        tags = {t["Key"]: t["Value"] for t in instance["Reservations"][0]["Instances"][0]["Tags"]}
        assert tags[TAG_EXECUTION] == "unit-exec" and tags["bisonflow:step"] == "CalcStats"
        # The boot script comes from the task's launch template; the run's values are tags.
        outputs = aws_env.deployment.outputs
        assert tags["aws:ec2launchtemplate:id"] == outputs["CalcStatsLaunchTemplateId"]
        assert tags[TAG_TASK] == "calc_stats"
        assert tags[TAG_SPEC] == f"s3://{aws_env.deployment.bucket}/{launched['spec_key']}"
        assert tags["bisonflow:stack"] == aws_env.deployment.stack_name
        userdata = aws_env.clients["ec2"].describe_instance_attribute(
            InstanceId=launched["instance_id"], Attribute="userData"
        )["UserData"]["Value"]
        assert base64.b64decode(userdata).decode() == cfn_template.boot_script()
        assert "tok-123" not in json.dumps(tags)
        # RunInstances' own tags replace the launch template's on AWS (moto merges them), so
        # the request itself carries every tag the boot script reads and the IAM conditions
        # test, with the deployment's values.
        (request,) = sent
        (requested,) = [s for s in request["TagSpecifications"] if s["ResourceType"] == "instance"]
        given = {tag["Key"]: tag["Value"] for tag in requested["Tags"]}
        read = set(re.findall(r"tags/instance/([\w:.-]+)", cfn_template.boot_script()))
        assert read <= set(given)
        assert given[TAG_STACK] == aws_env.deployment.stack_name
        assert given["bisonflow:log-group"] == outputs["TaskLogGroupName"]
        assert given["bisonflow:repository"] == PROJECT_ROOT.as_uri()
        assert given["bisonflow:image"] == ""  # built on the instance
        assert given == {k: v for k, v in tags.items() if not k.startswith("aws:")}
        result = cleanup_task.handler({"execution": "unit-exec", "error": {"Error": "X"}}, None)
        assert result == {
            "terminated": [launched["instance_id"]],
            "deleted_tokens": 1,
            "released_locks": [],
            "cancelled_statements": [],
        }
        again = cleanup_task.handler({"execution": "unit-exec", "error": {"Error": "X"}}, None)
        assert again == {
            "terminated": [],
            "deleted_tokens": 0,
            "released_locks": [],
            "cancelled_statements": [],
        }
    finally:
        aws_env.agent.paused = False


def test_the_deployed_functions_carry_bisons_subset_and_threshold(aws_env: LocalRuntime) -> None:
    """The stack's defaults (no parameter given by the local runtime) reach the Lambdas'
    environment: the seed's lists for the subset SQL, threshold 3 in the calc_stats spec."""
    assert SubsetRules.from_env() == DEFAULT_SUBSET_RULES
    spec = task_spec("calc_stats", MonthLayout.for_run("2026-05", "unit-exec"), "unit-exec")
    assert isinstance(spec, CalcStatsSpec)
    assert spec.settings.min_presence_count == DEFAULT_MIN_PRESENCE_COUNT == 3


def _submitted_subset_sql(batch: int) -> list[str]:
    """The SQL submit_statements sends for one subset batch, as the Data API receives it. A
    month no other test uses: with no snapshot mounted the statement fails, touching nothing."""
    sent: list[dict] = []
    aws.client("redshift-data").meta.events.register(
        "provide-client-params.redshift-data.*", lambda params, **_: sent.append(params)
    )
    submit_statements.handler(
        {"step": "subset", "month": "2022-11", "execution": "unit-exec", "batch": batch}, None
    )
    (params,) = sent
    return params.get("Sqls") or [params["Sql"]]


def test_a_configured_subset_list_reaches_the_submitted_sql(
    aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = "\n".join(_submitted_subset_sql(3))
    assert f"basisofrecord IN ({sql_in_list(DEFAULT_SUBSET_RULES.basis_of_record)})" in default
    monkeypatch.setenv("SUBSET_BASIS_OF_RECORD", "PRESERVED_SPECIMEN,MATERIAL_SAMPLE")
    monkeypatch.setenv("SUBSET_TAXON_RANKS", "SPECIES")
    aws.reset_clients()
    configured = "\n".join(_submitted_subset_sql(3))
    assert "AND taxonrank IN ('SPECIES')\n" in configured
    assert "AND basisofrecord IN ('PRESERVED_SPECIMEN', 'MATERIAL_SAMPLE')" in configured


def test_a_bad_subset_value_is_refused_before_any_sql_is_sent(
    aws_env: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBSET_BASIS_OF_RECORD", "HUMAN_OBSERVATION,FOSSIL")
    sent: list[dict] = []
    aws.client("redshift-data").meta.events.register(
        "provide-client-params.redshift-data.*", lambda params, **_: sent.append(params)
    )
    with pytest.raises(config.ConfigError) as refused:
        submit_statements.handler(
            {"step": "subset", "month": "2026-05", "execution": "unit-exec", "batch": 0}, None
        )
    message = str(refused.value)
    assert message.startswith(
        "environment variable SUBSET_BASIS_OF_RECORD: 'FOSSIL' is not a basisOfRecord of "
        "GBIF's vocabulary (one of PRESERVED_SPECIMEN, FOSSIL_SPECIMEN, "
    )
    assert "\n" not in message and sent == []


def test_a_relaunch_ends_the_lost_attempts_instance_and_no_other(aws_env: LocalRuntime) -> None:
    """A callback step retried after its task was lost: launch_task terminates the earlier
    attempt's instance of the same step, and leaves the execution's other step alone."""
    aws_env.agent.paused = True  # the instances stay idle: this test is about launching
    event = {"month": "2026-05", "execution": "relaunch-exec", "task_token": "tok-1"}
    try:
        other = launch_task.handler({**event, "task": "annotate_riis"}, None)
        first = launch_task.handler({**event, "task": "calc_stats"}, None)
        assert first["replaced"] == []
        second = launch_task.handler({**event, "task": "calc_stats", "attempt": 1}, None)
        assert second["replaced"] == [first["instance_id"]]
        ec2 = aws_env.clients["ec2"]
        states = {
            i["InstanceId"]: (i["State"]["Name"], {t["Key"]: t["Value"] for t in i["Tags"]})
            for r in ec2.describe_instances(
                InstanceIds=[other["instance_id"], first["instance_id"], second["instance_id"]]
            )["Reservations"]
            for i in r["Instances"]
        }
        assert states[first["instance_id"]][0] in ("shutting-down", "terminated")
        assert states[other["instance_id"]][0] == "running"
        assert states[second["instance_id"]][0] == "running"
        assert states[second["instance_id"]][1]["bisonflow:attempt"] == "1"
    finally:
        cleanup_task.handler({"execution": "relaunch-exec", "error": {"Error": "X"}}, None)
        aws_env.agent.paused = False
