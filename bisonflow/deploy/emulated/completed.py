"""Properties a target's CloudFormation ignores on resources it does create, applied after it.

moto 5.2.5's CloudFormation creates `AWS::IAM::Role` but drops `ManagedPolicyArns`, so the
Lambda roles would run without the managed policies the template attaches (their logs and,
in a VPC, their network interfaces), and IAM enforcement would judge them by the wrong
policies. The target declares such gaps in its profile (TargetProfile.completed_properties);
the deploy applies each one through the service's own API with the template's values, so
the resource ends up as CloudFormation on AWS leaves it. An AWS account declares none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bisonflow.deploy.emulated.resources import EmulationError, resolver_for
from bisonflow.deploy.target import Target


def _role_managed_policies(target: Target, role_name: str, arns: list[str]) -> None:
    """Attach exactly `arns` to the role, as CloudFormation does on create and update."""
    iam = target.client("iam")
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
    attached = {p["PolicyArn"] for page in pages for p in page["AttachedPolicies"]}
    for arn in sorted(set(arns) - attached):
        iam.attach_role_policy(RoleName=role_name, PolicyArn=arn)
    for arn in sorted(attached - set(arns)):
        iam.detach_role_policy(RoleName=role_name, PolicyArn=arn)


#: (resource type, property) -> how to apply it, given the resource's Ref and the value.
APPLIERS: dict[tuple[str, str], Callable[[Target, str, Any], None]] = {
    ("AWS::IAM::Role", "ManagedPolicyArns"): _role_managed_policies,
}


def apply(
    target: Target,
    stack_name: str,
    template: dict[str, Any],
    completed: dict[str, list[str]],
    progress: Callable[[str], None],
    *,
    clear: bool = False,
) -> None:
    """Apply, for every resource of the stack, the properties its target ignored; with
    `clear`, take them off again before the stack is deleted (CloudFormation detaches a
    role's managed policies when it deletes the role; moto refuses to delete it instead)."""
    resolver = resolver_for(target, stack_name, template)
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind not in completed:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        for name in completed[kind]:
            applier = APPLIERS.get((kind, name))
            if applier is None:
                raise EmulationError(f"{logical_id}: no service-API path for {kind}.{name}")
            wanted = resource.get("Properties", {}).get(name, [])
            applier(
                target, resolver.value({"Ref": logical_id}), [] if clear else resolver.value(wanted)
            )
            done = "removed" if clear else "applied"
            progress(f"  {logical_id} ({kind}) {name} {done} through the {kind.split('::')[1]} API")
