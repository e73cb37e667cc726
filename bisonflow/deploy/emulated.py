"""Resources a target's CloudFormation cannot create, created through their service APIs.

A target names these types in its profile (bisonflow.deploy.target). The template is then
split: CloudFormation creates everything else, with each reference to an emulated resource
replaced by the ARN that resource will have (ARNs follow from names, region and account).
After the stack, each emulated resource is created with the template's own property values,
evaluated here (Ref, Fn::GetAtt, Fn::Sub, Fn::If, ... against the stack and its parameters).
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.deploy import definition
from bisonflow.deploy.target import Target

NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


class EmulationError(RuntimeError):
    """The template uses something the emulated path cannot evaluate or create."""


# --- splitting the template --------------------------------------------------------------
def _references(node: Any) -> set[str]:
    """Logical ids (and parameters) a property tree refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node and isinstance(node["Ref"], str):
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            found.add(target[0] if isinstance(target, list) else target.split(".")[0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            found |= {name.split(".")[0] for name in _SUB_VARIABLE.findall(text)}
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def _depends(resource: dict[str, Any]) -> set[str]:
    depends = resource.get("DependsOn", [])
    return _references(resource.get("Properties", {})) | set(
        [depends] if isinstance(depends, str) else depends
    )


def creation_order(resources: dict[str, Any], logical_ids: set[str]) -> list[str]:
    """`logical_ids` ordered so that each comes after the others it refers to."""
    order: list[str] = []

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if logical_id in order:
            return
        if logical_id in path:
            raise EmulationError(f"circular reference: {' -> '.join((*path, logical_id))}")
        for dependency in sorted(_depends(resources[logical_id]) & logical_ids):
            visit(dependency, (*path, logical_id))
        order.append(logical_id)

    for logical_id in sorted(logical_ids):
        visit(logical_id, ())
    return order


def _predicted_ref(logical_id: str, resources: dict[str, Any]) -> Any:
    """The Ref value an emulated resource will have, as an expression CloudFormation resolves."""
    resource = resources[logical_id]
    kind, props = resource["Type"], resource.get("Properties", {})
    if kind == "AWS::Lambda::Alias":
        arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${F}:"
        return {"Fn::Sub": [arn + props["Name"], {"F": props["FunctionName"]}]}
    if kind == "AWS::StepFunctions::StateMachine":
        arn = "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${N}"
        return {"Fn::Sub": [arn, {"N": props["StateMachineName"]}]}
    if kind == "AWS::StepFunctions::StateMachineAlias":
        version = props["RoutingConfiguration"][0]["StateMachineVersionArn"]["Ref"]
        machine = resources[version]["Properties"]["StateMachineArn"]["Ref"]
        return {"Fn::Join": [":", [_predicted_ref(machine, resources), props["Name"]]]}
    if kind == "AWS::Scheduler::Schedule":
        return props["Name"]
    raise EmulationError(f"{logical_id} ({kind}): its ARN cannot be known before it exists")


def _rewrite(node: Any, emulated: set[str], resources: dict[str, Any]) -> Any:
    """`node` with references to emulated resources replaced by their predicted values."""
    if isinstance(node, list):
        return [_rewrite(v, emulated, resources) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("Ref") in emulated:
        return _predicted_ref(node["Ref"], resources)
    if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] in emulated:
        raise EmulationError(f"Fn::GetAtt {node['Fn::GetAtt']} of an emulated resource")
    if "Fn::Sub" in node:
        text, variables = (
            (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        )
        named = {n for n in _SUB_VARIABLE.findall(text) if n in emulated and n not in variables}
        if named:
            variables = {**variables, **{n: {"Ref": n} for n in named}}
            return {"Fn::Sub": [text, _rewrite(variables, emulated, resources)]}
    return {k: _rewrite(v, emulated, resources) for k, v in node.items()}


def split(
    template: dict[str, Any], emulated_types: tuple[str, ...], skipped_types: tuple[str, ...]
) -> tuple[dict[str, Any], list[str]]:
    """(what CloudFormation creates, emulated logical ids in creation order)."""
    resources = template["Resources"]
    emulated = {k for k, r in resources.items() if r["Type"] in emulated_types}
    skipped = {k for k, r in resources.items() if r["Type"] in skipped_types}
    kept = copy.deepcopy(template)
    kept["Resources"] = {}
    for logical_id, resource in resources.items():
        if logical_id in emulated | skipped:
            continue
        resource = _rewrite(resource, emulated, resources)
        if "DependsOn" in resource:
            depends = resource["DependsOn"]
            depends = [depends] if isinstance(depends, str) else depends
            resource["DependsOn"] = [d for d in depends if d not in emulated | skipped]
        kept["Resources"][logical_id] = resource
    kept["Outputs"] = _rewrite(template.get("Outputs", {}), emulated, resources)
    return kept, creation_order(resources, emulated)


# --- evaluating intrinsics -------------------------------------------------------------------
@dataclass
class Resolver:
    """Evaluates the template's intrinsic functions against a deployed stack."""

    template: dict[str, Any]
    parameters: dict[str, Any]
    pseudo: dict[str, str]
    lookup: Callable[[str, str | None], Any]  # (logical id, attribute or None for Ref)
    _conditions: dict[str, bool] = field(default_factory=dict)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            self._conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.lookup(name, None)

    def value(self, node: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(node, list):
            return [v for v in (self.value(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.lookup(logical_id, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return self.value(arg[0]).join(str(v) for v in self.value(arg[1]))
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if key == "Fn::Split":
                return self.value(arg[1]).split(self.value(arg[0]))
            if key == "Fn::Base64":
                return base64.b64encode(str(self.value(arg)).encode()).decode()
            if key == "Fn::FindInMap":
                mapping, first, second = (self.value(a) for a in arg)
                return self.template["Mappings"][mapping][first][second]
        resolved = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        values = {k: self.value(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in values:
                return str(values[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return str(self.lookup(logical_id, attribute))
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


# --- creating the emulated resources -----------------------------------------------------------
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


def delete(
    target: Target, stack_name: str, template: dict[str, Any], progress: Callable[[str], None]
) -> None:
    """Delete the emulated resources that outlive the stack, before the stack goes."""
    resolver = resolver_for(target, stack_name, template)
    for logical_id, resource in template["Resources"].items():
        deleter = DELETERS.get(resource["Type"])
        if deleter is None or resource["Type"] not in target.target_profile.emulated_types:
            continue
        ref = str(resolver.value(_predicted_ref(logical_id, template["Resources"])))
        try:
            deleter(target, ref)
        except ClientError as exc:
            progress(f"  {logical_id}: {exc.response['Error'].get('Message', exc)}")
            continue
        progress(f"  {logical_id} ({resource['Type']}) deleted through its service API")


def _latest_version(target: Target, function_name: str) -> str:
    pages = target.client("lambda").get_paginator("list_versions_by_function")
    numbers = [
        int(v["Version"])
        for page in pages.paginate(FunctionName=function_name)
        for v in page["Versions"]
        if v["Version"].isdigit()
    ]
    if not numbers:
        raise EmulationError(f"function {function_name} has no published version")
    return str(max(numbers))


def stack_lookup(
    target: Target, resources: dict[str, Any], physical: dict[str, str], resolver_ref: list
) -> Callable[[str, str | None], Any]:
    """Ref / Fn::GetAtt of the stack's own resources, read through the service APIs."""

    def lookup(logical_id: str, attribute: str | None) -> Any:
        if logical_id not in physical:
            raise EmulationError(f"{logical_id} is not in the stack")
        pid = physical[logical_id]
        if attribute is None:
            return pid
        kind = resources[logical_id]["Type"]
        arn_prefix = f"arn:{target.partition}"
        if (kind, attribute) == ("AWS::IAM::Role", "Arn"):
            return target.client("iam").get_role(RoleName=pid.rsplit("/", 1)[-1])["Role"]["Arn"]
        if (kind, attribute) == ("AWS::Logs::LogGroup", "Arn"):
            region, account = target.region_name, target.account_id
            return f"{arn_prefix}:logs:{region}:{account}:log-group:{pid}:*"
        if (kind, attribute) == ("AWS::SQS::Queue", "Arn"):
            attrs = target.client("sqs").get_queue_attributes(
                QueueUrl=pid, AttributeNames=["QueueArn"]
            )
            return attrs["Attributes"]["QueueArn"]
        if (kind, attribute) == ("AWS::Events::Rule", "Arn"):
            return target.client("events").describe_rule(Name=pid.rsplit("/", 1)[-1])["Arn"]
        if (kind, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"{arn_prefix}:s3:::{pid}"
        if (kind, attribute) == ("AWS::Lambda::Function", "Arn"):
            config = target.client("lambda").get_function_configuration(FunctionName=pid)
            return config["FunctionArn"]
        if (kind, attribute) == ("AWS::Lambda::Version", "Version"):
            resolver = resolver_ref[0]
            function = resolver.value(resources[logical_id]["Properties"]["FunctionName"])
            return _latest_version(target, function)
        raise EmulationError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not supported")

    return lookup


def stack_parameters(target: Target, stack_name: str, template: dict[str, Any]) -> dict[str, Any]:
    """The stack's parameter values as the template's intrinsics see them."""
    stack = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    values: dict[str, Any] = {}
    for parameter in stack.get("Parameters", []):
        key = parameter["ParameterKey"]
        value = parameter.get("ResolvedValue", parameter["ParameterValue"])
        kind = template["Parameters"].get(key, {}).get("Type", "String")
        values[key] = (
            value.split(",") if kind == "CommaDelimitedList" or kind.startswith("List") else value
        )
    for key, spec in template["Parameters"].items():
        if key not in values and "Default" in spec:
            values[key] = spec["Default"]
    return values


def resolver_for(
    target: Target,
    stack_name: str,
    template: dict[str, Any],
    created: dict[str, dict[str | None, Any]] | None = None,
) -> Resolver:
    """Intrinsics evaluated against the stack, the emulated resources created so far
    (`created`), and the predicted ARNs of the other emulated resources."""
    resources = template["Resources"]
    created = created if created is not None else {}
    physical = _physical_ids(target, stack_name)
    resolver_ref: list[Resolver] = []
    from_stack = stack_lookup(target, resources, physical, resolver_ref)

    def lookup(logical_id: str, attribute: str | None) -> Any:
        if logical_id in created:
            if attribute not in created[logical_id]:
                raise EmulationError(f"Fn::GetAtt {logical_id}.{attribute} is not supported")
            return created[logical_id][attribute]
        if logical_id not in physical and attribute is None and logical_id in resources:
            return resolver.value(_predicted_ref(logical_id, resources))
        return from_stack(logical_id, attribute)

    resolver = Resolver(
        template,
        stack_parameters(target, stack_name, template),
        {
            "AWS::Region": target.region_name,
            "AWS::AccountId": target.account_id,
            "AWS::Partition": target.partition,
            "AWS::StackName": stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        },
        lookup,
    )
    resolver_ref.append(resolver)
    return resolver


def _physical_ids(target: Target, stack_name: str) -> dict[str, str]:
    found = target.client("cloudformation").describe_stack_resources(StackName=stack_name)
    return {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in found["StackResources"]
        if "LogicalResourceId" in r  # moto lists a resource whose Condition is false, unnamed
    }


def outputs(target: Target, stack_name: str, template: dict[str, Any]) -> dict[str, str]:
    """The template's Outputs evaluated here, for a target that does not report them."""
    resolver = resolver_for(target, stack_name, template)
    return {
        key: str(resolver.value(output["Value"]))
        for key, output in template.get("Outputs", {}).items()
        if "Condition" not in output or resolver.condition(output["Condition"])
    }


def create(
    target: Target,
    stack_name: str,
    template: dict[str, Any],
    order: list[str],
    progress: Callable[[str], None],
) -> dict[str, str]:
    """Create (or update) the emulated resources in order; logical id -> Ref value."""
    resources = template["Resources"]
    created: dict[str, dict[str | None, Any]] = {}
    resolver = resolver_for(target, stack_name, template, created)
    for logical_id in order:
        resource = resources[logical_id]
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        kind = resource["Type"]
        if kind not in CREATORS:
            raise EmulationError(f"{logical_id}: no service-API path for {kind}")
        properties = resolver.value(resource.get("Properties", {}))
        created[logical_id] = CREATORS[kind](target, properties)
        progress(f"  {logical_id} ({kind}) applied through the {kind.split('::')[1]} API")
    return {k: str(v[None]) for k, v in created.items()}
