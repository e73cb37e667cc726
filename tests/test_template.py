"""definitions/bisonflow.cfn.yaml: valid CloudFormation, least privilege, what the issue asks."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from cfnlint.api import ManualArgs, lint_file

from bisonflow import PROJECT_ROOT, config
from bisonflow.deploy import cfn_template, schedule, stack
from bisonflow.deploy.database_grants import database_user, grant_statements, sql_role_name
from bisonflow.deploy.definition import ASL_PATH, PLACEHOLDER, placeholder
from bisonflow.deploy.emulated.intrinsics import Resolver
from bisonflow.deploy.emulated.resources import _depends
from bisonflow.deploy.iam_policy import UNSCOPABLE, violations
from bisonflow.deploy.packaging import FUNCTIONS, MACHINE_FUNCTIONS, handler_of
from bisonflow.layout import MonthLayout
from bisonflow.sql.subset_rules import (
    DEFAULT_SUBSET_RULES,
    GBIF_BASIS_OF_RECORD,
    GBIF_RANKS_SPECIES_AND_BELOW,
)
from bisonflow.steps.ec2_tasks import (
    DEPLOYMENT_TAGS,
    TAG_SPEC,
    TAG_TASK,
    TOKEN_PARAMETER_ROOT,
    instance_tags,
)
from bisonflow.steps.waits import DEFAULT_SQL_STATEMENT_TIMEOUT_SECONDS


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


def test_every_function_has_a_version_and_a_live_alias_the_machine_or_schedule_invokes(
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
        if function in MACHINE_FUNCTIONS:
            assert substitutions[placeholder(function)] == {"Ref": f"{logical}Alias"}
        else:  # start_month: the schedule's target
            target = template["Resources"]["MonthlySchedule"]["Properties"]["Target"]
            assert target["Arn"] == {"Ref": f"{logical}Alias"}


def test_state_machine_logs_everything_traces_and_the_schedule_invokes_start_month(
    template: dict,
) -> None:
    machine = template["Resources"]["StateMachine"]["Properties"]
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    alias = template["Resources"]["StateMachineAlias"]["Properties"]
    assert alias["RoutingConfiguration"] == [
        {"StateMachineVersionArn": {"Ref": "StateMachineVersion"}, "Weight": 100}
    ]
    target = template["Resources"]["MonthlySchedule"]["Properties"]["Target"]
    assert target["Arn"] == {"Ref": "StartMonthAlias"}  # names the month's run (scheduled_start)
    assert json.loads(target["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    start_month = template["Resources"]["StartMonthFunction"]["Properties"]
    assert start_month["Environment"]["Variables"] == {
        "WORKFLOW_ALIAS_ARN": {"Ref": "StateMachineAlias"}
    }
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
        # Spot is asked by launch_task, which falls back to On-Demand: a Spot template could
        # not be launched On-Demand (bisonflow.steps.ec2_tasks).
        assert "InstanceMarketOptions" not in data
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
    # Every listed exception is used: docs/aws.md's list is the template's.
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
    bad["Resources"]["CheckGbifRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ].append(statement)
    found = violations(bad)
    assert len(found) == 1 and complaint in found[0], found
    assert found[0].startswith("CheckGbifRole/check-gbif")


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


# --- issue 9: what an AWS review found ------------------------------------------------------
#: Log levels at which Step Functions logs TaskScheduled (Step Functions Developer Guide, "Log
#: levels": only ALL). Its `parameters` hold the resolved Parameters of a callback step, the
#: task token with them (API reference, TaskScheduledEventDetails).
LEVELS_LOGGING_TASK_SCHEDULED = ("ALL",)


def token_reaches_the_log(logging: dict) -> bool:
    """Would the state machine's CloudWatch Logs hold a task token?"""
    return logging.get("Level", "OFF") in LEVELS_LOGGING_TASK_SCHEDULED and bool(
        logging.get("IncludeExecutionData", False)
    )


def test_the_state_machine_logs_carry_no_task_token(template: dict) -> None:
    logging = template["Resources"]["StateMachine"]["Properties"]["LoggingConfiguration"]
    assert not token_reaches_the_log(logging)
    assert logging["Level"] == "ALL", "every event type is still logged, without its data"
    assert token_reaches_the_log({"Level": "ALL", "IncludeExecutionData": True})
    # The callback steps do put the token into their Parameters (so into TaskScheduled).
    assert ASL_PATH.read_text().count('"task_token.$": "$$.Task.Token"') == 2


def _compose_task(template: dict, logical_id: str) -> str:
    name = template["Resources"][logical_id]["Properties"]["LaunchTemplateName"]["Fn::Sub"]
    return name.removeprefix("${AWS::StackName}-")


