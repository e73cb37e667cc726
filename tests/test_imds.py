"""Instance metadata as EC2 serves it: a task gets its instance profile role's session only when
the launch template's metadata options let its container reach IMDS."""

from __future__ import annotations

import base64
import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bisonflow import PROJECT_ROOT
from bisonflow.deploy import cfn_template
from bisonflow.layout import MonthLayout
from bisonflow.local.ec2.agent import Ec2Agent
from bisonflow.local.ec2.compose_file import interpolate, task_service
from bisonflow.local.ec2.instance_metadata import (
    BRIDGE_HOPS,
    HOST_HOPS,
    Access,
    MetadataOptions,
    MetadataService,
    Network,
    boot_script_reads,
    container_credentials,
    container_network,
)
from bisonflow.local.emulator import REGION
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import instance_tags
from tasks.spot_notice import (
    NOTICE_PATH,
    InstanceMetadata,
    InterruptionNotice,
    SpotWatch,
    check_interval,
    parse_notice,
)

ROLE = "arn:aws:iam::123456789012:role/task"
BRIDGE = Network("bridge", BRIDGE_HOPS)
HOST = Network("host", HOST_HOPS)


# --- the rule ----------------------------------------------------------------------------------
def test_templates_left_out_options_take_ec2s_defaults() -> None:
    assert MetadataOptions.from_api({}) == MetadataOptions("enabled", "optional", 1, "disabled")
    options = MetadataOptions.from_api({"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    assert (options.http_tokens, options.hop_limit) == ("required", 2)


def test_the_task_compose_files_use_the_bridge_network_and_awslogs(tmp_path: Path) -> None:
    env = {"INSTANCE_ID": "i-0abc", "AWS_REGION": "us-east-1"}
    for task in ("annotate_riis", "calc_stats"):
        service = task_service(PROJECT_ROOT / "tasks" / f"compose.{task}.yml", env)
        assert container_network(service.network_mode) == BRIDGE
        # TASK_LOG_GROUP unset: compose's default applies.
        # One task per instance: the stream is the instance id, where the report links.
        assert service.awslogs == ("bison_task", "i-0abc")
    host = tmp_path / "compose.yml"
    host.write_text(yaml.safe_dump({"services": {"t": {"image": "x", "network_mode": "host"}}}))
    assert container_network(task_service(host, {}).network_mode) == HOST
    assert task_service(host, {}).awslogs is None
    with pytest.raises(ValueError, match="network_mode none is not modelled"):
        container_network("none")


def test_compose_interpolation() -> None:
    env = {"A": "a", "EMPTY": ""}
    assert interpolate("${A}-$A-${B:-b}-${EMPTY:-e}-${EMPTY-e}-${B-x}-$$A", env) == (
        "a-a-b-e--x-$A"
    )


@pytest.mark.parametrize(
    ("options", "network", "granted", "reason"),
    [
        # IMDSv2 only, default hop limit, bridge network: the token never comes back.
        (
            {"HttpTokens": "required"},
            BRIDGE,
            False,
            "IMDSv2 token PUT needs 2 hops from the compose bridge network but the launch "
            "template's HttpPutResponseHopLimit is 1 and HttpTokens is required",
        ),
        ({"HttpTokens": "required", "HttpPutResponseHopLimit": 2}, BRIDGE, True, ""),
        ({"HttpTokens": "required"}, HOST, True, ""),
        # Tokens optional: the SDK falls back to IMDSv1 after the token PUT times out.
        ({"HttpTokens": "optional"}, BRIDGE, True, "falls back to IMDSv1"),
        (
            {"HttpEndpoint": "disabled", "HttpPutResponseHopLimit": 2},
            HOST,
            False,
            "MetadataOptions.HttpEndpoint is disabled",
        ),
    ],
)
def test_container_credentials_follow_the_metadata_options(
    options: dict, network: Network, granted: bool, reason: str
) -> None:
    access = container_credentials(MetadataOptions.from_api(options), network, ROLE)
    assert access.granted is granted
    assert reason in access.reason
    assert access.granted or access.reason  # every denial says why


def test_no_instance_profile_means_no_credentials_anywhere() -> None:
    access = container_credentials(MetadataOptions.from_api({}), HOST, None)
    assert not access.granted and "no IAM instance profile" in access.reason


def test_the_boot_script_reads_tags_only_where_the_template_allows() -> None:
    paths = ["instance-id", "tags/instance/bisonflow:task"]
    allowed = MetadataOptions.from_api(
        {"HttpTokens": "required", "InstanceMetadataTags": "enabled"}
    )
    assert boot_script_reads(allowed, paths).granted
    no_tags = boot_script_reads(MetadataOptions.from_api({"HttpTokens": "required"}), paths)
    assert not no_tags.granted and "InstanceMetadataTags is disabled" in no_tags.reason


# --- the agent, on the session's emulator --------------------------------------------------------
#: The task container's command in these tests: what it can do with the credentials it has.
WHOAMI = """
import json, os, boto3
seen = {"keys": "AWS_ACCESS_KEY_ID" in os.environ,
        "metadata_disabled": os.environ.get("AWS_EC2_METADATA_DISABLED")}
try:
    seen["arn"] = boto3.client("sts").get_caller_identity()["Arn"]
except Exception as exc:
    seen["error"] = type(exc).__name__
print(json.dumps(seen))
"""


@pytest.fixture
def agent(runtime: LocalRuntime, tmp_path: Path):
    """An agent of its own, booting only this test's instances (the session's agent pauses),
    with a repository holding the real bridge-network compose file and a host-network one."""
    tasks = tmp_path / "repo" / "tasks"
    tasks.mkdir(parents=True)
    bridge = (PROJECT_ROOT / "tasks" / "compose.calc_stats.yml").read_text()
    (tasks / "compose.calc_stats.yml").write_text(bridge)
    host = yaml.safe_load(bridge)
    host["services"]["calc_stats"]["network_mode"] = "host"
    (tasks / "compose.hostnet.yml").write_text(yaml.safe_dump(host))
    execution = f"imds-{uuid.uuid4().hex[:8]}"
    own = Ec2Agent(
        ec2=runtime.clients["ec2"],
        iam=runtime.clients["iam"],
        endpoint_url=runtime.endpoint_url,
        region=REGION,
        workdir=tmp_path,
        task_env={
            "AWS_ENDPOINT_URL": runtime.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
        },
        repository=tmp_path / "repo",
        task_command=(sys.executable, "-c", WHOAMI),
        filters=[{"Name": "tag:bisonflow:execution", "Values": [execution]}],
    )
    runtime.agent.paused = True
    try:
        yield own
    finally:
        ec2 = runtime.clients["ec2"]
        pages = ec2.get_paginator("describe_instances").paginate(Filters=own.filters)
        ids = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
        own.stop()
        runtime.agent.paused = False


def _launch(runtime: LocalRuntime, agent: Ec2Agent, task: str, options: dict) -> str:
    """RunInstances from a launch template like the deployed one with `options` as its
    MetadataOptions, tagged as launch_task tags a task instance."""
    assert runtime.deployment
    ec2 = runtime.clients["ec2"]
    deployed = ec2.describe_launch_template_versions(
        LaunchTemplateId=runtime.deployment.outputs["CalcStatsLaunchTemplateId"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    data = {
        "ImageId": deployed["ImageId"],
        "IamInstanceProfile": deployed["IamInstanceProfile"],
        "InstanceInitiatedShutdownBehavior": deployed["InstanceInitiatedShutdownBehavior"],
        "UserData": base64.b64encode(cfn_template.boot_script().encode()).decode(),
        "TagSpecifications": deployed["TagSpecifications"],
        "MetadataOptions": options,
    }
    template = ec2.create_launch_template(
        LaunchTemplateName=f"imds-{uuid.uuid4().hex[:8]}", LaunchTemplateData=data
    )["LaunchTemplate"]["LaunchTemplateId"]
    execution = agent.filters[0]["Values"][0]  # the fixture's own instances only
    tags = instance_tags("calc_stats", MonthLayout.for_month("2026-11"), execution, "s3://b/k")
    tags = [t if t["Key"] != "bisonflow:task" else {**t, "Value": task} for t in tags]
    return ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]


def _task_output(runtime: LocalRuntime, agent: Ec2Agent, instance_id: str) -> dict:
    """Boot the instance, wait for its task to end and its log to ship; the task's report."""
    logs = runtime.clients["logs"]
    assert runtime.deployment
    group = runtime.deployment.outputs["TaskLogGroupName"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        agent.poll_once()
        # The stream the compose file's awslogs driver names: the instance id.
        stream = instance_id
        streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)
        if streams["logStreams"]:
            events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
            return json.loads(events[-1]["message"])
        time.sleep(0.2)
    raise AssertionError(f"{instance_id}: no task log shipped in 30 s; agent said {agent.notices}")


def _instance_session(runtime: LocalRuntime, instance_id: str) -> str:
    """The assumed-role ARN of the instance profile role's session EC2 gives `instance_id`:
    EC2 names the session after the instance."""
    assert runtime.deployment
    profile = runtime.clients["ec2"].describe_launch_template_versions(
        LaunchTemplateId=runtime.deployment.outputs["CalcStatsLaunchTemplateId"]
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]["IamInstanceProfile"]["Arn"]
    name = profile.rsplit("/", 1)[1]
    role = runtime.clients["iam"].get_instance_profile(InstanceProfileName=name)["InstanceProfile"][
        "Roles"
    ][0]["RoleName"]
    return f"arn:aws:sts::123456789012:assumed-role/{role}/{instance_id}"


def test_a_task_runs_as_its_instance_profile_role(runtime: LocalRuntime, agent: Ec2Agent) -> None:
    options = {"HttpTokens": "required", "HttpPutResponseHopLimit": 2, "HttpEndpoint": "enabled"}
    instance_id = _launch(
        runtime, agent, "calc_stats", options | {"InstanceMetadataTags": "enabled"}
    )
    seen = _task_output(runtime, agent, instance_id)
    assert seen["arn"] == _instance_session(runtime, instance_id)
    assert seen["metadata_disabled"] == "true", "boto3 must never try the metadata address"
    assert agent.notices == []


def test_hop_limit_1_and_the_bridge_network_give_the_task_no_credentials(
    runtime: LocalRuntime, agent: Ec2Agent
) -> None:
    options = {
        "HttpTokens": "required",
        "HttpEndpoint": "enabled",
        "InstanceMetadataTags": "enabled",
    }
    instance_id = _launch(runtime, agent, "calc_stats", options)
    seen = _task_output(runtime, agent, instance_id)
    assert seen == {"keys": False, "metadata_disabled": "true", "error": "NoCredentialsError"}
    assert agent.notices == [
        f"instance {instance_id}: IMDSv2 token PUT needs 2 hops from the compose bridge network "
        "but the launch template's HttpPutResponseHopLimit is 1 and HttpTokens is required (no "
        "IMDSv1 fallback): the task gets no credentials"
    ]


def test_host_networking_reaches_imds_within_one_hop(
    runtime: LocalRuntime, agent: Ec2Agent
) -> None:
    options = {"HttpTokens": "required", "InstanceMetadataTags": "enabled"}
    instance_id = _launch(runtime, agent, "hostnet", options)
    seen = _task_output(runtime, agent, instance_id)
    assert seen["arn"] == _instance_session(runtime, instance_id)


def test_metadata_endpoint_disabled_stops_the_boot_script(
    runtime: LocalRuntime, agent: Ec2Agent
) -> None:
    options = {"HttpEndpoint": "disabled", "InstanceMetadataTags": "enabled"}
    instance_id = _launch(runtime, agent, "calc_stats", options)
    agent.poll_once()
    state = runtime.clients["ec2"].describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"
    ][0]["State"]["Name"]
    assert state in ("shutting-down", "terminated")
    assert agent.notices == [
        f"instance {instance_id}: the launch template's MetadataOptions.HttpEndpoint is disabled, "
        "so the boot script cannot read instance metadata: its boot script fails: the instance "
        "shuts down"
    ]


# --- the Spot interruption notice (tasks.spot_notice against MetadataService) ------------------


@pytest.fixture
def metadata_service() -> Iterator[MetadataService]:
    service = MetadataService().start()
    yield service
    service.stop()


def test_the_spot_notice_is_absent_until_ec2_gives_it_and_the_watch_reports_it_once(
    metadata_service: MetadataService,
) -> None:
    """instance-action answers 404 until the notice (EC2 User Guide, "Spot Instance
    interruption notices"); the watch reads it through IMDSv2 and calls back once."""
    metadata_service.register("i-spot", Access(True), tokens_required=True)
    metadata = InstanceMetadata(metadata_service.endpoint("i-spot"))
    assert metadata.get("instance-id") == "i-spot"
    assert metadata.get(NOTICE_PATH) is None
    seen: list[InterruptionNotice] = []
    with SpotWatch(seen.append, 0.05, metadata):
        time.sleep(0.3)
        assert seen == []
        metadata_service.interrupt("i-spot", "terminate", "2029-10-01T00:02:00Z")
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # it would have called again by now
    assert seen == [InterruptionNotice("terminate", "2029-10-01T00:02:00Z")]
    assert seen[0].describe() == (
        "Spot interruption notice: EC2 will terminate this instance at 2029-10-01T00:02:00Z"
    )
    # A notice already given when the watch starts is met at once, not an interval later.
    early: list[InterruptionNotice] = []
    with SpotWatch(early.append, 3600, metadata):
        deadline = time.monotonic() + 10
        while not early and time.monotonic() < deadline:
            time.sleep(0.05)
    assert early == seen


def test_imdsv2_refuses_a_read_without_a_token_where_tokens_are_required(
    metadata_service: MetadataService,
) -> None:
    metadata_service.register("i-v2", Access(True), tokens_required=True)
    url = metadata_service.endpoint("i-v2") + "latest/meta-data/instance-id"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)
    assert refused.value.code == 401
    bad_ttl = urllib.request.Request(
        metadata_service.endpoint("i-v2") + "latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "21601"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bad_ttl, timeout=5)
    assert refused.value.code == 400


def test_a_task_that_cannot_reach_metadata_runs_without_the_watch_and_says_so_once(
    metadata_service: MetadataService, caplog: pytest.LogCaptureFixture
) -> None:
    why = "IMDSv2 token PUT needs 2 hops from the task container but the hop limit is 1"
    metadata_service.register("i-far", Access(False, why), tokens_required=True)
    watch = SpotWatch(
        lambda notice: None, 1.0, InstanceMetadata(metadata_service.endpoint("i-far"))
    )
    with caplog.at_level("WARNING", logger="bisonflow.task"):
        assert watch.check_once() is None
        assert watch.check_once() is None
    warnings = [
        r.getMessage() for r in caplog.records if "no Spot interruption watch" in r.getMessage()
    ]
    assert len(warnings) == 1 and "403" in warnings[0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (None, None),
        ("", None),
        ("not json", None),
        ('{"action": "stop", "time": "2029-10-01T00:02:00Z"}', ("stop", "2029-10-01T00:02:00Z")),
        ('{"action": "hibernate", "time": "t"}', ("hibernate", "t")),
        ('{"action": "rebalance", "time": "t"}', None),
        ("[1]", None),
    ],
)
def test_only_an_interrupting_action_is_a_notice(body: str | None, expected: tuple | None) -> None:
    notice = parse_notice(body)
    assert (notice and (notice.action, notice.time)) == expected


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_a_bad_check_interval_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TASK_SPOT_CHECK_SECONDS", value)
    with pytest.raises(ValueError, match="TASK_SPOT_CHECK_SECONDS must be a positive number"):
        check_interval()
