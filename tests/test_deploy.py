"""`bisonflow deploy` into the emulator: the template's stack, the resources moto's
CloudFormation lacks created with the template's values, and a run of the deployed machine."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from bisonflow.cli.main import main
from bisonflow.deploy import cfn_template
from bisonflow.deploy.emulated import resources as emulated
from bisonflow.deploy.emulated.intrinsics import references
from bisonflow.deploy.emulated.resources import split
from bisonflow.deploy.packaging import FUNCTIONS, MACHINE_FUNCTIONS
from bisonflow.deploy.target import Target
from bisonflow.local.deploy import emulator_target
from bisonflow.local.emulator import target_profile
from bisonflow.local.runtime import LocalRuntime
from bisonflow.schemas import SchemaViolation, workflow_input

#: What moto 5.2.5's CloudFormation cannot create as the template asks (docs/local-runtime.md
#: lists them).
EMULATED = (
    "AWS::CloudWatch::Alarm",
    "AWS::Lambda::Alias",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::Function",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::Permission",
    "AWS::Lambda::Version",
    "AWS::SNS::Subscription",
    "AWS::SNS::TopicPolicy",
    "AWS::Scheduler::Schedule",
    "AWS::StepFunctions::StateMachine",
    "AWS::StepFunctions::StateMachineAlias",
    "AWS::StepFunctions::StateMachineVersion",
)


@pytest.fixture
def endpoint(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """CLI arguments for the session's emulator, with the credentials any caller would have."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return ["--endpoint-url", runtime.endpoint_url]


def test_the_emulator_declares_exactly_what_its_cloudformation_lacks() -> None:
    types = {r["Type"] for r in cfn_template.template()["Resources"].values()}
    profile = target_profile(types)
    assert profile.emulated_types == EMULATED
    assert set(profile.skipped_types) == {"AWS::S3::BucketPolicy"}
    assert profile.lambda_layer == "interpreter"
    assert profile.completed_properties == {"AWS::IAM::Role": ["ManagedPolicyArns"]}


