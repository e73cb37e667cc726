"""The service-API creators for what moto's CloudFormation lacks
(bisonflow.deploy.emulated.service_apis, metric_alarm): each applies its properties, refuses
by name what it cannot apply, and reads back what the target did, so a deploy never goes
half-way silently."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest

from bisonflow.deploy.emulated.service_apis import CREATORS, DELETERS, UnsupportedProperty
from bisonflow.local.deploy import emulator_target
from bisonflow.local.runtime import LocalRuntime


def test_a_lambda_property_the_service_api_path_cannot_apply_is_named(
    runtime: LocalRuntime,
) -> None:
    """Refused before any call, naming the property; and a value the target silently ignores
    on update (moto keeps a function's architecture) fails instead of deploying half-way."""
    assert runtime.emulator and runtime.deployment
    target = emulator_target(runtime.emulator)
    create_function = CREATORS["AWS::Lambda::Function"]
    code = {"S3Bucket": runtime.deployment.bucket, "S3Key": "archcheck/probe.zip"}
    with pytest.raises(UnsupportedProperty, match=r"AWS::Lambda::Function: SnapStart cannot"):
        create_function(target, {"FunctionName": "f", "Code": code, "SnapStart": {}})
    with pytest.raises(UnsupportedProperty, match=r"Function Code: ZipFile cannot"):
        create_function(target, {"FunctionName": "f", "Code": {"ZipFile": "def h(e, c): pass"}})

    s3, awslambda = runtime.clients["s3"], runtime.clients["lambda"]
    s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=_probe_zip())
    role = awslambda.get_function_configuration(
        FunctionName=f"{runtime.deployment.stack_name}-check_gbif"
    )["Role"]
    name = f"archcheck-{uuid.uuid4().hex[:8]}"
    spec = {"FunctionName": name, "Code": code, "Role": role, "Runtime": "python3.12"}
    spec |= {"Handler": "probe.handler", "Architectures": ["arm64"]}
    try:
        assert create_function(target, spec)[None] == name
        assert create_function(target, spec)[None] == name  # unchanged: nothing to apply
        with pytest.raises(UnsupportedProperty, match=f"{name}: the target did not apply Arch"):
            create_function(target, {**spec, "Architectures": ["x86_64"]})
    finally:
        awslambda.delete_function(FunctionName=name)
        s3.delete_object(Bucket=code["S3Bucket"], Key=code["S3Key"])


def test_an_asynchronous_invocation_configuration_is_replaced_not_added(
    runtime: LocalRuntime,
) -> None:
    """Put replaces a configuration on AWS (Lambda Developer Guide, "Asynchronous invocation
    configuration API"); moto appends one and keeps answering the first, so a changed one
    must still be what the function reports afterwards."""
    assert runtime.emulator and runtime.deployment
    target = emulator_target(runtime.emulator)
    configure = CREATORS["AWS::Lambda::EventInvokeConfig"]
    awslambda, topic = runtime.clients["lambda"], runtime.deployment.outputs["AlarmTopicArn"]
    where = {"FunctionName": f"{runtime.deployment.stack_name}-check_gbif", "Qualifier": "live"}
    with pytest.raises(UnsupportedProperty, match="EventInvokeConfig: Nope cannot be applied"):
        configure(target, {**where, "Nope": 1})
    spec = {**where, "MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600}
    spec |= {"DestinationConfig": {"OnFailure": {"Destination": topic}}}
    try:
        configure(target, spec)
        configure(target, spec)  # unchanged: nothing to apply
        configure(target, {**spec, "MaximumRetryAttempts": 0, "DestinationConfig": {}})
        now = awslambda.get_function_event_invoke_config(**where)
        assert now["MaximumRetryAttempts"] == 0 and now["MaximumEventAgeInSeconds"] == 3600
        assert not now["DestinationConfig"].get("OnFailure", {}).get("Destination")
    finally:
        awslambda.delete_function_event_invoke_config(**where)


def _probe_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("probe.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


def test_a_metric_alarm_is_overwritten_and_a_form_it_cannot_apply_is_named(
    runtime: LocalRuntime,
) -> None:
    """PutMetricAlarm overwrites an alarm of the same name (CloudWatch API Reference), so a
    redeploy with new values leaves one alarm with exactly them; CloudFormation's string
    numbers are sent typed; metric math (`Metrics`) is refused by name, not dropped."""
    assert runtime.emulator and runtime.deployment
    target = emulator_target(runtime.emulator)
    put = CREATORS["AWS::CloudWatch::Alarm"]
    name = f"alarmcheck-{uuid.uuid4().hex[:8]}"
    spec = {
        "AlarmName": name,
        "Namespace": "AWS/SQS",
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Dimensions": [{"Name": "QueueName", "Value": "q"}],
        "Statistic": "Maximum",
        "Period": "300",
        "EvaluationPeriods": 1,
        "Threshold": "0",
        "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": [runtime.deployment.outputs["AlarmTopicArn"]],
    }
    with pytest.raises(UnsupportedProperty, match="AWS::CloudWatch::Alarm: Metrics cannot be"):
        put(target, {**spec, "Metrics": [{"Id": "m", "Expression": "1"}]})
    cloudwatch = target.client("cloudwatch")
    try:
        created = put(target, spec)
        assert created[None] == name and created["Arn"].endswith(f":alarm:{name}")
        put(target, {**spec, "Threshold": 2, "TreatMissingData": "notBreaching"})
        (alarm,) = cloudwatch.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
        assert (alarm["Period"], alarm["Threshold"]) == (300, 2.0)
        assert alarm["TreatMissingData"] == "notBreaching"
    finally:
        DELETERS["AWS::CloudWatch::Alarm"](target, name)  # as destroy deletes it
    assert cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []
