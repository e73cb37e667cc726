"""Callback tasks on EC2: launch an instance for a task, and clean up after an execution.

The task's launch template carries the whole boot script (definitions/bisonflow.cfn.yaml,
Mappings.Task.BootScript). Every value the boot script needs reaches the instance as an
instance tag, which it reads through IMDSv2: the task (TAG_TASK) and the S3 URI of its spec
(TAG_SPEC) per run, the deployment's image, repository and log group per stack. All of them,
and the stack tag the IAM conditions on ec2:TerminateInstances test, are passed by RunInstances
itself: tags given at launch overwrite the launch template's ("Any additional parameters that
you specify for the new instance overwrite the corresponding parameters included in the launch
template", EC2 API reference, RunInstances, LaunchTemplate). The task token is stored as an
SSM SecureString and the spec names only the parameter, so the token is never in userdata,
tags or the spec. Instances are also tagged with the execution name and the step so the
cleanup step can find what an execution launched.

A callback step is retried on a new instance when its task was lost (the state machine's
Retry on States.HeartbeatTimeout / TaskInstanceLost). Before such a relaunch, launch()
terminates the step's earlier instances that are still alive: a task that stopped
heartbeating may sit on a running instance (a killed or hung container, a stopped process),
and two copies of one task must never write the same outputs, nor the old one keep costing.

Capacity: a Spot pool (an instance type in a market) may have no room. RunInstances then
fails with a capacity code (EC2 API Reference, "Error codes for the Amazon EC2 API":
InsufficientInstanceCapacity, InsufficientCapacity, UnfulfillableCapacity, SpotMaxPriceTooLow,
MaxSpotInstanceCountExceeded), and launch() tries the task's next instance type
(`<TASK>_INSTANCE_TYPES`, the stack's `<Task>InstanceType` then `<Task>FallbackInstanceTypes`),
then the same types On-Demand if TASK_ON_DEMAND_FALLBACK allows; the launch templates name no
market, since RunInstances can ask for Spot but cannot turn a template's Spot back into
On-Demand (RunInstances, InstanceMarketOptions: MarketType `spot` or `capacity-block`). Each
pool is asked once: botocore's standard retry mode would resend InsufficientInstanceCapacity
(a 500) up to five times with backoff, about 15 s per refused pool and past the Lambda's 60 s
for four pools, and EC2's own advice for it includes "different instance types". When every
pool refuses, launch() raises AwsTransientError naming each pool and its code, which the
state machine retries with backoff (capacity "can shift frequently", EC2 User Guide,
"Troubleshoot instance launch issues", Insufficient instance capacity).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bisonflow import aws, config
from bisonflow.aws import AwsTransientError
from bisonflow.config import ConfigError
from bisonflow.layout import MonthLayout
from bisonflow.steps.taskspec import SPEC_CLASSES, TOKEN_PARAMETER_ROOT, AnyTaskSpec, TaskSpec

TAG_EXECUTION = "bisonflow:execution"
TAG_TASK = "bisonflow:task"
TAG_STEP = "bisonflow:step"
#: The S3 URI of the task spec; the boot script exports it as TASK_SPEC_URI.
TAG_SPEC = "bisonflow:spec"
#: Which attempt of the step the instance runs ($$.State.RetryCount: 0 first).
TAG_ATTEMPT = "bisonflow:attempt"
#: The stack that launched the instance; the roles may terminate only their stack's instances.
TAG_STACK = "bisonflow:stack"
#: The version of the SSM parameter holding this attempt's token (PutParameter's Version): the
#: boot script reports a task that died unreported only while the token is still this one
#: (tasks.runner.report_unreported), never a later attempt's.
TAG_TOKEN_VERSION = "bisonflow:token-version"
#: Deployment tags the boot script reads, each from the launch Lambda's environment variable.
DEPLOYMENT_TAGS = {
    TAG_STACK: "STACK_NAME",
    "bisonflow:image": "TASK_IMAGE",  # empty: build the image on the instance
    "bisonflow:repository": "TASK_REPOSITORY_URL",
    "bisonflow:log-group": "TASK_LOG_GROUP",
}
#: Of DEPLOYMENT_TAGS, those whose value may be empty.
OPTIONAL_DEPLOYMENT_TAGS = ("bisonflow:image",)
#: The state that launches each task, as named in statemachines/bison_workflow.asl.json.
TASK_STEPS = {task: spec_class.step for task, spec_class in SPEC_CLASSES.items()}
LIVE_STATES = ("pending", "running", "stopping", "stopped")
#: RunInstances' markets: InstanceMarketOptions.MarketType `spot`, or none (On-Demand).
SPOT, ON_DEMAND = "spot", "on-demand"
#: RunInstances error codes that mean "this pool has no room now": the next pool is tried.
CAPACITY_ERRORS = frozenset(
    {
        "InsufficientInstanceCapacity",
        "InsufficientCapacity",
        "UnfulfillableCapacity",
        "SpotMaxPriceTooLow",
        "MaxSpotInstanceCountExceeded",
    }
)
#: Graviton (ARM) instance types, as the stack's instance type parameters allow: the task AMI
#: is Ubuntu's arm64 image.
ARM_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9]*g[a-z]*\.[a-z0-9]+$")
ON_DEMAND_FALLBACK = "TASK_ON_DEMAND_FALLBACK"


def task_spec(task: str, layout: MonthLayout, execution: str, force: bool = False) -> AnyTaskSpec:
    """The spec of `task` for this run (bisonflow.steps.taskspec: its inputs, outputs and
    settings); every key is in the BISON bucket. `force` is the workflow's."""
    spec_class = SPEC_CLASSES.get(task)
    if spec_class is None:
        raise ValueError(f"unknown task {task!r}; expected one of {sorted(SPEC_CLASSES)}")
    return spec_class.for_run(layout, execution, force)


