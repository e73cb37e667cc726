"""definitions/bisonflow.cfn.yaml: valid CloudFormation, least privilege, what the issue asks."""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint_file

from bisonflow import cfn_template, schedule
from bisonflow.deploy.definition import ASL_PATH, PLACEHOLDER, placeholder
from bisonflow.deploy.iam_policy import UNSCOPABLE, violations
from bisonflow.deploy.intrinsics import Resolver
from bisonflow.ec2_tasks import TAG_SPEC, TAG_TASK, TOKEN_PARAMETER_ROOT
from bisonflow.packaging import FUNCTIONS, handler_of


@pytest.fixture(scope="module")
def template() -> dict:
    return cfn_template.template()


def resources_of(template: dict, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def test_cfn_lint_passes() -> None:
    matches = lint_file(Path(cfn_template.TEMPLATE_PATH), config=ManualArgs(regions=["us-east-1"]))
    assert [str(m) for m in matches] == []


def test_the_schedule_defaults_are_the_schedule_modules() -> None:
    assert cfn_template.parameter_default("ScheduleExpression") == schedule.DEFAULT_EXPRESSION
    assert cfn_template.parameter_default("ScheduleTimezone") == schedule.DEFAULT_TIMEZONE


def test_no_account_id_or_region_is_written_down() -> None:
    text = cfn_template.template_text()
    assert not re.search(r"(?<![\d{])\d{12}(?!\d)", text), "an account id in the template"
    assert not re.search(r"(us|eu|ap|sa|ca|me|af)-(east|west|north|south|central)-\d", text)


def test_every_function_has_a_version_and_a_live_alias_the_machine_invokes(
    template: dict,
) -> None:
    functions = resources_of(template, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == sorted(
        handler_of(f) for f in FUNCTIONS
    )
    versions = resources_of(template, "AWS::Lambda::Version")
    aliases = resources_of(template, "AWS::Lambda::Alias")
    substitutions = template["Resources"]["StateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(substitutions) == set(PLACEHOLDER.findall(ASL_PATH.read_text()))
    for function in FUNCTIONS:
        logical = placeholder(function).removesuffix("FunctionArn")
        assert functions[f"{logical}Function"]["Properties"]["Layers"] == [{"Ref": "LibraryLayer"}]
        version = versions[f"{logical}Version"]["Properties"]
        assert version["FunctionName"] == {"Ref": f"{logical}Function"}
        alias = aliases[f"{logical}Alias"]["Properties"]
        assert alias["Name"] == "live"
        assert alias["FunctionVersion"] == {"Fn::GetAtt": [f"{logical}Version", "Version"]}
        assert substitutions[placeholder(function)] == {"Ref": f"{logical}Alias"}


def test_state_machine_logs_everything_traces_and_the_schedule_starts_its_alias(
    template: dict,
) -> None:
    machine = template["Resources"]["StateMachine"]["Properties"]
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is True
    assert machine["TracingConfiguration"] == {"Enabled": True}
    alias = template["Resources"]["StateMachineAlias"]["Properties"]
    assert alias["RoutingConfiguration"] == [
        {"StateMachineVersionArn": {"Ref": "StateMachineVersion"}, "Weight": 100}
    ]
    target = template["Resources"]["MonthlySchedule"]["Properties"]["Target"]
    assert target["Arn"] == {"Ref": "StateMachineAlias"}
    assert "<aws.scheduler.scheduled-time>" in target["Input"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    rule = template["Resources"]["ExecutionFailedRule"]["Properties"]
    assert rule["EventPattern"]["detail"]["status"] == ["FAILED", "TIMED_OUT", "ABORTED"]
    assert rule["Targets"][0]["Arn"] == {"Ref": "AlarmTopic"}


def test_bucket_is_private_encrypted_tls_only_and_expires_logs(template: dict) -> None:
    bucket = template["Resources"]["BisonBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireLogs"]["Prefix"] == "logs/"
    (deny,) = template["Resources"]["BisonBucketPolicy"]["Properties"]["PolicyDocument"][
        "Statement"
    ]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_task_launch_templates_are_spot_arm_imdsv2_and_terminate_on_shutdown(
    template: dict,
) -> None:
    templates = resources_of(template, "AWS::EC2::LaunchTemplate")
    assert set(templates) == {"AnnotateRiisLaunchTemplate", "CalcStatsLaunchTemplate"}
    for data in (t["Properties"]["LaunchTemplateData"] for t in templates.values()):
        assert data["InstanceMarketOptions"] == {"MarketType": "spot"}
        assert data["InstanceInitiatedShutdownBehavior"] == "terminate"
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["InstanceMetadataTags"] == "enabled"
        assert data["IamInstanceProfile"] == {"Arn": {"Fn::GetAtt": ["TaskInstanceProfile", "Arn"]}}
    assert "ubuntu/server/24.04" in cfn_template.parameter_default("TaskAmiParameter")
    assert "arm64" in cfn_template.parameter_default("TaskAmiParameter")
    for task in ("AnnotateRiis", "CalcStats"):
        assert cfn_template.parameter_default(f"{task}InstanceType").startswith("t4g.")


def _rendered_userdata(template: dict, logical_id: str) -> str:
    """The launch template's UserData as CloudFormation renders it (base64, decoded)."""

    def no_resources(logical: str, attribute: str | None) -> str:
        raise AssertionError(f"userdata refers to {logical}")

    resolver = Resolver(template, {}, {}, no_resources)
    data = template["Resources"][logical_id]["Properties"]["LaunchTemplateData"]
    return base64.b64decode(resolver.value(data["UserData"])).decode()


def test_userdata_renders_without_any_task_token(template: dict) -> None:
    for logical_id in ("AnnotateRiisLaunchTemplate", "CalcStatsLaunchTemplate"):
        userdata = _rendered_userdata(template, logical_id)
        assert userdata == cfn_template.boot_script()
        assert userdata.startswith("#!/bin/bash\n")
        # Per-run values come from the instance's tags; the token stays in SSM.
        assert f"tags/instance/{TAG_TASK})" in userdata
        assert f"tags/instance/{TAG_SPEC})" in userdata
        assert TOKEN_PARAMETER_ROOT not in userdata
        assert not re.search(r"task.?token", userdata, re.IGNORECASE)
        for step in ("docker.io", "docker compose", "docker system prune", "shutdown -h now"):
            assert step in userdata


def test_the_template_passes_the_least_privilege_check(template: dict) -> None:
    assert violations(template) == []
    # Every listed exception is used: the README's list is the template's.
    used = {
        action
        for document in (
            s
            for r in template["Resources"].values()
            if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy")
            for s in (
                [p["PolicyDocument"] for p in r["Properties"].get("Policies", [])]
                + (
                    [r["Properties"]["PolicyDocument"]]
                    if "PolicyDocument" in r["Properties"]
                    else []
                )
            )
        )
        for statement in document["Statement"]
        if statement.get("Resource") == "*"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert used == set(UNSCOPABLE)


@pytest.mark.parametrize(
    ("statement", "complaint"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}, "action '*'"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}, "'s3:*'"),
        ({"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}, "s3:GetObject"),
        (
            {
                "Effect": "Allow",
                "Action": ["ec2:DescribeInstances", "ec2:RunInstances"],
                "Resource": "*",
            },
            "Resource '*' for ec2:RunInstances",
        ),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}, "NotAction"),
        ({"Fn::If": ["C", {"Effect": "Allow"}, {"Ref": "AWS::NoValue"}]}, "cannot be checked"),
    ],
)
def test_the_checker_rejects_broad_grants(template: dict, statement: dict, complaint: str) -> None:
    bad = copy.deepcopy(template)
    bad["Resources"]["PollStatementRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(statement)
    found = violations(bad)
    assert len(found) == 1 and complaint in found[0], found
    assert found[0].startswith("PollStatementRole/poll-statement")


def test_a_deny_statement_is_not_a_grant(template: dict) -> None:
    assert (
        violations(
            {
                "Resources": {
                    "R": {
                        "Type": "AWS::IAM::ManagedPolicy",
                        "Properties": {
                            "PolicyDocument": {
                                "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]
                            }
                        },
                    }
                }
            }
        )
        == []
    )
