"""CloudFormation: create or update the stack through a change set, follow it, read outputs.

A change set shows what will change before anything does; an unchanged template and
parameters give an empty change set, reported as "no changes" rather than an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.deploy.target import Target

#: Stack statuses that end a wait, and which of them mean the operation worked.
SETTLED_OK = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE")
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")

#: Resource types that need CAPABILITY_IAM, and the property naming each explicitly (which
#: needs CAPABILITY_NAMED_IAM instead): CloudFormation API reference, CreateChangeSet,
#: Capabilities ("If you have IAM resources with custom names, you must specify
#: CAPABILITY_NAMED_IAM"; without it CloudFormation returns InsufficientCapabilities).
IAM_RESOURCE_NAMES = {
    "AWS::IAM::AccessKey": None,
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::UserToGroupAddition": None,
}


class DeployError(RuntimeError):
    """The stack could not be created, updated or deleted; the message says why."""


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str

    def line(self) -> str:
        replace = " (replacement)" if self.replacement == "True" else ""
        return f"  {self.action:<7} {self.logical_id:<32} {self.resource_type}{replace}"


def capabilities(template: Mapping[str, Any]) -> list[str]:
    """The IAM capability the template needs acknowledged ([] when it has no IAM resource)."""
    iam = [r for r in template.get("Resources", {}).values() if r["Type"] in IAM_RESOURCE_NAMES]
    if any(IAM_RESOURCE_NAMES[r["Type"]] in r.get("Properties", {}) for r in iam):
        return ["CAPABILITY_NAMED_IAM"]
    return ["CAPABILITY_IAM"] if iam else []


def stack_status(target: Target, stack_name: str) -> str | None:
    """The stack's status, or None if there is no such stack."""
    try:
        stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            return None
        raise
    return stacks[0]["StackStatus"] if stacks else None


def outputs(target: Target, stack_name: str) -> dict[str, str]:
    stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def deployed_parameters(target: Target, stack_name: str) -> dict[str, str]:
    """The deployed stack's parameter values ({} when there is no stack)."""
    if stack_status(target, stack_name) is None:
        return {}
    stacks = target.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}


def _wait_change_set(cfn: Any, stack_name: str, name: str) -> dict[str, Any] | None:
    """The described change set once created; None when it holds no changes."""
    while True:
        described = cfn.describe_change_set(StackName=stack_name, ChangeSetName=name)
        status = described["Status"]
        if status == "CREATE_COMPLETE":
            return described
        if status == "FAILED":
            reason = described.get("StatusReason", "")
            if any(marker in reason for marker in _NO_CHANGES):
                cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
                return None
            raise DeployError(f"change set {name} failed: {reason}")
        time.sleep(2)


def deployable_status(target: Target, stack_name: str) -> str | None:
    """The stack's status (None: no stack yet), or DeployError when no change set can be
    applied to it until it is destroyed; deploy asks before building anything."""
    status = stack_status(target, stack_name)
    if status == "ROLLBACK_COMPLETE":
        raise DeployError(
            f"stack {stack_name} is ROLLBACK_COMPLETE (its creation failed and cannot be "
            "updated); run `bisonflow destroy` and deploy again"
        )
    if status == "REVIEW_IN_PROGRESS":  # CreateChangeSet (CREATE) made it; nothing executed it
        raise DeployError(
            f"stack {stack_name} is REVIEW_IN_PROGRESS (an earlier deploy stopped after creating "
            "its first change set, so the stack has no resources); run `bisonflow destroy "
            f"--stack-name {stack_name}` and deploy again"
        )
    return status


