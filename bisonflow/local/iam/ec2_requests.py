"""EC2's authorization: RunInstances' several resources, tags at launch, PassRole, tag conditions.

Sources: Service Authorization Reference, "Actions, resources, and condition keys for Amazon
EC2" (RunInstances: image, instance, network-interface, security-group and subnet required;
volume, key-pair, launch-template and spot-instances-request when the launch involves them);
EC2 user guide, "Example policies to control access to the Amazon EC2 API", "Launch instances
(RunInstances)" (every resource is authorized, a created one as `<type>/*`; a launch template
is authorized as the launch-template resource, and the resources it names are authorized as
if the request named them); "Grant permission to tag resources during creation" (tags given at
launch are also authorized as ec2:CreateTags on each tagged resource, with ec2:CreateAction
set to RunInstances); IAM user guide, "Use an IAM role to grant permissions to applications
running on Amazon EC2 instances" (launching with an instance profile needs iam:PassRole on
its role; iam:PassedToService is ec2.amazonaws.com). Tags a call sets are aws:RequestTag/<k>
and aws:TagKeys; tags an existing resource has are aws:ResourceTag/<k> and ec2:ResourceTag/<k>
(read live from the emulator). Describe* actions take no resource: "*".
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models import ec2_backends
from moto.iam.models import iam_backends
from moto.ssm.models import ssm_backends

from bisonflow.local.iam.policies import PARTITION
from bisonflow.local.iam.requests import (
    Authorization,
    Operation,
    UnmappedOperation,
    maps,
    request_tag_context,
    tag_context,
)

#: Created resources are authorized under the ARN `<type>/*` (EC2 user guide, RunInstances).
NEW = "*"
#: The EC2 resource type of an id, by its prefix.
ID_TYPES = {
    "i-": "instance",
    "vol-": "volume",
    "sg-": "security-group",
    "subnet-": "subnet",
    "eni-": "network-interface",
    "ami-": "image",
    "lt-": "launch-template",
    "sir-": "spot-instances-request",
    "vpc-": "vpc",
    "snap-": "snapshot",
}
SSM_IMAGE_PREFIX = "resolve:ssm:"
#: AWS's public parameters (AMI ids among them), which no account's SSM can create.
PUBLIC_PARAMETERS = "/aws/service/"


def _backend(operation: Operation) -> Any:
    return ec2_backends[operation.account][operation.region]


def _arn(operation: Operation, kind: str, ident: str) -> str:
    account = "" if kind == "image" else operation.account  # AMIs' ARNs carry no account
    return f"arn:{PARTITION}:ec2:{operation.region}:{account}:{kind}/{ident}"


def _resource_type(ident: str) -> str:
    for prefix, kind in ID_TYPES.items():
        if ident.startswith(prefix):
            return kind
    raise UnmappedOperation(f"the emulator's IAM enforcement cannot tell the type of {ident!r}")


def _live_tags(operation: Operation, ident: str) -> dict[str, str]:
    found = _backend(operation).describe_tags(filters={"resource-id": [ident]})
    return {t["key"]: t["value"] for t in found}


def _existing_tag_context(operation: Operation, ident: str) -> dict[str, str | list[str]]:
    tags = _live_tags(operation, ident)
    return {**tag_context(tags, "aws:ResourceTag"), **tag_context(tags, "ec2:ResourceTag")}


@maps(
    "ec2",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "DescribeLaunchTemplates",
    "DescribeLaunchTemplateVersions",
    "DescribeImages",
    "DescribeSubnets",
    "DescribeSecurityGroups",
    "DescribeVpcs",
    "DescribeTags",
    "DescribeNetworkInterfaces",
)
def _describe(operation: Operation) -> list[Authorization]:
    """Describe* support no resource-level permissions: Resource "*" (SAR)."""
    return [Authorization(f"ec2:{operation.name}", "*")]


@maps("ec2", "TerminateInstances", "StopInstances", "StartInstances", "RebootInstances")
def _on_instances(operation: Operation) -> list[Authorization]:
    """Each instance's ARN, with its tags as they are now (aws:ResourceTag, ec2:ResourceTag)."""
    return [
        Authorization(
            f"ec2:{operation.name}",
            _arn(operation, "instance", ident),
            _existing_tag_context(operation, ident),
        )
        for ident in operation.params["InstanceIds"]
    ]