def test_every_lambda_role_has_the_managed_policies_the_template_attaches(
    runtime: LocalRuntime,
) -> None:
    """moto's CloudFormation drops a role's ManagedPolicyArns; the deploy attaches them, so
    IAM enforcement judges each role by the policies it has on AWS."""
    assert runtime.deployment
    iam, awslambda = runtime.clients["iam"], runtime.clients["lambda"]
    policies = {p["PolicyName"]: p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
    base = next(arn for name, arn in policies.items() if "LambdaBasePolicy" in name)
    for function in FUNCTIONS:
        role_arn = awslambda.get_function_configuration(
            FunctionName=f"{runtime.deployment.stack_name}-{function}"
        )["Role"]
        attached = iam.list_attached_role_policies(RoleName=role_arn.rsplit("/", 1)[1])
        # Not in a VPC (no LambdaSubnetIds): the conditional VPC policy is left out.
        assert [p["PolicyArn"] for p in attached["AttachedPolicies"]] == [base], function


def test_split_points_cloudformation_at_the_predicted_arns() -> None:
    template = cfn_template.template()
    kept, order = split(template, EMULATED, ("AWS::S3::BucketPolicy",))
    emulated = {k for k, r in template["Resources"].items() if r["Type"] in EMULATED}
    assert set(order) == emulated
    assert order.index("StateMachine") < order.index("StateMachineVersion")
    assert order.index("StateMachineVersion") < order.index("StateMachineAlias")
    for logical_id, resource in kept["Resources"].items():
        assert not references(resource) & emulated, logical_id
    invoke = kept["Resources"]["StateMachineRole"]["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"
    ][0]
    assert invoke["Resource"][0] == {
        "Fn::Sub": [
            "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${F}:live",
            {"F": {"Fn::Sub": "${AWS::StackName}-check_gbif"}},
        ]
    }


def test_emulated_resources_carry_the_templates_values(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    outputs, stack = runtime.deployment.outputs, runtime.deployment.stack_name
    awslambda, sfn = runtime.clients["lambda"], runtime.clients["stepfunctions"]
    for function in FUNCTIONS:
        alias = awslambda.get_alias(FunctionName=f"{stack}-{function}", Name="live")
        assert alias["FunctionVersion"].isdigit(), "live must name a published version"
    machine = sfn.describe_state_machine(stateMachineArn=outputs["StateMachineArn"])
    assert machine["loggingConfiguration"]["level"] == "ALL"
    # Execution data (a callback step's Parameters carry its task token) stays out of the logs.
    assert machine["loggingConfiguration"]["includeExecutionData"] is False
    assert machine["tracingConfiguration"] == {"enabled": True}
    arns = {
        state["Parameters"]["FunctionName"]
        for state in _task_states(json.loads(machine["definition"]))
        if "FunctionName" in state.get("Parameters", {})
    }
    assert arns == {
        awslambda.get_alias(FunctionName=f"{stack}-{f}", Name="live")["AliasArn"]
        for f in MACHINE_FUNCTIONS
    }
    (alias,) = sfn.list_state_machine_aliases(stateMachineArn=outputs["StateMachineArn"])[
        "stateMachineAliases"
    ]
    assert alias["stateMachineAliasArn"] == outputs["StateMachineAliasArn"]
    schedule = runtime.clients["scheduler"].get_schedule(Name=outputs["ScheduleName"])
    assert schedule["ScheduleExpression"] == cfn_template.parameter_default("ScheduleExpression")
    start_month = f"{stack}-start_month"
    variables = awslambda.get_function_configuration(FunctionName=start_month)["Environment"]
    assert variables["Variables"]["WORKFLOW_ALIAS_ARN"] == outputs["StateMachineAliasArn"]
    start_alias = awslambda.get_alias(FunctionName=start_month, Name="live")["AliasArn"]
    assert schedule["Target"]["Arn"] == start_alias
    assert "<aws.scheduler.scheduled-time>" in schedule["Target"]["Input"]
    assert schedule["Target"]["DeadLetterConfig"]["Arn"].startswith("arn:aws:sqs:")
    assert schedule["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 5
    # A StartMonth that fails reports to the alarm topic (Lambda's on-failure destination).
    failures = awslambda.get_function_event_invoke_config(
        FunctionName=start_month, Qualifier="live"
    )
    assert (failures["MaximumRetryAttempts"], failures["MaximumEventAgeInSeconds"]) == (2, 21600)
    assert failures["DestinationConfig"]["OnFailure"]["Destination"] == outputs["AlarmTopicArn"]
    # An Invoke Scheduler could not make (the dead-letter queue) alarms to the same topic.
    queue = schedule["Target"]["DeadLetterConfig"]["Arn"].rsplit(":", 1)[1]
    alarm = _dead_letter_alarm(runtime, stack)
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 300, 1)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0.0)
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [outputs["AlarmTopicArn"]] and alarm["ActionsEnabled"]
    policy = runtime.clients["sns"].get_topic_attributes(TopicArn=outputs["AlarmTopicArn"])
    (publish,) = [
        s
        for s in json.loads(policy["Attributes"]["Policy"])["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert publish["Condition"] == {"ArnEquals": {"aws:SourceArn": alarm["AlarmArn"]}}


def _dead_letter_alarm(runtime: LocalRuntime, stack: str) -> dict:
    """The stack's alarm on its schedule's dead-letter queue, as CloudWatch describes it."""
    assert runtime.emulator
    cloudwatch = emulator_target(runtime.emulator).client("cloudwatch")
    name = f"{stack}-schedule-dead-letters"
    (alarm,) = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"] or [{}]
    return alarm


def _task_states(definition: dict) -> list[dict]:
    found = []
    for state in definition["States"].values():
        found.append(state)
        for branch in state.get("Branches", []):
            found += _task_states(branch)
    return found


def _lambda_release(runtime: LocalRuntime, stack: str) -> dict[str, object]:
    """What a release of the stack's Lambdas is: layer versions, and each function's versions
    with the version `live` names."""
    awslambda = runtime.clients["lambda"]
    layers = awslambda.list_layer_versions(LayerName=f"{stack}-library")["LayerVersions"]
    release: dict[str, object] = {"layers": sorted(v["LayerVersionArn"] for v in layers)}
    for function in FUNCTIONS:
        name = f"{stack}-{function}"
        versions = awslambda.list_versions_by_function(FunctionName=name)["Versions"]
        release[function] = (
            sorted(v["Version"] for v in versions),
            awslambda.get_alias(FunctionName=name, Name="live")["FunctionVersion"],
        )
    return release


def test_cli_deploy_then_start_runs_the_deployed_machine(
    runtime: LocalRuntime, endpoint: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert runtime.deployment
    before = _lambda_release(runtime, runtime.deployment.stack_name)
    machine_versions = _machine_versions(runtime, runtime.deployment.state_machine_arn)
    assert main(["deploy", *endpoint]) == 0
    printed = capsys.readouterr().out
    # The session's runtime deployed this very release through the same code: nothing to do,
    # in the stack nor through the service APIs (no new layer, function or machine version).
    assert "stack bisonflow: no changes" in printed
    # every function's package, the layer and the ASL
    assert f"0 uploaded, {len(FUNCTIONS) + 2} unchanged" in printed
    assert runtime.deployment.state_machine_arn in printed
    assert _lambda_release(runtime, runtime.deployment.stack_name) == before
    assert _machine_versions(runtime, runtime.deployment.state_machine_arn) == machine_versions
    # The grants an administrator runs, for the SQL role's database user, which the stack
    # creates under that very name.
    user = "IAMR:bisonflow-sql-us-east-1"
    assert runtime.deployment.outputs["SqlDatabaseUser"] == user
    assert f'GRANT CREATE ON DATABASE dev TO "{user}";' in printed
    assert f'GRANT ASSUMEROLE ON default TO "{user}" FOR COPY, UNLOAD;' in printed
    role = runtime.clients["lambda"].get_function_configuration(
        FunctionName="bisonflow-submit_statements"
    )["Role"]
    assert role.endswith(":role/bisonflow-sql-us-east-1")

    # A month without a snapshot: the deployed machine runs (CheckGbif through its alias) and
    # ends at once; whole runs of a deployed machine are the workflow tests'.
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert main(["start", "--month", "2025-12", "--name", name, *endpoint]) == 0
    arn = runtime.deployment.state_machine_arn.replace(":stateMachine:", ":execution:")
    arn += f":{name}"
    assert f"started {arn}" in capsys.readouterr().out
    sfn = runtime.clients["stepfunctions"]
    deadline = time.monotonic() + 180
    while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{arn} still running"
        time.sleep(0.5)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert json.loads(described["input"]) == {"month": "2025-12"}
    assert (
        "GBIF has not published the 2025-12 snapshot" in json.loads(described["output"])["reason"]
    )


def _machine_versions(runtime: LocalRuntime, machine: str) -> list[str]:
    """The machine's published version ARNs, oldest first (moto has no
    ListStateMachineVersions; versions are numbered from 1)."""
    sfn, found = runtime.clients["stepfunctions"], []
    while True:
        arn = f"{machine}:{len(found) + 1}"
        try:
            sfn.describe_state_machine(stateMachineArn=arn)
        except sfn.exceptions.StateMachineDoesNotExist:
            return found
        found.append(arn)


def test_schedule_reads_the_deployed_schedule(
    runtime: LocalRuntime, endpoint: list[str], capsys: pytest.CaptureFixture
) -> None:
    assert runtime.deployment
    scheduler = runtime.clients["scheduler"]
    name = runtime.deployment.outputs["ScheduleName"]
    deployed = scheduler.get_schedule(Name=name)
    keep = {k: deployed[k] for k in ("FlexibleTimeWindow", "Target", "State")}
    scheduler.update_schedule(
        Name=name, ScheduleExpression="cron(30 4 3 * ? *)", ScheduleExpressionTimezone="UTC", **keep
    )
    try:
        assert main(["schedule", "--stack-name", "bisonflow", "--count", "2", *endpoint]) == 0
    finally:
        scheduler.update_schedule(
            Name=name,
            ScheduleExpression=deployed["ScheduleExpression"],
            ScheduleExpressionTimezone=deployed["ScheduleExpressionTimezone"],
            **keep,
        )
    printed = capsys.readouterr().out
    assert "(stack bisonflow)" in printed and "cron(30 4 3 * ? *)" in printed
    fires = [line for line in printed.splitlines() if line.endswith(" 04:30 UTC")]
    assert len(fires) == 2 and all("-03 04:30 UTC" in line for line in fires)


def test_start_checks_its_input_against_the_workflow_schema() -> None:
    assert workflow_input("2026-11", force=True) == {"month": "2026-11", "force": True}
    with pytest.raises(SchemaViolation, match=r"\$\.month"):
        workflow_input("2026-13", force=False)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["start", "--stack-name", "nope"], "Stack with id nope does not exist"),
        (["destroy", "--stack-name", "nope"], "there is no stack nope"),
        (["schedule", "--stack-name", "nope"], "Stack with id nope does not exist"),
        # Refused before anything is built: GBIF's bucket, the workgroup and the stack must
        # share one region GBIF serves; the SQL role's name must fit IAM's 64 characters.
        (["deploy", "--region", "eu-west-1"], "GBIF publishes no open-data bucket in eu-west-1"),
        (
            [
                "deploy",
                "--redshift-workgroup-arn",
                "arn:aws:redshift-serverless:eu-central-1:123456789012:workgroup/0-0",
            ],
            "the Redshift workgroup is in eu-central-1 but the stack would be in us-east-1",
        ),
        (["deploy", "--stack-name", "s" * 51], f"stack name '{'s' * 51}' is too long: the SQL"),
    ],
)
def test_aws_errors_are_one_clear_line(
    endpoint: list[str], capsys: pytest.CaptureFixture, command: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, *endpoint])
    assert exited.value.code == 2
    assert f"bisonflow: {message}" in capsys.readouterr().err