def spec_key(spec: TaskSpec, layout: MonthLayout) -> str:
    return f"{layout.task_prefix}{spec.execution}/{spec.task}.json"


def deployment_tags() -> list[dict]:
    """The stack's tags of every task instance, from the launch Lambda's environment."""
    tags = []
    for key, variable in DEPLOYMENT_TAGS.items():
        value = os.environ.get(variable, "").strip()
        if not value and key not in OPTIONAL_DEPLOYMENT_TAGS:
            raise ConfigError(f"environment variable {variable} is not set")
        tags.append({"Key": key, "Value": value})
    return tags


def instance_tags(
    task: str,
    layout: MonthLayout,
    execution: str,
    spec_uri: str,
    attempt: int = 0,
    token_version: int = 1,
) -> list[dict]:
    """The per-run tags of a task instance (launch() adds the deployment's). `token_version`
    is the Version PutParameter gave the stored token (1 for a parameter's first write)."""
    return [
        {"Key": TAG_EXECUTION, "Value": execution},
        {"Key": TAG_STEP, "Value": TASK_STEPS[task]},
        {"Key": TAG_TASK, "Value": task},
        {"Key": TAG_SPEC, "Value": spec_uri},
        {"Key": TAG_ATTEMPT, "Value": str(attempt)},
        {"Key": "Name", "Value": f"bison-{task}-{layout.datestamp}"},
        {"Key": TAG_TOKEN_VERSION, "Value": str(token_version)},
    ]


@dataclass(frozen=True)
class Pool:
    """Where an instance can be launched: an instance type in a market (Spot or On-Demand)."""

    instance_type: str
    market: str

    def to_dict(self) -> dict[str, str]:
        return {"instance_type": self.instance_type, "market": self.market}


def launch_pools(task: str) -> list[Pool]:
    """The pools launch() tries for `task`, in order: each of `<TASK>_INSTANCE_TYPES` on Spot,
    then each On-Demand unless TASK_ON_DEMAND_FALLBACK is `false`."""
    variable = f"{task.upper()}_INSTANCE_TYPES"
    types = list(dict.fromkeys(t.strip() for t in os.environ.get(variable, "").split(",")))
    types = [t for t in types if t]
    if not types:
        raise ConfigError(f"environment variable {variable} is not set")
    wrong = [t for t in types if not ARM_INSTANCE_TYPE.match(t)]
    if wrong:
        raise ConfigError(
            f"{variable} names {', '.join(wrong)}: the task AMI is arm64, so every type must "
            "be a Graviton one (e.g. t4g.small)"
        )
    on_demand = os.environ.get(ON_DEMAND_FALLBACK, "true").strip().lower()
    if on_demand not in ("true", "false"):
        raise ConfigError(f"{ON_DEMAND_FALLBACK} must be true or false, got {on_demand!r}")
    markets = (SPOT, ON_DEMAND) if on_demand == "true" else (SPOT,)
    return [Pool(t, market) for market in markets for t in types]


@dataclass(frozen=True)
class Launched:
    instance_id: str
    spec_key: str
    replaced: list[str]  # earlier attempts' instances terminated before this launch
    pool: Pool  # where it runs
    refused: list[dict[str, str]]  # pools tried first: instance_type, market, code


