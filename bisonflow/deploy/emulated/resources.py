"""Resources a target's CloudFormation cannot create, created through their service APIs.

A target names these types in its profile (bisonflow.deploy.target). The template is then
split: CloudFormation creates everything else, with each reference to an emulated resource
replaced by the ARN that resource will have (ARNs follow from names, region and account).
After the stack, each emulated resource is created with the template's own property values,
evaluated here (Ref, Fn::GetAtt, Fn::Sub, Fn::If, ... against the stack and its parameters).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.deploy.emulated.intrinsics import SUB_VARIABLE, Resolver, references
from bisonflow.deploy.emulated.service_apis import CREATORS, DELETERS, UnsupportedProperty
from bisonflow.deploy.target import Target


class EmulationError(RuntimeError):
    """The template uses something the emulated path cannot evaluate or create."""


# --- splitting the template --------------------------------------------------------------
def _depends(resource: dict[str, Any]) -> set[str]:
    depends = resource.get("DependsOn", [])
    return references(resource.get("Properties", {})) | set(
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
    if kind == "AWS::Lambda::Function" and "FunctionName" in props:
        return props["FunctionName"]
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
    if kind == "AWS::CloudWatch::Alarm" and "AlarmName" in props:
        return props["AlarmName"]
    raise EmulationError(f"{logical_id} ({kind}): its ARN cannot be known before it exists")


def _rewrite(node: Any, emulated: set[str], resources: dict[str, Any]) -> Any:
    """`node` with references to emulated resources replaced by their predicted values."""
    if isinstance(node, list):
        return [_rewrite(v, emulated, resources) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("Ref") in emulated:
        # A predicted value may itself refer to an emulated resource (an alias's function).
        return _rewrite(_predicted_ref(node["Ref"], resources), emulated, resources)
    if "Fn::GetAtt" in node and node["Fn::GetAtt"][0] in emulated:
        raise EmulationError(f"Fn::GetAtt {node['Fn::GetAtt']} of an emulated resource")
    if "Fn::Sub" in node:
        text, variables = (
            (node["Fn::Sub"], {}) if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"]
        )
        named = {n for n in SUB_VARIABLE.findall(text) if n in emulated and n not in variables}
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


# --- creating, reading and deleting the emulated resources --------------------------------
def delete(
    target: Target, stack_name: str, template: dict[str, Any], progress: Callable[[str], None]
) -> None:
    """Delete the emulated resources that outlive the stack, before the stack goes."""
    resolver = resolver_for(target, stack_name, template)
    for logical_id, resource in template["Resources"].items():
        deleter = DELETERS.get(resource["Type"])
        if deleter is None or resource["Type"] not in target.target_profile.emulated_types:
            continue
        key = str(resolver.value(_deletion_key(logical_id, template["Resources"])))
        try:
            deleter(target, key)
        except ClientError as exc:
            progress(f"  {logical_id}: {exc.response['Error'].get('Message', exc)}")
            continue
        progress(f"  {logical_id} ({resource['Type']}) deleted through its service API")


def _deletion_key(logical_id: str, resources: dict[str, Any]) -> Any:
    """What a deleter is given: the Ref value, or a layer's name (its ARN carries a version)."""
    resource = resources[logical_id]
    if resource["Type"] == "AWS::Lambda::LayerVersion":
        return resource["Properties"]["LayerName"]
    return _predicted_ref(logical_id, resources)


def stack_lookup(
    target: Target, resources: dict[str, Any], physical: dict[str, str]
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
        if (kind, attribute) == ("AWS::SQS::Queue", "QueueName"):
            return pid.rstrip("/").rsplit("/", 1)[-1]  # a queue's Ref is its URL, ending in it
        if (kind, attribute) == ("AWS::Events::Rule", "Arn"):
            return target.client("events").describe_rule(Name=pid.rsplit("/", 1)[-1])["Arn"]
        if (kind, attribute) == ("AWS::S3::Bucket", "Arn"):
            return f"{arn_prefix}:s3:::{pid}"
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
    from_stack = stack_lookup(target, resources, physical)

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
        try:
            created[logical_id] = CREATORS[kind](target, properties)
        except UnsupportedProperty as exc:
            raise EmulationError(f"{logical_id}: {exc}") from None
        progress(f"  {logical_id} ({kind}) applied through the {kind.split('::')[1]} API")
    return {k: str(v[None]) for k, v in created.items()}