@maps("ec2", "CreateTags", "DeleteTags")
def _tagging(operation: Operation) -> list[Authorization]:
    """Each tagged resource's ARN, with its current tags and the tags the call sets."""
    tags = {t["Key"]: t.get("Value", "") for t in operation.params.get("Tags") or []}
    return [
        Authorization(
            f"ec2:{operation.name}",
            _arn(operation, _resource_type(ident), ident),
            {**_existing_tag_context(operation, ident), **request_tag_context(tags)},
        )
        for ident in operation.params["Resources"]
    ]


def _template(operation: Operation) -> tuple[str | None, dict[str, Any]]:
    """(launch template id, the launch data of the requested version) or (None, {})."""
    spec = operation.params.get("LaunchTemplate")
    if not spec:
        return None, {}
    backend = _backend(operation)
    if spec.get("LaunchTemplateId"):
        template = backend.get_launch_template(spec["LaunchTemplateId"])
    else:
        template = backend.get_launch_template_by_name(spec["LaunchTemplateName"])
    version = template.get_version(spec.get("Version") or "$Default")
    return template.id, dict(version.data)


def _merged(params: dict[str, Any], data: dict[str, Any], key: str) -> Any:
    """A launch parameter: the request's value, else the launch template's (EC2 API
    reference, RunInstances, LaunchTemplate: parameters given in the request overwrite the
    template's)."""
    return params.get(key) if params.get(key) not in (None, [], {}) else data.get(key)


def _image(operation: Operation, image: str) -> tuple[str, list[Authorization]]:
    """The AMI id, resolving `resolve:ssm:<parameter>` as EC2 does, as the caller: that needs
    ssm:GetParameters on the parameter (EC2 user guide, "Use a Systems Manager parameter
    instead of an AMI ID", permissions)."""
    if not image.startswith(SSM_IMAGE_PREFIX):
        return image, []
    name = image.removeprefix(SSM_IMAGE_PREFIX)
    from bisonflow.local.iam.requests import MAPPERS

    lookup = Operation(
        "ssm", "GetParameters", {"Names": [name]}, operation.region, operation.session
    )
    needed = MAPPERS[("ssm", "GetParameters")](lookup)
    parameter = ssm_backends[operation.account][operation.region].get_parameter(name)
    if parameter is not None:
        return parameter.value, needed
    if name.startswith(PUBLIC_PARAMETERS):
        # AWS publishes it; the emulator cannot hold it (moto reserves the /aws prefix), so
        # the AMI's id is unknown: it is evaluated like a created resource's ARN, which a
        # grant on image/* or * allows and a grant naming one AMI does not.
        return NEW, needed
    raise UnmappedOperation(f"RunInstances: the image parameter {name} does not exist")


def _network(operation: Operation, params: dict, data: dict) -> tuple[str, list[str]]:
    """(subnet id, security group ids) of the launch; without them, the default VPC's default
    subnet and its default security group, as EC2 picks them."""
    backend = _backend(operation)
    interfaces = _merged(params, data, "NetworkInterfaces") or []
    subnet = _merged(params, data, "SubnetId") or next(
        (n.get("SubnetId") for n in interfaces if n.get("SubnetId")), None
    )
    groups = list(_merged(params, data, "SecurityGroupIds") or [])
    groups += [g for n in interfaces for g in n.get("Groups") or []]
    if not subnet:
        defaults = backend.get_default_subnets()
        zone = (_merged(params, data, "Placement") or {}).get("AvailabilityZone")
        if not defaults:
            raise UnmappedOperation("RunInstances names no subnet and there is no default VPC")
        subnet = (defaults.get(zone) or defaults[sorted(defaults)[0]]).id
    vpc = backend.get_subnet(subnet).vpc_id
    for name in _merged(params, data, "SecurityGroups") or []:
        groups.append(backend.get_security_group_by_name_or_id(name, vpc).id)
    if not groups:
        groups.append(backend.get_security_group_by_name_or_id("default", vpc).id)
    return subnet, groups


