"""Faults: EC2 has no capacity for a task's first choices (issue 11).

RunInstances refusals come from the emulator's capacity seam (bisonflow.local.ec2.capacity:
moto never refuses capacity). launch_task tries the task's instance types on Spot in order,
then On-Demand; a month whose first pools all refuse still runs, and launch_task's output
names each pool it tried and the code EC2 gave (the month's run under refusals is
test_faults_spot's, which carries this fault beside the Spot notice and the killed task).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bisonflow.aws import AwsTransientError
from bisonflow.local.ec2 import capacity as ec2_capacity
from bisonflow.local.faults import execution_instances
from bisonflow.local.runtime import LocalRuntime
from bisonflow.steps.ec2_tasks import ON_DEMAND, ON_DEMAND_FALLBACK, SPOT, launch_pools
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
