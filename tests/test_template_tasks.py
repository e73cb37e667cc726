"""definitions/bisonflow.cfn.yaml: what the task launches and the cleanup rule may do (the
relaunch of a lost task, the Spot and On-Demand pools, runs that end without their cleanup)."""

from __future__ import annotations

import json

import pytest

from bisonflow.deploy.emulated.intrinsics import Resolver


def test_a_relaunch_may_end_only_this_stacks_instances(template: dict) -> None:
    """launch_task terminates a lost attempt's instance before relaunching the task: only
    instances tagged with this stack."""
    statements = template["Resources"]["LaunchTaskRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    (terminate,) = [s for s in statements if s["Action"] == "ec2:TerminateInstances"]
    assert terminate["Condition"] == {
        "StringEquals": {"aws:ResourceTag/bisonflow:stack": {"Ref": "AWS::StackName"}}
    }
    assert any(s["Action"] == "ec2:DescribeInstances" for s in statements)


def test_aborted_and_timed_out_runs_are_cleaned_up_by_a_rule(template: dict) -> None:
    """StopExecution and the machine's TimeoutSeconds run no Catch: a rule sends those
    executions' status changes to the cleanup Lambda, which may be invoked by that rule only,
    with the input CleanupTasks gives it (tests/test_faults_stopped.py runs it)."""
    from bisonflow.schemas import validate

    resources = template["Resources"]
    rule = resources["ExecutionEndedUncleanRule"]["Properties"]
    assert set(rule["EventPattern"]["detail"]["status"]) == {"ABORTED", "TIMED_OUT", "FAILED"}
    assert rule["EventPattern"]["detail"]["stateMachineArn"] == [{"Ref": "StateMachine"}]
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "CleanupTaskAlias"}
    detail = {
        "$.detail.name": "run-1",
        "$.detail.executionArn": "arn:aws:states:us-east-1:123456789012:execution:m:run-1",
        "$.detail.status": "ABORTED",
    }
    rendered = target["InputTransformer"]["InputTemplate"]
    for name, path in target["InputTransformer"]["InputPathsMap"].items():
        rendered = rendered.replace(f"<{name}>", detail[path])
    validate(json.loads(rendered), "cleanup_task.input")
    permission = resources["ExecutionEndedUncleanInvokesCleanup"]["Properties"]
    assert permission["FunctionName"] == {"Ref": "CleanupTaskAlias"}
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": ["ExecutionEndedUncleanRule", "Arn"]}


@pytest.mark.parametrize(
    ("given", "types", "markets"),
    [
        (
            {},
            {
                "ANNOTATE_RIIS_INSTANCE_TYPES": "t4g.micro,t4g.small,m7g.medium",
                "CALC_STATS_INSTANCE_TYPES": "t4g.small,t4g.medium,m7g.medium",
            },
            ["spot", "on-demand"],
        ),
        (
            {"CalcStatsFallbackInstanceTypes": "", "TaskOnDemandFallback": "false"},
            {
                "ANNOTATE_RIIS_INSTANCE_TYPES": "t4g.micro,t4g.small,m7g.medium",
                "CALC_STATS_INSTANCE_TYPES": "t4g.small,",
            },
            ["spot"],
        ),
    ],
)
def test_launch_task_may_launch_only_the_pools_it_tries(
    template: dict, given: dict, types: dict, markets: list[str]
) -> None:
    """The instance types and markets launch_task falls back through (its environment) are
    the ones its role may launch: an instance of another type, or On-Demand when the stack
    says no, is refused by IAM (ec2:InstanceType, ec2:InstanceMarketType on instance/*)."""
    defaults = {k: p["Default"] for k, p in template["Parameters"].items() if "Default" in p}
    resolver = Resolver(
        template,
        {**defaults, **given},
        {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "1"},
        lambda logical, attribute: f"<{logical}>",
    )
    variables = template["Resources"]["LaunchTaskFunction"]["Properties"]["Environment"]
    environment = resolver.value(variables["Variables"])
    assert {k: environment[k] for k in types} == types
    assert environment["TASK_ON_DEMAND_FALLBACK"] == given.get("TaskOnDemandFallback", "true")
    statements = template["Resources"]["LaunchTaskRole"]["Properties"]["Policies"][0][
        "PolicyDocument"
    ]["Statement"]
    (instances,) = [s for s in statements if s["Sid"] == "LaunchOnlyTheTaskInstanceTypes"]
    condition = resolver.value(instances["Condition"])["StringEquals"]
    assert resolver.value(instances["Resource"]) == "arn:aws:ec2:us-east-1:1:instance/*"
    listed = {t for value in types.values() for t in value.split(",") if t}
    assert set(condition["ec2:InstanceType"]) - {""} == listed
    assert condition["ec2:InstanceMarketType"] == markets
    # No other statement grants RunInstances on instances.
    others = [s for s in statements if s is not instances and s["Action"] == "ec2:RunInstances"]
    assert not any("instance/*" in json.dumps(s["Resource"]) for s in others)