def test_the_stepfunctions_sdk_attaches_to_the_deployed_machine(runtime: LocalRuntime) -> None:
    """The user's `stepfunctions` package (stepfunctions-without-sagemaker) on the deployment."""
    from stepfunctions.workflow import Workflow

    assert runtime.deployment
    sfn = runtime.clients["stepfunctions"]
    arn = runtime.deployment.state_machine_arn
    execution = sfn.start_execution(stateMachineArn=arn, input='{"month": "2001-01"}')
    workflow = Workflow.attach(arn, client=sfn)
    assert workflow.state_machine_arn == arn
    listed = workflow.list_executions(max_items=1000)
    assert execution["executionArn"] in {e.execution_arn for e in listed}


def _capture_change_sets(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The parameters of every CreateChangeSet the deploy code sends."""
    sent: list[dict] = []
    client = Target.client

    def recording(self: Target, service: str) -> object:
        made = client(self, service)
        if service == "cloudformation" and not getattr(made, "_recorded", False):
            made.meta.events.register(
                "provide-client-params.cloudformation.CreateChangeSet",
                lambda params, **_: sent.append(dict(params)),
            )
            made._recorded = True
        return made

    monkeypatch.setattr(Target, "client", recording)
    return sent


def test_a_second_stack_deploys_and_destroys_cleanly(
    runtime: LocalRuntime,
    endpoint: list[str],
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Everything but the retained bucket goes, the emulated resources included."""
    name = "bisonflow-second"
    ec2 = runtime.clients["ec2"]
    subnet = ec2.describe_subnets()["Subnets"][0]
    group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [subnet["VpcId"]]}])[
        "SecurityGroups"
    ][0]
    settings = [
        "--stack-name", name,
        "--bucket-name", "bisonflow-second",
        "--state-machine-name", "bison-second",
        "--task-log-group-name", "bison_task_second",
        "--task-repository-url", "https://example.org/bison.git",
        "--task-subnet-id", subnet["SubnetId"],
        "--task-security-group-id", group["GroupId"],
        "--redshift-workgroup-arn",
        "arn:aws:redshift-serverless:us-east-1:123456789012:workgroup/00000000-0000-0000-0000-000000000000",
    ]  # fmt: skip
    change_sets = _capture_change_sets(monkeypatch)
    assert main(["deploy", *settings, *endpoint]) == 0
    printed = capsys.readouterr().out
    assert "(CREATE)" in printed and "MonthlySchedule (AWS::Scheduler::Schedule) applied" in printed
    # The SQL role has a name (its database user's), which CloudFormation accepts only with
    # CAPABILITY_NAMED_IAM acknowledged (moto does not check; AWS does).
    assert [c["Capabilities"] for c in change_sets] == [["CAPABILITY_NAMED_IAM"]]
    assert 'TO "IAMR:bisonflow-second-sql-us-east-1"' in printed
    sfn, scheduler = runtime.clients["stepfunctions"], runtime.clients["scheduler"]
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:bison-second"
    assert sfn.describe_state_machine(stateMachineArn=machine)["name"] == "bison-second"
    first = _lambda_release(runtime, name)
    assert first["check_gbif"] == (["$LATEST", "1"], "1")
    assert _machine_versions(runtime, machine) == [f"{machine}:1"]
    launch_template = ec2.describe_launch_template_versions(
        LaunchTemplateName=f"{name}-calc_stats"
    )["LaunchTemplateVersions"][0]["LaunchTemplateData"]
    assert launch_template["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    assert launch_template["NetworkInterfaces"][0]["SubnetId"] == subnet["SubnetId"]
    assert _dead_letter_alarm(runtime, name)["AlarmName"] == f"{name}-schedule-dead-letters"

    # A new release of the layer (its Description names the release): a new layer version,
    # a new version of every function on it, `live` moved there; the old versions keep the old
    # layer, so moving `live` back rolls back. (Applied directly: moto's change set lists no
    # changes for new parameter values, so the stack itself would not take a new Release.)
    assert runtime.emulator
    template = cfn_template.template()
    template["Resources"]["LibraryLayer"]["Properties"]["Description"] = "the next release"
    order = split(template, EMULATED, ("AWS::S3::BucketPolicy",))[1]
    emulated.create(emulator_target(runtime.emulator), name, template, order, lambda _: None)
    second = _lambda_release(runtime, name)
    layer_v1, layer_v2 = second["layers"]
    assert [layer_v1] == first["layers"]
    awslambda = runtime.clients["lambda"]
    for function in FUNCTIONS:
        assert second[function] == (["$LATEST", "1", "2"], "2")
        for version, layer in (("1", layer_v1), ("2", layer_v2)):
            config = awslambda.get_function_configuration(
                FunctionName=f"{name}-{function}", Qualifier=version
            )
            assert [entry["Arn"] for entry in config["Layers"]] == [layer]
    # Only Lambdas changed: the machine (which invokes their `live` aliases) is the same
    # revision, so no new machine version.
    assert _machine_versions(runtime, machine) == [f"{machine}:1"]

    # A new machine revision publishes a new version, moves `live`, and keeps the old one.
    template["Resources"]["StateMachine"]["Properties"]["TracingConfiguration"]["Enabled"] = False
    emulated.create(emulator_target(runtime.emulator), name, template, order, lambda _: None)
    assert _machine_versions(runtime, machine) == [f"{machine}:1", f"{machine}:2"]
    (live,) = sfn.list_state_machine_aliases(stateMachineArn=machine)["stateMachineAliases"]
    routing = sfn.describe_state_machine_alias(stateMachineAliasArn=live["stateMachineAliasArn"])
    assert routing["routingConfiguration"][0]["stateMachineVersionArn"] == f"{machine}:2"

    # A redeploy that changes only a parameter value is never reported as "no changes": the
    # emulator's change set lists no resource change for it, so the deploy says it cannot.
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["deploy", "--stack-name", name, "--poll-seconds", "7", *endpoint])
    assert exit_info.value.code == 2
    assert "parameter(s) PollSeconds, Release differ" in capsys.readouterr().err

    assert main(["destroy", "--stack-name", name, *endpoint]) == 0
    printed = capsys.readouterr().out
    assert f"stack {name} deleted. Left behind:" in printed
    assert "the BISON bucket and its data" in printed and "artifact bucket" in printed
    with pytest.raises(sfn.exceptions.StateMachineDoesNotExist):
        sfn.describe_state_machine(stateMachineArn=machine)
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name=f"{name}-monthly")
    with pytest.raises(awslambda.exceptions.ResourceNotFoundException):
        awslambda.get_function(FunctionName=f"{name}-check_gbif")
    assert awslambda.list_layer_versions(LayerName=f"{name}-library")["LayerVersions"] == []
    assert _dead_letter_alarm(runtime, name) == {}
    runtime.clients["s3"].head_bucket(Bucket="bisonflow-second")  # retained with its data
