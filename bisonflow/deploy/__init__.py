"""Deploy the workflow with one command: artifacts, then the stack through a change set.

`deploy` builds the Lambda packages and the layer (bisonflow.packaging), uploads them and the
ASL to the artifact bucket, and creates or updates the stack from
definitions/bisonflow.cfn.yaml. On a target whose CloudFormation lacks some resource types
(its TargetProfile says which), those resources are created through their service APIs with
the template's values (bisonflow.deploy.emulated). `destroy` deletes the stack.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bisonflow import cfn_template
from bisonflow.deploy import artifacts, emulated, iam_policy, stack
from bisonflow.deploy.stack import DeployError
from bisonflow.deploy.target import Target

DEFAULT_STACK_NAME = "bisonflow"

__all__ = [
    "DEFAULT_STACK_NAME",
    "DeployError",
    "Deployed",
    "Target",
    "deploy",
    "destroy",
    "stack_outputs",
]


@dataclass(frozen=True)
class Deployed:
    stack_name: str
    outputs: dict[str, str]
    changes: int  # resource changes CloudFormation made (0: no changes)


def release_id(prefix: str, parameters: Mapping[str, str]) -> str:
    """Changes when the code or any setting does, so Lambdas and the machine get new versions."""
    text = json.dumps({"artifacts": prefix, "parameters": dict(sorted(parameters.items()))})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def deploy(
    target: Target,
    stack_name: str,
    parameters: Mapping[str, str],
    progress: Callable[[str], None] = print,
) -> Deployed:
    """Create or update `stack_name` with the template's `parameters` (artifacts added here)."""
    template = cfn_template.template()
    broad = iam_policy.violations(template)
    if broad:
        raise DeployError("the template grants more than least privilege: " + "; ".join(broad))
    known = template["Parameters"]
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise DeployError(f"unknown template parameters: {', '.join(unknown)}")
    profile = target.target_profile
    progress(f"building the Lambda packages and the layer ({profile.lambda_layer})")
    uploaded = artifacts.upload(target, artifacts.build(profile.lambda_layer), progress)
    values = {
        **parameters,
        "ArtifactBucket": uploaded.bucket,
        "ArtifactPrefix": uploaded.prefix,
    }
    # An update keeps the deployed values of parameters not given; the release covers them.
    defaults = {k: str(spec["Default"]) for k, spec in known.items() if "Default" in spec}
    effective = {**defaults, **stack.deployed_parameters(target, stack_name), **values}
    values["Release"] = release_id(
        uploaded.prefix, {k: v for k, v in effective.items() if k != "Release"}
    )

    body = cfn_template.template_text()
    order: list[str] = []
    if profile.emulated_types or profile.skipped_types:
        kept, order = emulated.split(template, profile.emulated_types, tuple(profile.skipped_types))
        body = json.dumps(kept)  # CloudFormation reads JSON as well as YAML
        for kind, reason in profile.skipped_types.items():
            progress(f"not created on this target: {kind} ({reason})")
    changes = stack.apply_change_set(target, stack_name, body, values, progress)
    if order:
        emulated.create(target, stack_name, template, order, progress)
    return Deployed(stack_name, stack_outputs(target, stack_name), len(changes))


def stack_outputs(target: Target, stack_name: str) -> dict[str, str]:
    """The stack's outputs; evaluated from the template where the target reports none
    (moto's CloudFormation keeps no outputs for a stack made through a change set)."""
    found = stack.outputs(target, stack_name)
    template = cfn_template.template()
    if not found and template.get("Outputs"):
        found = emulated.outputs(target, stack_name, template)
    return found


def destroy(target: Target, stack_name: str, progress: Callable[[str], None] = print) -> None:
    """Delete the stack (the BISON bucket is retained: it holds the published data)."""
    if stack.stack_status(target, stack_name) is not None and target.target_profile.emulated_types:
        emulated.delete(target, stack_name, cfn_template.template(), progress)
    stack.delete(target, stack_name, progress)
