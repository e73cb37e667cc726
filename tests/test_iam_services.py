"""IAM enforcement for AWS's special cases: EC2 launches, Step Functions aliases, Lambda aliases,
the Redshift Data API's workgroup and statement owner.

Uses test_iam_seam's small moto server, roles and helpers.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from test_iam_seam import (
    ACCOUNT,
    PREFIX,
    REGION,
    WORKGROUP_ID,
    Role,
    admin,
    allow,
    authorized,
    code,
    endpoint,
    make_role,
    no_mapping_defects,
    policy,
    refused,
)

from bisonflow.local.iam import data_api_requests

#: test_iam_seam's fixtures, used here by name: its moto server, admin clients and roles.
SHARED_FIXTURES = (admin, endpoint, make_role, no_mapping_defects)

EC2 = f"arn:aws:ec2:{REGION}:{ACCOUNT}"
AMI_PARAMETER = f"/{PREFIX}/ami"
STACK_TAG = "bisonflow:stack"
#: An AMI id (moto does not check that an AMI exists unless asked to).
IMAGE = "ami-12c6146b"


@pytest.fixture(scope="module")
def launch(admin: Callable[[str], Any]) -> dict[str, str]:
    """A launch template as the stack's: SSM-resolved AMI, instance profile, Spot, tags."""
    ec2, iam = admin("ec2"), admin("iam")
    admin("ssm").put_parameter(Name=AMI_PARAMETER, Value=IMAGE, Type="String")
    task_role = iam.create_role(RoleName=f"{PREFIX}-task", AssumeRolePolicyDocument=policy())
    iam.create_instance_profile(InstanceProfileName=f"{PREFIX}-task")
    iam.add_role_to_instance_profile(
        InstanceProfileName=f"{PREFIX}-task", RoleName=f"{PREFIX}-task"
    )
    profile = iam.get_instance_profile(InstanceProfileName=f"{PREFIX}-task")["InstanceProfile"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{PREFIX}-task",
        LaunchTemplateData={
            "ImageId": f"resolve:ssm:{AMI_PARAMETER}",
            "InstanceType": "t3.micro",
            "IamInstanceProfile": {"Arn": profile["Arn"]},
            "InstanceMarketOptions": {"MarketType": "spot"},
            "MetadataOptions": {"HttpTokens": "required"},
            "UserData": base64.b64encode(b"#!/bin/sh\n").decode(),
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": [{"Key": STACK_TAG, "Value": PREFIX}]}
            ],
        },
    )["LaunchTemplate"]
    return {
        "template": template["LaunchTemplateId"],
        "task_role": task_role["Role"]["Arn"],
        "parameter": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{AMI_PARAMETER}",
    }


