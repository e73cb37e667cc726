"""Faults: EC2 has no capacity for a task's first choices (issue 11).

RunInstances refusals come from the emulator's capacity seam (bisonflow.local.ec2_capacity:
moto never refuses capacity). launch_task tries the task's instance types on Spot in order,
then On-Demand; a month whose first pools all refuse still runs, and launch_task's output
names each pool it tried and the code EC2 gave.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import wait_for_end

from bisonflow.aws import AwsTransientError
from bisonflow.ec2_tasks import ON_DEMAND, ON_DEMAND_FALLBACK, SPOT, launch_pools
from bisonflow.executions import history
from bisonflow.local import ec2_capacity
from bisonflow.local.faults import execution_instances, wait_for_task
from bisonflow.local.runtime import LocalRuntime
from functions import launch_task

MONTH = "2029-11"
CALLBACK = "invoke.waitForTaskToken"


@pytest.fixture
def refusals() -> Iterator[None]:
    """Refusals last for one test only."""
    ec2_capacity.restore()
    yield
    ec2_capacity.restore()


def test_the_seam_is_installed_and_names_only_real_capacity_codes(runtime: LocalRuntime) -> None:
    for owner, attribute in ec2_capacity.PATCHED:
        assert owner.__dict__[attribute] is ec2_capacity.run_instances
    with pytest.raises(ValueError, match="InstanceLimitExceeded is not a capacity error"):
        ec2_capacity.refuse("t4g.micro", SPOT, "InstanceLimitExceeded")
    with pytest.raises(ValueError, match="market must be 'spot' or 'on-demand'"):
        ec2_capacity.refuse("t4g.micro", "reserved")


def test_pools_are_each_type_on_spot_then_on_demand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALC_STATS_INSTANCE_TYPES", "t4g.small, t4g.medium,,t4g.small")
    monkeypatch.setenv(ON_DEMAND_FALLBACK, "true")
    assert [(p.instance_type, p.market) for p in launch_pools("calc_stats")] == [
        ("t4g.small", SPOT),
        ("t4g.medium", SPOT),
        ("t4g.small", ON_DEMAND),
        ("t4g.medium", ON_DEMAND),
    ]
    monkeypatch.setenv(ON_DEMAND_FALLBACK, "false")
    assert [p.market for p in launch_pools("calc_stats")] == [SPOT, SPOT]
    monkeypatch.setenv("CALC_STATS_INSTANCE_TYPES", "t4g.small,m5.large")
    with pytest.raises(Exception, match="names m5.large: the task AMI is arm64"):
        launch_pools("calc_stats")


def test_when_every_pool_refuses_the_launch_fails_naming_each(
    aws_env: LocalRuntime, refusals: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retried by the state machine (AwsTransientError): capacity "can shift frequently"."""
    monkeypatch.setenv("ANNOTATE_RIIS_INSTANCE_TYPES", "t4g.micro,t4g.small")
    monkeypatch.setenv(ON_DEMAND_FALLBACK, "false")
    ec2_capacity.refuse("t4g.micro", SPOT, "InsufficientInstanceCapacity")
    ec2_capacity.refuse("t4g.small", SPOT, "MaxSpotInstanceCountExceeded")
    event = {"task": "annotate_riis", "month": "2026-05", "execution": "no-room", "task_token": "t"}
    with pytest.raises(AwsTransientError) as raised:
        launch_task.handler(event, None)
    assert str(raised.value).startswith(
        "no EC2 capacity for annotate_riis in any of its 2 pools "
        "(t4g.micro spot: InsufficientInstanceCapacity; "
        "t4g.small spot: MaxSpotInstanceCountExceeded)"
    )
    assert execution_instances(aws_env, "no-room") == []
    aws_env.clients["ssm"].delete_parameter(Name="/bisonflow/task-tokens/no-room/annotate_riis")


def test_a_month_runs_on_the_next_type_and_on_demand_when_spot_has_no_room(
    runtime: LocalRuntime, refusals: None
) -> None:
    """AnnotateRiis' first two Spot types refuse (a 500 and a 400 code): it runs on the third.
    Then every Spot pool of CalcStats refuses: it runs On-Demand on its first type. Deployed
    defaults: AnnotateRiis t4g.micro, t4g.small, m7g.medium; CalcStats t4g.small, t4g.medium,
    m7g.medium; On-Demand allowed. The pools change once AnnotateRiis runs (the two tasks
    share types), as capacity does."""
    ec2_capacity.refuse("t4g.micro", SPOT, "InsufficientInstanceCapacity")
    ec2_capacity.refuse("t4g.small", SPOT, "SpotMaxPriceTooLow")
    runtime.publish_snapshot(MONTH)
    arn = runtime.start_execution(MONTH)
    wait_for_task(runtime, arn.rsplit(":", 1)[1], "AnnotateRiis")
    ec2_capacity.restore()
    for kind in ("t4g.small", "t4g.medium", "m7g.medium"):
        ec2_capacity.refuse(kind, SPOT, "UnfulfillableCapacity")
    description = wait_for_end(runtime, arn, timeout=300)
    assert description["status"] == "SUCCEEDED", description.get("cause")

    launched = {}
    for event in history(runtime.clients["stepfunctions"], arn):
        details = event.get("taskSubmittedEventDetails", {})
        if event["type"] == "TaskSubmitted" and details.get("resource") == CALLBACK:
            payload = json.loads(details["output"])["Payload"]
            launched[payload["task"]] = payload
    annotate, stats = launched["annotate_riis"], launched["calc_stats"]
    assert (annotate["instance_type"], annotate["market"]) == ("m7g.medium", SPOT)
    assert annotate["refused"] == [
        {"instance_type": "t4g.micro", "market": SPOT, "code": "InsufficientInstanceCapacity"},
        {"instance_type": "t4g.small", "market": SPOT, "code": "SpotMaxPriceTooLow"},
    ]
    assert (stats["instance_type"], stats["market"]) == ("t4g.small", ON_DEMAND)
    assert [(r["instance_type"], r["market"]) for r in stats["refused"]] == [
        ("t4g.small", SPOT),
        ("t4g.medium", SPOT),
        ("m7g.medium", SPOT),
    ]
    assert {r["code"] for r in stats["refused"]} == {"UnfulfillableCapacity"}
    # The instances EC2 launched are those pools: their type, and a Spot lifecycle or none.
    instances = {i["InstanceId"]: i for i in execution_instances(runtime, description["name"])}
    for payload in (annotate, stats):
        instance = instances[payload["instance_id"]]
        assert instance["InstanceType"] == payload["instance_type"]
        assert instance.get("InstanceLifecycle", ON_DEMAND) == payload["market"]