def launch(
    task: str,
    layout: MonthLayout,
    execution: str,
    task_token: str,
    attempt: int = 0,
    force: bool = False,
) -> Launched:
    """Store the token, write the spec, end any earlier attempt's instance, start the task."""
    spec = task_spec(task, layout, execution, force)
    replaced = instances_of(execution, TASK_STEPS[task])  # a lost attempt's, or a redrive's
    if replaced:
        aws.client("ec2").terminate_instances(InstanceIds=replaced)
    pools = launch_pools(task)  # a configuration error fails before anything is stored
    key = spec_key(spec, layout)
    stored = aws.client("ssm").put_parameter(
        Name=spec.token_parameter,
        Value=task_token,
        Type="SecureString",
        Overwrite=True,
        Description=f"Step Functions task token of {task} in execution {execution}",
    )
    aws.client("s3").put_object(
        Bucket=spec.bucket, Key=key, Body=spec.to_json().encode(), ContentType="application/json"
    )
    # All tags, the deployment's too: these replace the launch template's instance tags.
    tags = deployment_tags() + instance_tags(
        task, layout, execution, f"s3://{spec.bucket}/{key}", attempt, stored["Version"]
    )
    request = {
        "LaunchTemplate": {"LaunchTemplateId": config.launch_template(task), "Version": "$Latest"},
        "MinCount": 1,
        "MaxCount": 1,
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
    instance_id, pool, refused = run_in_first_free_pool(task, request, pools)
    return Launched(instance_id, key, replaced, pool, refused)


def launch_client() -> Any:
    """The EC2 client RunInstances is sent with: each pool is asked once, without botocore's
    retries (see the module docstring). One per endpoint, as bisonflow.aws caches its own."""
    return _launch_client(aws.region(), os.environ.get("AWS_ENDPOINT_URL", ""))


@cache
def _launch_client(region: str, endpoint: str) -> Any:
    return boto3.client("ec2", region_name=region, config=Config(retries={"max_attempts": 1}))


def run_in_first_free_pool(
    task: str, request: dict[str, Any], pools: list[Pool]
) -> tuple[str, Pool, list[dict[str, str]]]:
    """RunInstances in each pool in turn until one has room: (instance id, its pool, the
    pools that refused first with their codes). Any other error is raised as it comes."""
    ec2 = launch_client()
    refused: list[dict[str, str]] = []
    for pool in pools:
        market = {"InstanceMarketOptions": {"MarketType": SPOT}} if pool.market == SPOT else {}
        try:
            response = ec2.run_instances(**request, InstanceType=pool.instance_type, **market)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code not in CAPACITY_ERRORS:
                raise
            refused.append({**pool.to_dict(), "code": code})
            continue
        return response["Instances"][0]["InstanceId"], pool, refused
    tried = "; ".join(f"{r['instance_type']} {r['market']}: {r['code']}" for r in refused)
    raise AwsTransientError(
        f"no EC2 capacity for {task} in any of its {len(pools)} pools ({tried}); "
        f"set {task.upper()}_INSTANCE_TYPES (the stack's instance type parameters) to more "
        f"types or {ON_DEMAND_FALLBACK}=true to widen the choice"
    )


def instances_of(execution: str, step: str | None = None) -> list[str]:
    """Instances the execution launched (for `step` only, if given) not yet terminated."""
    filters = [
        {"Name": f"tag:{TAG_EXECUTION}", "Values": [execution]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    if step is not None:
        filters.append({"Name": f"tag:{TAG_STEP}", "Values": [step]})
    pages = aws.client("ec2").get_paginator("describe_instances").paginate(Filters=filters)
    return [
        instance["InstanceId"]
        for page in pages
        for reservation in page["Reservations"]
        for instance in reservation["Instances"]
    ]


def cleanup(execution: str) -> tuple[list[str], int]:
    """Terminate the execution's instances and delete its stored task tokens."""
    instance_ids = instances_of(execution)
    if instance_ids:
        aws.client("ec2").terminate_instances(InstanceIds=instance_ids)
    ssm = aws.client("ssm")
    names = [
        p["Name"]
        for page in ssm.get_paginator("get_parameters_by_path").paginate(
            Path=f"{TOKEN_PARAMETER_ROOT}/{execution}", Recursive=True
        )
        for p in page["Parameters"]
    ]
    for start in range(0, len(names), 10):
        ssm.delete_parameters(Names=names[start : start + 10])
    return instance_ids, len(names)