def apply_change_set(
    target: Target,
    stack_name: str,
    template_body: str,
    parameters: Mapping[str, str],
    progress: Callable[[str], None],
    acknowledged: list[str],
) -> list[Change]:
    """Create or update `stack_name` through a change set; the changes made ([] if none).
    `acknowledged`: the template's capabilities() (CAPABILITY_NAMED_IAM for named roles)."""
    cfn = target.client("cloudformation")
    status = deployable_status(target, stack_name)
    change_type = "CREATE" if status is None else "UPDATE"
    name = f"bisonflow-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    every_parameter = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()] + [
        {"ParameterKey": k, "UsePreviousValue": True}
        for k in deployed_parameters(target, stack_name)
        if k not in parameters
    ]
    try:
        cfn.create_change_set(
            StackName=stack_name,
            ChangeSetName=name,
            ChangeSetType=change_type,
            TemplateBody=template_body,
            Parameters=every_parameter,
            Capabilities=acknowledged,
            Description="bisonflow deploy",
        )
    except ClientError as exc:
        # Some endpoints refuse an empty change set outright instead of failing it.
        if not any(marker in str(exc) for marker in _NO_CHANGES):
            raise
        progress(f"stack {stack_name}: no changes")
        return []
    described = _wait_change_set(cfn, stack_name, name)
    if described is None:
        progress(f"stack {stack_name}: no changes")
        return []
    changes = _resource_changes(described)
    if not changes and change_type == "UPDATE":
        cfn.delete_change_set(StackName=stack_name, ChangeSetName=name)
        _refuse_unlisted_parameter_changes(cfn, stack_name, described)
        progress(f"stack {stack_name}: no changes")
        return []
    progress(f"change set {name} ({change_type}), {len(changes)} resource changes:")
    for change in changes:
        progress(change.line())
    since = time.time() - 5
    cfn.execute_change_set(StackName=stack_name, ChangeSetName=name)
    final = wait(target, stack_name, progress, since)
    if final not in SETTLED_OK:
        raise DeployError(f"stack {stack_name} ended {final}; the events above say why")
    return changes


def _resource_changes(described: Mapping[str, Any]) -> list[Change]:
    return [
        Change(
            c["ResourceChange"].get("Action", "?"),
            c["ResourceChange"].get("LogicalResourceId", "?"),
            c["ResourceChange"].get("ResourceType", "?"),
            str(c["ResourceChange"].get("Replacement", "")),
        )
        for c in described.get("Changes", [])
        if "ResourceChange" in c
    ]


def _refuse_unlisted_parameter_changes(
    cfn: Any, stack_name: str, described: Mapping[str, Any]
) -> None:
    """An update with new parameter values but no resource change listed. AWS lists the
    resources a new parameter value modifies; an endpoint that lists none (moto 5.2.5) would
    drop the new values silently, and executing its change set fails inside its
    launch-template update. Say so instead of "no changes"."""
    wanted, deployed = _parameters(described), _parameters(_stack(cfn, stack_name))
    differing = sorted(k for k in wanted if wanted[k] != deployed.get(k))
    if differing:
        raise DeployError(
            f"stack {stack_name}: parameter(s) {', '.join(differing)} differ from the "
            "deployed values, but this endpoint's change set lists no resource change, so "
            "it cannot apply them; deploy into a fresh emulator (or a new --stack-name)"
        )


def _parameters(described: Mapping[str, Any]) -> dict[str, str]:
    return {
        p["ParameterKey"]: str(p.get("ResolvedValue", p.get("ParameterValue", "")))
        for p in described.get("Parameters") or []
    }


def _stack(cfn: Any, stack_name: str) -> dict[str, Any]:
    return cfn.describe_stacks(StackName=stack_name)["Stacks"][0]


def wait(target: Target, stack_name: str, progress: Callable[[str], None], since: float) -> str:
    """Print the stack's new events until it settles; its final status."""
    cfn = target.client("cloudformation")
    seen: set[str] = set()
    while True:
        try:
            events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
        except ClientError as exc:
            if "does not exist" in exc.response["Error"].get("Message", ""):
                return "DELETE_COMPLETE"
            raise
        for event in reversed(events):
            if event["EventId"] in seen or event["Timestamp"].timestamp() < since:
                continue
            seen.add(event["EventId"])
            reason = (
                f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
            )
            progress(
                f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<20} "
                f"{event['LogicalResourceId']} ({event.get('ResourceType', '')}){reason}"
            )
        status = stack_status(target, stack_name) or "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(3)


def delete(target: Target, stack_name: str, progress: Callable[[str], None]) -> None:
    if stack_status(target, stack_name) is None:
        raise DeployError(f"there is no stack {stack_name} in {target.region_name}")
    since = time.time() - 5
    target.client("cloudformation").delete_stack(StackName=stack_name)
    final = wait(target, stack_name, progress, since)
    if final != "DELETE_COMPLETE":
        raise DeployError(f"stack {stack_name} ended {final}; the events above say why")
