"""AWS::CloudWatch::Alarm (a metric alarm) through CloudWatch's API, for a target whose
CloudFormation has no model for it (moto 5.2.5's models only AWS::CloudWatch::Dashboard).

PutMetricAlarm creates an alarm or, for an existing name, "its previous configuration is
completely overwritten" (CloudWatch API Reference, PutMetricAlarm), as CloudFormation's update
replaces every property; the properties keep CloudFormation's names, which are the API's. What
CloudWatch then reports is compared with what was asked, so a setting the target ignored fails
the deployment instead of leaving an alarm that watches something else. Only the single-metric
form is applied (no `Metrics` math, no percentile statistics): the template uses no more.
"""

from __future__ import annotations

from typing import Any

from bisonflow.deploy.emulated.properties import UnsupportedProperty, require_known
from bisonflow.deploy.target import Target

#: The alarm's properties this module applies, each with how its value is sent: numbers come
#: from the template as numbers or strings (CloudFormation accepts both), the API takes typed.
SETTINGS: dict[str, Any] = {
    "AlarmName": str,
    "AlarmDescription": str,
    "Namespace": str,
    "MetricName": str,
    "Dimensions": list,
    "Statistic": str,
    "Unit": str,
    "Period": int,
    "EvaluationPeriods": int,
    "DatapointsToAlarm": int,
    "Threshold": float,
    "ComparisonOperator": str,
    "TreatMissingData": str,
    "ActionsEnabled": lambda value: str(value).lower() == "true",
    "AlarmActions": list,
    "OKActions": list,
    "InsufficientDataActions": list,
}
#: Lists whose order means nothing to CloudWatch, compared as sets.
_UNORDERED = ("Dimensions", "AlarmActions", "OKActions", "InsufficientDataActions")


def _comparable(key: str, value: Any) -> Any:
    if key in _UNORDERED:
        return sorted(
            tuple(sorted(v.items())) if isinstance(v, dict) else (str(v),) for v in value or []
        )
    return value


def put_metric_alarm(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """Create or overwrite the alarm; its Ref is its name, Fn::GetAtt Arn its ARN (the
    resource's return values, CloudFormation User Guide, AWS::CloudWatch::Alarm)."""
    require_known("AWS::CloudWatch::Alarm", p, SETTINGS)
    wanted = {key: SETTINGS[key](value) for key, value in p.items()}
    cloudwatch = target.client("cloudwatch")
    cloudwatch.put_metric_alarm(**wanted)
    found = cloudwatch.describe_alarms(AlarmNames=[wanted["AlarmName"]], AlarmTypes=["MetricAlarm"])
    (alarm,) = found["MetricAlarms"] or [{}]
    ignored = sorted(
        key
        for key, value in wanted.items()
        if _comparable(key, alarm.get(key)) != _comparable(key, value)
    )
    if ignored:
        raise UnsupportedProperty(
            f"{wanted['AlarmName']}: the target did not apply {', '.join(ignored)}"
        )
    return {None: wanted["AlarmName"], "Arn": alarm["AlarmArn"]}


def delete_metric_alarm(target: Target, name: str) -> None:
    """The alarm, by its name (its Ref), with the stack."""
    target.client("cloudwatch").delete_alarms(AlarmNames=[name])