def test_task_containers_can_reach_instance_metadata(template: dict) -> None:
    """IMDSv2's token response travels as many hops as the hop limit allows (default 1); a
    container on Docker's bridge network is one hop further than the instance (EC2 User Guide,
    "Retrieve instance metadata"). The team keeps bridge networking and sets the limit to 2."""
    for logical_id in resources_of(template, "AWS::EC2::LaunchTemplate"):
        task = _compose_task(template, logical_id)
        compose = yaml.safe_load((PROJECT_ROOT / "tasks" / f"compose.{task}.yml").read_text())
        service = compose["services"][task]
        network_mode = service.get("network_mode", "bridge")
        assert network_mode == "bridge", f"{task}: {network_mode}"
        hops_needed = 1 if network_mode == "host" else 2
        options = template["Resources"][logical_id]["Properties"]["LaunchTemplateData"][
            "MetadataOptions"
        ]
        assert options["HttpTokens"] == "required"
        assert options.get("HttpPutResponseHopLimit", 1) >= hops_needed, logical_id
        assert options["HttpPutResponseHopLimit"] == 2


def test_task_instances_launch_in_the_given_subnet_and_groups(template: dict) -> None:
    """No default VPC is assumed: both parameters are required (no Default)."""
    parameters = template["Parameters"]
    assert parameters["TaskSubnetId"]["Type"] == "AWS::EC2::Subnet::Id"
    assert parameters["TaskSecurityGroupId"]["Type"] == "AWS::EC2::SecurityGroup::Id"
    assert "Default" not in parameters["TaskSubnetId"]
    assert "Default" not in parameters["TaskSecurityGroupId"]
    for lt in resources_of(template, "AWS::EC2::LaunchTemplate").values():
        (interface,) = lt["Properties"]["LaunchTemplateData"]["NetworkInterfaces"]
        assert interface["DeviceIndex"] == 0
        assert interface["SubnetId"] == {"Ref": "TaskSubnetId"}
        assert interface["Groups"] == [{"Ref": "TaskSecurityGroupId"}]


def _ancestors(template: dict, logical_id: str) -> set[str]:
    """Everything CloudFormation creates before `logical_id` (references and DependsOn)."""
    resources, seen = template["Resources"], set()
    todo = [logical_id]
    while todo:
        for dependency in _depends(resources[todo.pop()]) & set(resources):
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


def test_every_function_in_a_vpc_comes_after_the_vpc_policy(template: dict) -> None:
    functions = resources_of(template, "AWS::Lambda::Function")
    assert all("VpcConfig" in f["Properties"] for f in functions.values())
    for logical_id in functions:
        assert "LambdaVpcPolicy" in _ancestors(template, logical_id), logical_id
    assert "Roles" not in template["Resources"]["LambdaVpcPolicy"]["Properties"]


#: AWS managed policy AWSLambdaVPCAccessExecutionRole, policy version v3 (AWS Managed Policy
#: Reference, "AWSLambdaVPCAccessExecutionRole", JSON policy document).
AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def test_lambdas_in_a_vpc_get_what_awslambdavpcaccessexecutionrole_grants(template: dict) -> None:
    granted = set()
    for logical_id in ("LambdaBasePolicy", "LambdaVpcPolicy"):
        for statement in template["Resources"][logical_id]["Properties"]["PolicyDocument"][
            "Statement"
        ]:
            actions = statement["Action"]
            granted |= set(actions if isinstance(actions, list) else [actions])
    assert granted >= AWS_LAMBDA_VPC_ACCESS_EXECUTION_ROLE


def test_replaced_versions_are_retained_for_rollback(template: dict) -> None:
    versions = resources_of(template, "AWS::Lambda::Version") | resources_of(
        template, "AWS::StepFunctions::StateMachineVersion"
    )
    assert len(versions) == len(FUNCTIONS) + 1
    for logical_id, version in versions.items():
        assert version.get("UpdateReplacePolicy") == "Retain", logical_id
        assert version.get("DeletionPolicy") == "Retain", logical_id
    # Its Description requires replacement: nothing in it may change with a Lambda release.
    description = template["Resources"]["StateMachineVersion"]["Properties"]["Description"]
    assert isinstance(description, str) and "${" not in description


def test_the_sql_role_is_the_database_user_the_grants_name(template: dict) -> None:
    """The Data API maps role R to database user IAMR:R; a named role needs NAMED_IAM."""

    def no_resources(logical: str, attribute: str | None) -> str:
        return {"SubmitStatementsRole": "bisonflow-sql-eu-central-1"}[logical]

    pseudo = {"AWS::StackName": "bisonflow", "AWS::Region": "eu-central-1"}
    resolver = Resolver(template, {}, pseudo, no_resources)
    role = template["Resources"]["SubmitStatementsRole"]["Properties"]
    assert resolver.value(role["RoleName"]) == sql_role_name("bisonflow", "eu-central-1")
    output = template["Outputs"]["SqlDatabaseUser"]["Value"]
    assert resolver.value(output) == database_user("bisonflow-sql-eu-central-1")
    assert stack.capabilities(template) == ["CAPABILITY_NAMED_IAM"]
    unnamed = copy.deepcopy(template)
    del unnamed["Resources"]["SubmitStatementsRole"]["Properties"]["RoleName"]
    assert stack.capabilities(unnamed) == ["CAPABILITY_IAM"]
    assert stack.capabilities({"Resources": {}}) == []


