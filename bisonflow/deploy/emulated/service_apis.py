"""Creating and deleting, through its service API, each resource type a target's
CloudFormation may lack (bisonflow.deploy.emulated.resources), from the template's evaluated
properties (CloudWatch alarms in their own module, bisonflow.deploy.emulated.metric_alarm). Each
creator is idempotent (create, else update) and returns the resource's Ref value under None
and its Fn::GetAtt attributes by name."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import error_code
from bisonflow.deploy import definition
from bisonflow.deploy.emulated import metric_alarm
from bisonflow.deploy.emulated.properties import UnsupportedProperty
from bisonflow.deploy.emulated.properties import require_known as _require_known
from bisonflow.deploy.target import Target


def _exists_error(exc: ClientError) -> bool:
    code = error_code(exc)
    return code in ("ResourceConflictException", "ConflictException", "StateMachineAlreadyExists")


# --- Lambda: layer versions, functions, versions and aliases --------------------------------
#: Function properties UpdateFunctionConfiguration applies, each with the value Lambda gives
#: it when the template leaves it out (so an update resets it, as CloudFormation does).
FUNCTION_CONFIGURATION: dict[str, Any] = {
    "Description": "",
    "Runtime": None,
    "Handler": None,
    "Role": None,
    "Timeout": 3,
    "MemorySize": 128,
    "Environment": {"Variables": {}},
    "Layers": [],
    "VpcConfig": {"SubnetIds": [], "SecurityGroupIds": []},
}
#: Function properties UpdateFunctionCode applies (besides the code), with their defaults.
FUNCTION_CODE: dict[str, Any] = {"Architectures": ["x86_64"]}
#: Layer version properties besides LayerName and Content, as GetLayerVersion reports them unset.
LAYER_DEFAULTS: dict[str, Any] = {
    "Description": "",
    "CompatibleRuntimes": [],
    "CompatibleArchitectures": [],
    "LicenseInfo": "",
}
_S3_LOCATION = {"S3Bucket", "S3Key", "S3ObjectVersion"}
_VPC_KEYS = ("SubnetIds", "SecurityGroupIds")


def _code_sha256(target: Target, location: dict[str, Any]) -> str:
    """CodeSha256 as Lambda reports it (base64 of the SHA-256) of a package in S3."""
    version = {"VersionId": location["S3ObjectVersion"]} if "S3ObjectVersion" in location else {}
    body = target.client("s3").get_object(
        Bucket=location["S3Bucket"], Key=location["S3Key"], **version
    )["Body"]
    return base64.b64encode(hashlib.sha256(body.read()).digest()).decode()


def _layer_version(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """PublishLayerVersion, unless the newest version already has exactly these values: an
    unchanged release publishes nothing, as CloudFormation replaces nothing. Older versions
    stay, so function versions published on them keep working (an alias can roll back)."""
    _require_known("AWS::Lambda::LayerVersion", p, {"LayerName", "Content", *LAYER_DEFAULTS})
    _require_known("AWS::Lambda::LayerVersion Content", p["Content"], _S3_LOCATION)
    awslambda = target.client("lambda")
    wanted = {key: p.get(key, default) for key, default in LAYER_DEFAULTS.items()}
    listed = awslambda.list_layer_versions(LayerName=p["LayerName"])["LayerVersions"]
    if listed:
        newest = awslambda.get_layer_version(
            LayerName=p["LayerName"], VersionNumber=max(v["Version"] for v in listed)
        )
        unchanged = all(newest.get(k, d) == wanted[k] for k, d in LAYER_DEFAULTS.items())
        if unchanged and newest["Content"]["CodeSha256"] == _code_sha256(target, p["Content"]):
            return {None: newest["LayerVersionArn"], "LayerVersionArn": newest["LayerVersionArn"]}
    published = awslambda.publish_layer_version(
        LayerName=p["LayerName"],
        Content=p["Content"],
        **{key: value for key, value in wanted.items() if value},
    )
    return {None: published["LayerVersionArn"], "LayerVersionArn": published["LayerVersionArn"]}


def _function_value(config: dict[str, Any], key: str) -> Any:
    """GetFunctionConfiguration's `key` in the shape the template gives it."""
    if key == "Layers":
        return [layer["Arn"] for layer in config.get("Layers") or []]
    if key == "Environment":
        return {"Variables": (config.get("Environment") or {}).get("Variables", {})}
    if key == "VpcConfig":
        vpc = config.get("VpcConfig") or {}
        return {k: vpc.get(k, []) for k in _VPC_KEYS}
    return config.get(key, {**FUNCTION_CONFIGURATION, **FUNCTION_CODE}[key])