def launcher_grants(launch: dict[str, str], without: str = "") -> list[dict]:
    """The launch Lambda's grants as the template writes them, less the one named `without`."""
    resources = {
        "launch-template": f"{EC2}:launch-template/{launch['template']}",
        "image": f"arn:aws:ec2:{REGION}::image/*",
        **{kind: f"{EC2}:{kind}/*" for kind in (
            "instance", "volume", "network-interface", "subnet", "security-group",
            "spot-instances-request")},
    }  # fmt: skip
    statements = [
        allow("ec2:RunInstances", [arn for kind, arn in resources.items() if kind != without]),
        allow(
            "ec2:CreateTags",
            [f"{EC2}:instance/*", f"{EC2}:volume/*"],
            Condition={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        ),
        allow("ssm:GetParameters", launch["parameter"]),
        allow(
            "iam:PassRole",
            launch["task_role"],
            Condition={"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
    ]
    names = {"tags": 1, "resolve": 2, "passrole": 3}
    return [s for i, s in enumerate(statements) if names.get(without) != i]


def run(role: Role, launch: dict[str, str]) -> Any:
    tags = [{"Key": "bisonflow:task", "Value": "calc_stats"}]
    return lambda: role.client("ec2").run_instances(
        LaunchTemplate={"LaunchTemplateId": launch["template"], "Version": "$Latest"},
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    )


def test_run_instances_authorizes_every_resource_tags_and_pass_role(
    make_role: Callable[[str], Role], launch: dict[str, str]
) -> None:
    role = make_role("launcher")
    role.grant(*launcher_grants(launch))
    launched = run(role, launch)()["Instances"][0]
    assert launched["InstanceId"].startswith("i-")
    for missing, expected in (
        ("security-group", "ec2:RunInstances on resource: " + f"{EC2}:security-group/sg-"),
        ("subnet", "ec2:RunInstances on resource: " + f"{EC2}:subnet/subnet-"),
        ("volume", f"ec2:RunInstances on resource: {EC2}:volume/*"),
        ("spot-instances-request", f"on resource: {EC2}:spot-instances-request/*"),
        ("launch-template", f"on resource: {EC2}:launch-template/{launch['template']}"),
        ("tags", f"ec2:CreateTags on resource: {EC2}:instance/*"),
        ("resolve", f"ssm:GetParameters on resource: {launch['parameter']}"),
        ("passrole", f"iam:PassRole on resource: {launch['task_role']}"),
    ):
        role.grant(*launcher_grants(launch, without=missing))
        error = refused(run(role, launch))
        assert code(error) in {"UnauthorizedOperation", "AccessDenied"}, missing
        assert expected in str(error), (missing, str(error))


def test_create_tags_at_launch_only_with_the_create_action(
    make_role: Callable[[str], Role], launch: dict[str, str]
) -> None:
    role = make_role("tagger")
    role.grant(*launcher_grants(launch))
    instance = run(role, launch)()["Instances"][0]["InstanceId"]
    # The same CreateTags grant does not let the role tag an existing instance.
    error = refused(
        lambda: role.client("ec2").create_tags(
            Resources=[instance], Tags=[{"Key": "owner", "Value": "me"}]
        )
    )
    assert f"ec2:CreateTags on resource: {EC2}:instance/{instance}" in str(error)


def test_terminate_instances_by_live_tags(
    admin: Callable[[str], Any], make_role: Callable[[str], Role], launch: dict[str, str]
) -> None:
    ec2 = admin("ec2")

    def instance(stack: str) -> str:
        return ec2.run_instances(
            ImageId=IMAGE,
            MinCount=1,
            MaxCount=1,
            TagSpecifications=[
                {"ResourceType": "instance", "Tags": [{"Key": STACK_TAG, "Value": stack}]}
            ],
        )["Instances"][0]["InstanceId"]

    ours, theirs = instance(PREFIX), instance("another-stack")
    role = make_role("cleanup")
    role.grant(
        allow(
            "ec2:TerminateInstances",
            f"{EC2}:instance/*",
            Condition={"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": PREFIX}},
        )
    )
    role.client("ec2").terminate_instances(InstanceIds=[ours])
    error = refused(lambda: role.client("ec2").terminate_instances(InstanceIds=[theirs]))
    assert code(error) == "UnauthorizedOperation"
    assert error.response["Error"]["Message"] == (
        "You are not authorized to perform this operation. User: "
        f"{role.session_arn} is not authorized to perform: ec2:TerminateInstances on resource: "
        f"{EC2}:instance/{theirs} because no identity-based policy allows the "
        "ec2:TerminateInstances action"
    )
    # Retagging the instance through the API changes the next decision.
    ec2.create_tags(Resources=[theirs], Tags=[{"Key": STACK_TAG, "Value": PREFIX}])
    role.client("ec2").terminate_instances(InstanceIds=[theirs])


# --- Step Functions and Lambda: qualified ARNs ---------------------------------------------
MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{PREFIX}-machine"


def test_start_execution_on_an_alias_is_authorized_on_the_machine_with_its_qualifier(
    make_role: Callable[[str], Role],
) -> None:
    role = make_role("schedule")
    start = lambda: role.client("stepfunctions").start_execution(  # noqa: E731
        stateMachineArn=f"{MACHINE}:live", input="{}"
    )
    role.grant(allow("states:StartExecution", f"{MACHINE}:live"))
    error = refused(start)
    assert f"states:StartExecution on resource: {MACHINE} because" in str(error)
    # The key is multivalued (ArrayOfString in the Service Authorization Reference).
    qualified = {"ForAnyValue:StringEquals": {"states:StateMachineQualifier": ["live"]}}
    role.grant(allow("states:StartExecution", MACHINE, Condition=qualified))
    authorized(start)
    role.grant(
        allow(
            "states:StartExecution",
            MACHINE,
            Condition={"ForAnyValue:StringEquals": {"states:StateMachineQualifier": ["1"]}},
        )
    )
    assert code(refused(start)) == "AccessDeniedException"


def test_invoking_a_lambda_alias_needs_the_qualified_arn(make_role: Callable[[str], Role]) -> None:
    function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{PREFIX}-check"
    role = make_role("machine")
    invoke = lambda: role.client("lambda").invoke(FunctionName=f"{function}:live")  # noqa: E731
    role.grant(allow("lambda:InvokeFunction", function))
    error = refused(invoke)
    assert f"lambda:InvokeFunction on resource: {function}:live" in str(error)
    role.grant(allow("lambda:InvokeFunction", f"{function}:*"))
    authorized(invoke)


# --- Redshift Data API ---------------------------------------------------------------------
WORKGROUP = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP_ID}"


def test_data_api_statements_need_the_workgroup_and_its_credentials(
    make_role: Callable[[str], Role],
) -> None:
    submitter = make_role("submit")
    run_sql = allow("redshift-data:ExecuteStatement", WORKGROUP)
    submitter.grant(run_sql)
    submit = lambda: submitter.client("redshift-data").execute_statement(  # noqa: E731
        Sql="select 1", WorkgroupName=WORKGROUP, Database="dev"
    )
    error = refused(submit)
    assert f"redshift-serverless:GetCredentials on resource: {WORKGROUP}" in str(error)
    submitter.grant(run_sql, allow("redshift-serverless:GetCredentials", WORKGROUP))
    statement = submit()["Id"]
    assert data_api_requests.STATEMENT_OWNERS[statement].endswith(":test-session")
    by_name = refused(
        lambda: submitter.client("redshift-data").execute_statement(
            Sql="select 1", WorkgroupName="bison", Database="dev"
        )
    )
    assert "needs the workgroup ARN" in str(by_name)

    own_only = allow(
        "redshift-data:DescribeStatement",
        "*",
        Condition={"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}},
    )
    submitter.grant(own_only)
    authorized(lambda: submitter.client("redshift-data").describe_statement(Id=statement))
    poller = make_role("poll")
    poller.grant(own_only)
    error = refused(lambda: poller.client("redshift-data").describe_statement(Id=statement))
    assert "redshift-data:DescribeStatement because no identity-based policy" in str(error)


def test_an_aws_public_ami_parameter_is_authorized_without_its_value(
    admin: Callable[[str], Any], make_role: Callable[[str], Role], launch: dict[str, str]
) -> None:
    # AWS publishes /aws/service/... parameters; the emulator cannot hold them, so the AMI they
    # name is unknown: image/* grants it, a grant naming one AMI does not.
    public = "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id"
    template = admin("ec2").create_launch_template(
        LaunchTemplateName=f"{PREFIX}-public-ami",
        LaunchTemplateData={"ImageId": f"resolve:ssm:{public}", "InstanceType": "t3.micro"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    role = make_role("public-ami")
    grants = launcher_grants({**launch, "template": template})
    parameter = f"arn:aws:ssm:{REGION}::parameter{public}"
    role.grant(*grants, allow("ssm:GetParameters", parameter))
    start = lambda: role.client("ec2").run_instances(  # noqa: E731
        LaunchTemplate={"LaunchTemplateId": template}, MinCount=1, MaxCount=1
    )
    authorized(start)
    role.grant(*grants)
    assert f"ssm:GetParameters on resource: {parameter}" in str(refused(start))
    one_ami = [dict(g) for g in grants]
    one_ami[0]["Resource"] = [
        r.replace("image/*", f"image/{IMAGE}") for r in one_ami[0]["Resource"]
    ]
    role.grant(*one_ami, allow("ssm:GetParameters", parameter))
    assert f"on resource: arn:aws:ec2:{REGION}::image/*" in str(refused(start))