def _launch_tags(params: dict, data: dict) -> dict[str, dict[str, str]]:
    """Tags per resource type the launch applies: the template's, overridden by the request's
    TagSpecification for the same resource type."""
    tags: dict[str, dict[str, str]] = {}
    for source in (data.get("TagSpecifications") or [], params.get("TagSpecifications") or []):
        for spec in source:
            tags[spec["ResourceType"]] = {t["Key"]: t.get("Value", "") for t in spec["Tags"]}
    return tags


def _pass_role(operation: Operation, profile: dict[str, str]) -> list[Authorization]:
    iam = iam_backends[operation.account][PARTITION]
    if profile.get("Arn"):
        found = iam.get_instance_profile_by_arn(profile["Arn"])
    else:
        found = iam.get_instance_profile(profile["Name"])
    return [
        Authorization("iam:PassRole", role.arn, {"iam:PassedToService": "ec2.amazonaws.com"})
        for role in found.roles
    ]


@maps("ec2", "RunInstances")
def _run_instances(operation: Operation) -> list[Authorization]:
    params = operation.params
    template_id, data = _template(operation)
    image, found = _image(operation, _merged(params, data, "ImageId") or "")
    subnet, groups = _network(operation, params, data)
    tags = _launch_tags(params, data)
    market = (_merged(params, data, "InstanceMarketOptions") or {}).get("MarketType")
    metadata = _merged(params, data, "MetadataOptions") or {}
    profile = _merged(params, data, "IamInstanceProfile") or {}
    common: dict[str, str | list[str]] = {}
    if template_id:
        common["ec2:LaunchTemplate"] = _arn(operation, "launch-template", template_id)
    instance = {
        **common,
        "ec2:InstanceType": _merged(params, data, "InstanceType") or "m1.small",
        "ec2:InstanceMarketType": market or "on-demand",
        **{
            f"ec2:Metadata{key}": str(metadata[key])
            for key in ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit")
            if key in metadata
        },
        **request_tag_context(tags.get("instance", {})),
    }
    if profile.get("Arn"):
        instance["ec2:InstanceProfile"] = profile["Arn"]
    resources = [
        ("instance", NEW, instance),
        ("image", image, common),
        ("subnet", subnet, common),
        (
            "network-interface",
            NEW,
            {**common, **request_tag_context(tags.get("network-interface", {}))},
        ),
        ("volume", NEW, {**common, **request_tag_context(tags.get("volume", {}))}),
        *(("security-group", group, common) for group in groups),
    ]
    if template_id:
        resources.append(("launch-template", template_id, common))
    if market == "spot":
        spot_tags = request_tag_context(tags.get("spot-instances-request", {}))
        resources.append(("spot-instances-request", NEW, spot_tags))
    if _merged(params, data, "KeyName"):
        resources.append(("key-pair", _merged(params, data, "KeyName"), common))
    found += [
        Authorization("ec2:RunInstances", _arn(operation, kind, ident), ctx)
        for kind, ident, ctx in resources
    ]
    found += [
        Authorization(
            "ec2:CreateTags",
            _arn(operation, kind, NEW),
            {"ec2:CreateAction": "RunInstances", **request_tag_context(kind_tags)},
        )
        for kind, kind_tags in tags.items()
        if kind_tags
    ]
    if profile:
        found += _pass_role(operation, profile)
    return found