def test_launch_task_knows_every_tag_the_boot_script_and_iam_conditions_read(
    template: dict,
) -> None:
    """RunInstances' tags replace the launch template's, so the launch Lambda must be able to
    give every tag the boot script reads and every tag an IAM condition tests."""
    read = set(re.findall(r"tags/instance/([\w:.-]+)", cfn_template.boot_script()))
    conditioned = set(re.findall(r"aws:ResourceTag/([\w:.-]+)", json.dumps(template)))
    per_run = {
        tag["Key"]
        for tag in instance_tags("calc_stats", MonthLayout.for_month("2026-05"), "x", "s3://b/k")
    }
    assert read and conditioned
    assert read | conditioned <= set(DEPLOYMENT_TAGS) | per_run
    environment = template["Resources"]["LaunchTaskFunction"]["Properties"]["Environment"]
    assert set(DEPLOYMENT_TAGS.values()) <= set(environment["Variables"])


def test_the_sql_lambdas_share_the_role_that_owns_their_statements(template: dict) -> None:
    """Only the submitter's role may DescribeStatement / GetStatementResult its statements
    (Redshift Management Guide, "Using the Amazon Redshift Data API"), and poll_statement calls
    both (bisonflow.steps.statements)."""
    functions = template["Resources"]
    role = {"Fn::GetAtt": ["SubmitStatementsRole", "Arn"]}
    assert functions["SubmitStatementsFunction"]["Properties"]["Role"] == role
    assert functions["PollStatementFunction"]["Properties"]["Role"] == role
    statements = functions["SubmitStatementsRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ]
    granted = {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"redshift-data:DescribeStatement", "redshift-data:GetStatementResult"} <= granted


def test_the_readme_shows_the_grants_deploy_prints() -> None:
    user = database_user(sql_role_name("bisonflow", "us-east-1"))
    readme = (PROJECT_ROOT / "docs" / "aws.md").read_text()  # README's "Deploying to AWS" page
    for statement in grant_statements(user, "dev", "default"):
        assert statement in readme, statement


def test_the_science_defaults_are_bisons_and_reach_the_functions(template: dict) -> None:
    """The template's defaults are the values the code falls back to, BISON's own (one source:
    bisonflow.config / bisonflow.sql.subset_rules); the subset lists reach the SQL Lambda."""
    rules = DEFAULT_SUBSET_RULES
    assert cfn_template.parameter_default("PamMinPresenceCount") == str(
        config.DEFAULT_MIN_PRESENCE_COUNT
    )
    assert cfn_template.parameter_default("SubsetTaxonRanks") == ",".join(rules.taxon_ranks)
    assert cfn_template.parameter_default("SubsetBasisOfRecord") == ",".join(rules.basis_of_record)
    for name, vocabulary in (
        ("SubsetTaxonRanks", GBIF_RANKS_SPECIES_AND_BELOW),
        ("SubsetBasisOfRecord", GBIF_BASIS_OF_RECORD),
    ):  # any list of GBIF's values passes CloudFormation's check; the Lambda checks the rest
        pattern = template["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, ",".join(vocabulary))
        assert not re.fullmatch(pattern, "SPECIES'") and not re.fullmatch(pattern, "")
    functions = resources_of(template, "AWS::Lambda::Function")
    submit = functions["SubmitStatementsFunction"]["Properties"]["Environment"]["Variables"]
    assert submit["SUBSET_TAXON_RANKS"] == {"Ref": "SubsetTaxonRanks"}
    assert submit["SUBSET_BASIS_OF_RECORD"] == {"Ref": "SubsetBasisOfRecord"}
    launch = functions["LaunchTaskFunction"]["Properties"]["Environment"]["Variables"]
    assert launch["PAM_MIN_PRESENCE_COUNT"] == {"Ref": "PamMinPresenceCount"}


def test_the_sql_bound_reaches_the_poll_lambda_which_may_cancel(template: dict) -> None:
    """A statement past SqlStatementTimeoutSeconds is cancelled by the poll Lambda: the bound
    is in its environment, defaulting to the code's, and its role may CancelStatement."""
    functions = resources_of(template, "AWS::Lambda::Function")
    poll = functions["PollStatementFunction"]["Properties"]["Environment"]["Variables"]
    assert poll["SQL_STATEMENT_TIMEOUT_SECONDS"] == {"Ref": "SqlStatementTimeoutSeconds"}
    assert cfn_template.parameter_default("SqlStatementTimeoutSeconds") == str(
        DEFAULT_SQL_STATEMENT_TIMEOUT_SECONDS
    )
    statements = template["Resources"]["SubmitStatementsRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    (cancel,) = [s for s in statements if "redshift-data:CancelStatement" in s["Action"]]
    assert cancel["Resource"] == "*"  # no statement ARN exists: UNSCOPABLE says why
    assert "redshift-data:CancelStatement" in UNSCOPABLE
