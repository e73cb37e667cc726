"""Creating and deleting, through its service API, each resource type a target's
CloudFormation may lack (bisonflow.deploy.emulated), from the template's evaluated
properties. Each creator is idempotent (create, else update) and returns the resource's Ref
value under None and its Fn::GetAtt attributes by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.deploy import definition
from bisonflow.deploy.target import Target


def _exists_error(exc: ClientError) -> bool:
    code = exc.response["Error"]["Code"]
    return code in ("ResourceConflictException", "ConflictException", "StateMachineAlreadyExists")


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
        if exc.response["Error"]["Code"] != "StateMachineDoesNotExist":
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


def _state_machine_version(target: Target, p: dict[str, Any]) -> dict[str | None, Any]:
    # PublishStateMachineVersion, as UpdateStateMachine with the current definition.
    sfn = target.client("stepfunctions")
    current = sfn.describe_state_machine(stateMachineArn=p["StateMachineArn"])["definition"]
    published = sfn.update_state_machine(
        stateMachineArn=p["StateMachineArn"],
        definition=current,
        publish=True,
        versionDescription=p.get("Description", ""),
    )
    return {None: published["stateMachineVersionArn"]}


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


#: How each type this module can emulate is created (or updated) through its service API.
CREATORS: dict[str, Callable[[Target, dict[str, Any]], dict[str | None, Any]]] = {
    "AWS::Lambda::Alias": _lambda_alias,
    "AWS::StepFunctions::StateMachine": _state_machine,
    "AWS::StepFunctions::StateMachineVersion": _state_machine_version,
    "AWS::StepFunctions::StateMachineAlias": _state_machine_alias,
    "AWS::Scheduler::Schedule": _schedule,
    "AWS::SNS::TopicPolicy": _topic_policy,
    "AWS::SNS::Subscription": _subscription,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::SQS::QueuePolicy": _queue_policy,
}


def _delete_state_machine(target: Target, ref: str) -> None:
    target.client("stepfunctions").delete_state_machine(stateMachineArn=ref)


def _delete_schedule(target: Target, ref: str) -> None:
    target.client("scheduler").delete_schedule(Name=ref)


#: How an emulated resource is deleted with the stack, by its Ref value. The other emulated
#: types go with what they belong to (a function's alias with the function, a topic's policy
#: with the topic, a machine's versions and aliases with the machine).
DELETERS: dict[str, Callable[[Target, str], None]] = {
    "AWS::StepFunctions::StateMachine": _delete_state_machine,
    "AWS::Scheduler::Schedule": _delete_schedule,
}
