"""Deploy the workflow with one command: artifacts, then the stack through a change set.

`deploy` builds the Lambda packages and the layer (bisonflow.deploy.packaging), uploads them and the
ASL to the artifact bucket, and creates or updates the stack from
definitions/bisonflow.cfn.yaml. On a target whose CloudFormation lacks some resource types
(its TargetProfile says which), those resources are created through their service APIs with
the template's values (bisonflow.deploy.emulated.resources). It refuses, before building anything, a
region GBIF does not serve or that is not the workgroup's (bisonflow.deploy.regions), and a
stack name too long for the SQL role's name; it returns the GRANT statements the SQL's
database user needs (bisonflow.deploy.database_grants). `destroy` deletes the stack and says
what it leaves behind (LEFT_BEHIND).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bisonflow.deploy import artifacts, cfn_template, database_grants, iam_policy, regions, stack
from bisonflow.deploy.emulated import completed
from bisonflow.deploy.emulated import resources as emulated
from bisonflow.deploy.stack import DeployError
from bisonflow.deploy.target import Target

DEFAULT_STACK_NAME = "bisonflow"
#: Parameters the deploy fills in itself: never asked of the user.
DERIVED_PARAMETERS = ("ArtifactBucket", "ArtifactPrefix", "Release")

#: What `destroy` does not delete, and why. Retained Lambda and state machine versions are not
#: among them: deleting a function deletes all its versions and aliases (Lambda API reference,
#: DeleteFunction), and deleting a state machine all its versions and aliases (Step Functions
#: API reference, DeleteStateMachine).
LEFT_BEHIND = (
    "the BISON bucket and its data (DeletionPolicy Retain: the published months)",
    "the artifact bucket bisonflow-artifacts-<account>-<region> (deploy made it, not the stack)",
    "in the Redshift database: the last month's tables, the external schema and its Glue "
    "database (the workflow's SQL made them; drop them as a superuser)",
    "the database user IAMR:<stack>-sql-<region> and its grants (an administrator made them)",
)

__all__ = [
    "DEFAULT_STACK_NAME",
    "DERIVED_PARAMETERS",
    "LEFT_BEHIND",
    "DeployError",
    "Deployed",
    "Target",
    "deploy",
    "destroy",
    "option_name",
    "stack_outputs",
]


def option_name(parameter: str) -> str:
    """A template parameter's command-line option, BucketName -> --bucket-name: `bisonflow
    deploy` takes one per parameter, and the deploy's own messages name them so."""
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", parameter).lower()


@dataclass(frozen=True)
class Deployed:
    stack_name: str
    outputs: dict[str, str]
    changes: int  # resource changes CloudFormation made (0: no changes)
    grants: list[str]  # what an administrator runs once in the database (database_grants)


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
    region = target.region_name
    # A stack no change set can update is named first: what to do about it comes before values.
    new_stack = stack.deployable_status(target, stack_name) is None
    deployed = stack.deployed_parameters(target, stack_name)
    defaults = {k: str(spec["Default"]) for k, spec in known.items() if "Default" in spec}
    regions.check(region, {**defaults, **deployed, **parameters})
    database_user = database_grants.database_user(database_grants.sql_role_name(stack_name, region))
    if new_stack:  # an existing stack keeps its deployed values
        _check_required(known, {**defaults, **parameters})
    profile = target.target_profile
    progress(f"building the Lambda packages and the layer ({profile.lambda_layer})")
    uploaded = artifacts.upload(target, artifacts.build(profile.lambda_layer), progress)
    values = {
        **parameters,
        "ArtifactBucket": uploaded.bucket,
        "ArtifactPrefix": uploaded.prefix,
    }
    # An update keeps the deployed values of parameters not given; the release covers them.
    effective = {**defaults, **deployed, **values}
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
    changes = stack.apply_change_set(
        target, stack_name, body, values, progress, stack.capabilities(template)
    )
    if profile.completed_properties:
        completed.apply(target, stack_name, template, profile.completed_properties, progress)
    if order:
        emulated.create(target, stack_name, template, order, progress)
    grants = database_grants.grant_statements(
        database_user, effective["RedshiftDatabase"], effective["RedshiftIamRole"]
    )
    return Deployed(stack_name, stack_outputs(target, stack_name), len(changes), grants)


def _check_required(known: Mapping[str, dict], given: Mapping[str, str]) -> None:
    """Every parameter without a Default has a value, before anything is built or created.

    CloudFormation refuses such a change set when it is created (CreateChangeSet answers
    ValidationError "Parameters: [A, B] must have values", as quoted in aws/serverless-
    application-model issue 1107 and lacework-alliances/aws-org-cf-lacework pull request 3);
    moto 5.2.5 creates it and fails only when it is executed, one parameter at a time, leaving
    a new stack REVIEW_IN_PROGRESS that the next deploy must destroy first (issue 12). Either
    way the artifacts would have been built and uploaded for nothing.
    """
    missing = [
        k
        for k, spec in known.items()
        if "Default" not in spec and k not in given and k not in DERIVED_PARAMETERS
    ]
    if missing:
        options = ", ".join(f"{option_name(k)} ({k})" for k in missing)
        raise DeployError(f"the template needs a value for {options}; give them to deploy")


def stack_outputs(target: Target, stack_name: str) -> dict[str, str]:
    """The stack's outputs; evaluated from the template where the target reports none
    (moto's CloudFormation keeps no outputs for a stack made through a change set)."""
    found = stack.outputs(target, stack_name)
    template = cfn_template.template()
    if not found and template.get("Outputs"):
        found = emulated.outputs(target, stack_name, template)
    return found


def destroy(target: Target, stack_name: str, progress: Callable[[str], None] = print) -> None:
    """Delete the stack; LEFT_BEHIND lists what stays."""
    profile = target.target_profile
    # A REVIEW_IN_PROGRESS stack never executed a change set: it has no resources to remove.
    if stack.stack_status(target, stack_name) not in (None, "REVIEW_IN_PROGRESS"):
        if profile.emulated_types:
            emulated.delete(target, stack_name, cfn_template.template(), progress)
        if profile.completed_properties:
            completed.apply(
                target,
                stack_name,
                cfn_template.template(),
                profile.completed_properties,
                progress,
                clear=True,
            )
    stack.delete(target, stack_name, progress)
