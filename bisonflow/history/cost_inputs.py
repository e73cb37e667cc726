"""What `bisonflow.history.cost.estimate` needs besides the history: the template's configuration,
the functions' REPORT lines and the Data API's statement durations.

Kept apart from `bisonflow.history.cost` so that module stays pure (history and numbers in, lines
out) and tests can give it recorded executions; this one reads the template and calls AWS
(or the local emulator: boto3 honours AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bisonflow.deploy import cfn_template
from bisonflow.history.cost import (
    CostEstimate,
    Prices,
    estimate,
    lambda_function_names,
    statement_ids,
)

__all__ = [
    "estimate_execution",
    "execution_cost",
    "function_configuration",
    "history_estimate",
    "task_instance_types",
]


def _suffix(name: Any) -> str | None:
    """`check_gbif` from `!Sub "${AWS::StackName}-check_gbif"` (names are stack-prefixed)."""
    text = name.get("Fn::Sub") if isinstance(name, dict) else name
    return str(text).rsplit("-", 1)[-1] if text else None


def function_configuration() -> dict[str, tuple[int, str]]:
    """Function short name -> (MemorySize MB, architecture), as the template deploys them."""
    found: dict[str, tuple[int, str]] = {}
    for resource in cfn_template.template()["Resources"].values():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource.get("Properties", {})
        name = _suffix(props.get("FunctionName"))
        if name:
            architecture = (props.get("Architectures") or ["x86_64"])[0]
            found[name] = (int(props.get("MemorySize", 128)), str(architecture))
    return found


def task_instance_types(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Task -> instance type: the template's launch template per task, whose InstanceType
    names a parameter, at that parameter's default unless overridden (a stack deployed
    with other values passes them)."""
    template = cfn_template.template()
    found: dict[str, str] = {}
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::EC2::LaunchTemplate":
            continue
        props = resource.get("Properties", {})
        task = _suffix(props.get("LaunchTemplateName"))
        kind = props.get("LaunchTemplateData", {}).get("InstanceType")
        if isinstance(kind, dict) and "Ref" in kind:
            kind = cfn_template.parameter_default(kind["Ref"])
        if task and kind:
            found[task] = str(kind)
    return {**found, **(overrides or {})}


def _reports(logs: Any, names: Sequence[str], start_ms: int, end_ms: int) -> dict[str, list[str]]:
    """Each function's REPORT lines logged while the execution ran (a concurrent execution
    of the same stack would be counted too: the lines do not name the execution)."""
    found: dict[str, list[str]] = {}
    for name in names:
        kwargs: dict[str, Any] = {
            "logGroupName": f"/aws/lambda/{name}",
            "startTime": start_ms,
            "endTime": end_ms,
            "filterPattern": '"REPORT RequestId"',
        }
        lines: list[str] = []
        try:
            while True:
                page = logs.filter_log_events(**kwargs)
                lines += [e["message"] for e in page.get("events", [])]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        except (ClientError, BotoCoreError):
            continue  # no log group, or no right to read it: the history's timing is used
        if lines:
            found[name] = lines
    return found


def _durations(data: Any, ids: Sequence[str]) -> dict[str, float]:
    """Statement id -> seconds, from DescribeStatement's Duration (nanoseconds); statements
    the Data API no longer knows (it keeps them 24 hours) are left out."""
    found: dict[str, float] = {}
    for statement_id in ids:
        try:
            described = data.describe_statement(Id=statement_id)
        except (ClientError, BotoCoreError):
            continue
        if described.get("Duration", -1) >= 0:
            found[statement_id] = described["Duration"] / 1e9
    return found


def estimate_execution(
    description: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    logs: Any | None = None,
    data: Any | None = None,
    prices: Prices | None = None,
    instance_types: Mapping[str, str] | None = None,
) -> CostEstimate:
    """The estimate of one execution (DescribeExecution's answer and its history), with the
    REPORT lines and statement durations when `logs` / `data` clients are given."""
    reports = None
    if logs is not None:
        start = description["startDate"]
        stop = description.get("stopDate") or events[-1]["timestamp"]
        reports = _reports(
            logs,
            lambda_function_names(events),
            int(start.timestamp() * 1000),
            int(stop.timestamp() * 1000) + 1,
        )
    durations = _durations(data, statement_ids(events)) if data is not None else None
    return estimate(
        events,
        functions=function_configuration(),
        instance_types=task_instance_types(instance_types),
        prices=prices,
        reports=reports,
        statement_seconds=durations,
    )


def history_estimate(
    events: Sequence[Mapping[str, Any]], prices: Prices | None = None
) -> CostEstimate:
    """The estimate from the history alone, at the template's configuration (report.html's
    default when no logs or statement durations are at hand)."""
    return estimate(
        events,
        functions=function_configuration(),
        instance_types=task_instance_types(),
        prices=prices,
    )


def execution_cost(
    sfn: Any,
    execution_arn: str,
    endpoint_url: str | None = None,
    *,
    prices: Prices | None = None,
    instance_types: Mapping[str, str] | None = None,
) -> CostEstimate:
    """The estimate of an execution, read through the history commands' Step Functions client;
    CloudWatch Logs and the Data API are asked at the same endpoint (AWS_ENDPOINT_URL, e.g.
    the local runtime) and region. `bisonflow history` prints `format_estimate` of it."""
    import boto3

    from bisonflow.history.executions import history

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    region = sfn.meta.region_name
    return estimate_execution(
        sfn.describe_execution(executionArn=execution_arn),
        history(sfn, execution_arn),
        logs=boto3.client("logs", region_name=region, endpoint_url=endpoint),
        data=boto3.client("redshift-data", region_name=region, endpoint_url=endpoint),
        prices=prices,
        instance_types=instance_types,
    )