def _function_wanted(p: dict[str, Any]) -> dict[str, Any]:
    """Every configuration and code property, from the template or Lambda's default."""
    _require_known(
        "AWS::Lambda::Function",
        p,
        {"FunctionName", "Code", *FUNCTION_CONFIGURATION, *FUNCTION_CODE},
    )
    _require_known("AWS::Lambda::Function Code", p["Code"], _S3_LOCATION)
    _require_known("AWS::Lambda::Function VpcConfig", p.get("VpcConfig", {}), _VPC_KEYS)
    wanted = {**FUNCTION_CONFIGURATION, **FUNCTION_CODE, **p}
    # Lambda takes environment values as strings only (CloudFormation converts them).
    variables = wanted["Environment"].get("Variables", {})
    wanted["Environment"] = {"Variables": {k: str(v) for k, v in variables.items()}}
    wanted["VpcConfig"] = {k: wanted["VpcConfig"].get(k, []) for k in _VPC_KEYS}
    return wanted


def _function(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """CreateFunction, or on an existing function UpdateFunctionCode and
    UpdateFunctionConfiguration with only what differs: an unchanged function stays unchanged,
    so its next published version is the one it already has. Then every value is checked, so
    one the target ignores fails the deployment rather than passing unnoticed."""
    wanted = _function_wanted(p)
    name, code = p["FunctionName"], p["Code"]
    applied = [k for k in (*FUNCTION_CONFIGURATION, *FUNCTION_CODE) if wanted[k] is not None]
    awslambda = target.client("lambda")
    try:
        current = awslambda.get_function_configuration(FunctionName=name)
    except awslambda.exceptions.ResourceNotFoundException:
        awslambda.create_function(FunctionName=name, Code=code, **{k: wanted[k] for k in applied})
        awslambda.get_waiter("function_active_v2").wait(FunctionName=name)
    else:
        _update_function(target, current, wanted, applied)
    result = awslambda.get_function_configuration(FunctionName=name)
    ignored = [k for k in applied if _function_value(result, k) != wanted[k]]
    if ignored:
        raise UnsupportedProperty(f"{name}: the target did not apply {', '.join(ignored)}")
    return {None: name, "Arn": result["FunctionArn"]}


def _update_function(
    target: Target, current: dict[str, Any], wanted: dict[str, Any], applied: list[str]
) -> None:
    awslambda, name = target.client("lambda"), wanted["FunctionName"]
    code_changed = current["CodeSha256"] != _code_sha256(target, wanted["Code"])
    if code_changed or any(_function_value(current, k) != wanted[k] for k in FUNCTION_CODE):
        awslambda.update_function_code(
            FunctionName=name, **wanted["Code"], **{k: wanted[k] for k in FUNCTION_CODE}
        )
        awslambda.get_waiter("function_updated_v2").wait(FunctionName=name)
    changed = {
        k: wanted[k]
        for k in applied
        if k in FUNCTION_CONFIGURATION and _function_value(current, k) != wanted[k]
    }
    if changed:
        awslambda.update_function_configuration(FunctionName=name, **changed)
        awslambda.get_waiter("function_updated_v2").wait(FunctionName=name)


def _lambda_version(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """PublishVersion of the function as it is now, so after its layers are attached (Lambda
    returns the newest version instead when nothing changed since it)."""
    _require_known("AWS::Lambda::Version", p, {"FunctionName", "Description", "CodeSha256"})
    published = target.client("lambda").publish_version(**p)
    arn = published["FunctionArn"]
    return {None: arn, "FunctionArn": arn, "Version": published["Version"]}


def _lambda_alias(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    awslambda = target.client("lambda")
    args = {"FunctionName": p["FunctionName"], "Name": p["Name"]}
    try:
        alias = awslambda.create_alias(**args, FunctionVersion=str(p["FunctionVersion"]))
    except ClientError as exc:
        if not _exists_error(exc):
            raise
        alias = awslambda.update_alias(**args, FunctionVersion=str(p["FunctionVersion"]))
    return {None: alias["AliasArn"]}


#: EventInvokeConfig properties, each with the value Lambda reports for it when unset
#: (Lambda API Reference, PutFunctionEventInvokeConfig: at most 2 retries, 6 hours of age).
EVENT_INVOKE_SETTINGS: dict[str, Any] = {
    "MaximumRetryAttempts": 2,
    "MaximumEventAgeInSeconds": 21600,
    "DestinationConfig": {},
}


def _destinations(config: dict[str, Any]) -> dict[str, str]:
    """{"OnSuccess"/"OnFailure": destination ARN} of a DestinationConfig; empty ones dropped
    (GetFunctionEventInvokeConfig reports an unset destination as `{}`)."""
    return {
        condition: target["Destination"]
        for condition, target in (config or {}).items()
        if target.get("Destination")
    }


def _event_invoke_config(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """PutFunctionEventInvokeConfig on the function's version or alias: how Lambda retries
    an asynchronous invocation and where it sends the record of one that failed (Lambda
    Developer Guide, "Asynchronous invocation"). AWS's Put overwrites a configuration; moto
    5.2.5 appends a second one and keeps answering the first, so a configuration that
    differs is deleted first. What the target then reports is checked, so a setting it
    ignored fails the deployment."""
    _require_known(
        "AWS::Lambda::EventInvokeConfig",
        p,
        {"FunctionName", "Qualifier", *EVENT_INVOKE_SETTINGS},
    )
    _require_known(
        "AWS::Lambda::EventInvokeConfig DestinationConfig",
        p.get("DestinationConfig", {}),
        {"OnSuccess", "OnFailure"},
    )
    awslambda = target.client("lambda")
    where = {"FunctionName": p["FunctionName"], "Qualifier": str(p["Qualifier"])}
    wanted = {key: p.get(key, default) for key, default in EVENT_INVOKE_SETTINGS.items()}

    def applied(config: dict[str, Any]) -> bool:
        return all(
            config.get(k) == wanted[k] for k in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds")
        ) and _destinations(config.get("DestinationConfig", {})) == _destinations(
            wanted["DestinationConfig"]
        )

    try:
        current = awslambda.get_function_event_invoke_config(**where)
    except awslambda.exceptions.ResourceNotFoundException:
        current = None
    if current is None or not applied(current):
        if current is not None:
            awslambda.delete_function_event_invoke_config(**where)
        awslambda.put_function_event_invoke_config(**where, **wanted)
        if not applied(awslambda.get_function_event_invoke_config(**where)):
            raise UnsupportedProperty(
                f"{p['FunctionName']}:{p['Qualifier']}: the target did not apply the "
                "asynchronous invocation configuration"
            )
    return {None: f"{p['FunctionName']}:{p['Qualifier']}"}


# --- Step Functions, Scheduler, SNS, S3, SQS ----------------------------------------------
def _state_machine(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    sfn = target.client("stepfunctions")
    if "DefinitionS3Location" in p:
        location = p["DefinitionS3Location"]
        body = target.client("s3").get_object(Bucket=location["Bucket"], Key=location["Key"])
        text, source = body["Body"].read().decode(), f"s3://{location['Bucket']}/{location['Key']}"
    else:
        text, source = p["DefinitionString"], "DefinitionString"
    text = definition.substitute(text, p.get("DefinitionSubstitutions", {}), source)
    logging = p.get("LoggingConfiguration", {})
    settings: dict[str, Any] = {
        "definition": text,
        "roleArn": p["RoleArn"],
        "loggingConfiguration": {
            "level": logging.get("Level", "OFF"),
            "includeExecutionData": bool(logging.get("IncludeExecutionData", False)),
            "destinations": [
                {
                    "cloudWatchLogsLogGroup": {
                        "logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]
                    }
                }
                for d in logging.get("Destinations", [])
            ],
        },
        "tracingConfiguration": {"enabled": bool(p.get("TracingConfiguration", {}).get("Enabled"))},
    }
    arn = (
        f"arn:{target.partition}:states:{target.region_name}:{target.account_id}"
        f":stateMachine:{p['StateMachineName']}"
    )
    try:
        sfn.describe_state_machine(stateMachineArn=arn)
        sfn.update_state_machine(stateMachineArn=arn, **settings)
    except ClientError as exc:
        if error_code(exc) != "StateMachineDoesNotExist":
            raise
        arn = sfn.create_state_machine(
            name=p["StateMachineName"], type=p.get("StateMachineType", "STANDARD"), **settings
        )["stateMachineArn"]
    described = sfn.describe_state_machine(stateMachineArn=arn)
    return {
        None: arn,
        "Name": p["StateMachineName"],
        "StateMachineRevisionId": described.get("revisionId", ""),
    }


#: What makes a state machine revision: its definition and configuration.
REVISION_FIELDS = ("definition", "roleArn", "loggingConfiguration", "tracingConfiguration")


def _newest_state_machine_version(sfn: Any, machine: str) -> dict[str, Any] | None:
    """DescribeStateMachine of the machine's newest version (None before the first). Versions
    are numbered from 1 and never deleted here, so the first missing number ends the search."""
    newest = None
    for number in itertools.count(1):
        try:
            newest = sfn.describe_state_machine(stateMachineArn=f"{machine}:{number}")
        except sfn.exceptions.StateMachineDoesNotExist:
            return newest
    raise AssertionError("unreachable")


def _state_machine_version(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """PublishStateMachineVersion (as UpdateStateMachine with publish), unless the newest version
    already is the machine's current revision: AWS publishes one version per revision (the API
    is idempotent on it), and CloudFormation replaces this resource only when the revision
    changes (StateMachineRevisionId and Description: Update requires Replacement). Earlier
    versions are never deleted, as the template's UpdateReplacePolicy: Retain asks."""
    _require_known(
        "AWS::StepFunctions::StateMachineVersion",
        p,
        {"StateMachineArn", "StateMachineRevisionId", "Description"},
    )
    sfn = target.client("stepfunctions")
    machine = p["StateMachineArn"]
    current = sfn.describe_state_machine(stateMachineArn=machine)
    newest = _newest_state_machine_version(sfn, machine)
    if newest is not None and all(newest.get(k) == current.get(k) for k in REVISION_FIELDS):
        return {None: newest["stateMachineArn"], "Arn": newest["stateMachineArn"]}
    published = sfn.update_state_machine(
        stateMachineArn=machine,
        definition=current["definition"],
        publish=True,
        versionDescription=p.get("Description", ""),
    )
    arn = published["stateMachineVersionArn"]
    return {None: arn, "Arn": arn}


def _state_machine_alias(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    sfn = target.client("stepfunctions")
    routing = [
        {"stateMachineVersionArn": r["StateMachineVersionArn"], "weight": int(r["Weight"])}
        for r in p["RoutingConfiguration"]
    ]
    machine = routing[0]["stateMachineVersionArn"].rsplit(":", 1)[0]
    arn = f"{machine}:{p['Name']}"
    aliases = sfn.list_state_machine_aliases(stateMachineArn=machine)["stateMachineAliases"]
    if any(a["stateMachineAliasArn"] == arn for a in aliases):
        sfn.update_state_machine_alias(stateMachineAliasArn=arn, routingConfiguration=routing)
    else:
        arn = sfn.create_state_machine_alias(
            name=p["Name"], description=p.get("Description", ""), routingConfiguration=routing
        )["stateMachineAliasArn"]
    return {None: arn}


def _schedule(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    scheduler = target.client("scheduler")
    args = {
        key: p[key]
        for key in (
            "Name",
            "Description",
            "ScheduleExpression",
            "ScheduleExpressionTimezone",
            "State",
            "FlexibleTimeWindow",
            "Target",
        )
        if key in p
    }
    try:
        arn = scheduler.create_schedule(**args)["ScheduleArn"]
    except ClientError as exc:
        if not _exists_error(exc):
            raise
        arn = scheduler.update_schedule(**args)["ScheduleArn"]
    return {None: p["Name"], "Arn": arn}


def _topic_policy(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    for topic in p["Topics"]:
        target.client("sns").set_topic_attributes(
            TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(p["PolicyDocument"])
        )
    return {None: ",".join(p["Topics"])}


def _subscription(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    arn = target.client("sns").subscribe(
        TopicArn=p["TopicArn"], Protocol=p["Protocol"], Endpoint=p["Endpoint"]
    )["SubscriptionArn"]
    return {None: arn}


def _bucket_policy(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    target.client("s3").put_bucket_policy(
        Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"])
    )
    return {None: p["Bucket"]}


def _queue_policy(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    for queue in p["Queues"]:
        target.client("sqs").set_queue_attributes(
            QueueUrl=queue, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
        )
    return {None: ",".join(p["Queues"])}


def _lambda_permission(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    """A resource-policy statement on the function (or alias) letting a service invoke it.
    Its id follows from what it allows, so a redeploy finds it (ResourceConflictException)."""
    allowed = f"{p['Principal']} {p.get('SourceArn', '')} {p['Action']}"
    statement = "bisonflow-" + hashlib.sha256(allowed.encode()).hexdigest()[:20]
    args = {k: p[k] for k in ("FunctionName", "Action", "Principal", "SourceArn") if k in p}
    try:
        target.client("lambda").add_permission(StatementId=statement, **args)
    except ClientError as exc:
        if error_code(exc) != "ResourceConflictException":
            raise
    return {None: statement}


#: How each type this module can emulate is created (or updated) through its service API.
CREATORS: dict[str, Callable[[Target, dict[str, Any]], dict[str | None, Any]]] = {
    "AWS::Lambda::LayerVersion": _layer_version,
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::Version": _lambda_version,
    "AWS::Lambda::Alias": _lambda_alias,
    "AWS::Lambda::Permission": _lambda_permission,
    "AWS::Lambda::EventInvokeConfig": _event_invoke_config,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::StepFunctions::StateMachineVersion": _state_machine_version,
    "AWS::StepFunctions::StateMachineAlias": _state_machine_alias,
    "AWS::Scheduler::Schedule": _schedule,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SNS::Subscription": _subscription,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
    "AWS::CloudWatch::Alarm": metric_alarm.put_metric_alarm,
}


def _delete_layer(target: Target, layer_name: str) -> None:
    """Every version of the stack's layer: with the stack its functions are gone too."""
    awslambda = target.client("lambda")
    for page in awslambda.get_paginator("list_layer_versions").paginate(LayerName=layer_name):
        for version in page["LayerVersions"]:
            awslambda.delete_layer_version(LayerName=layer_name, VersionNumber=version["Version"])


def _delete_function(target: Target, name: str) -> None:
    """The function with its versions and aliases, as Lambda deletes them."""
    target.client("lambda").delete_function(FunctionName=name)


def _delete_state_machine(target: Target, ref: str) -> None:
    target.client("stepfunctions").delete_state_machine(stateMachineArn=ref)


def _delete_schedule(target: Target, ref: str) -> None:
    target.client("scheduler").delete_schedule(Name=ref)


#: How an emulated resource is deleted with the stack, by its Ref value (a layer, whose ARN
#: carries a version, by its name). The other emulated types go with what they belong to (a
#: function's versions, alias and asynchronous invocation configuration with the function, a
#: topic's policy with the topic, a machine's versions and aliases with the machine).
DELETERS: dict[str, Callable[[Target, str], None]] = {
    "AWS::Lambda::LayerVersion": _delete_layer,
    "AWS::Lambda::Function": _delete_function,
    "AWS::StepFunctions::StateMachine": _delete_state_machine,
    "AWS::Scheduler::Schedule": _delete_schedule,
    "AWS::CloudWatch::Alarm": metric_alarm.delete_metric_alarm,
}
