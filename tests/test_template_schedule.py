"""The template's monthly schedule: what it may invoke, and how a start that fails or an event
that cannot be delivered reaches the operators."""

from __future__ import annotations

from test_template import resources_of


def _statements(template: dict, role: str) -> list[dict]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def test_the_schedule_may_only_invoke_start_month_which_may_only_start_live(
    template: dict,
) -> None:
    """Least privilege for the scheduled start: the schedule's role invokes StartMonth's alias
    (Lambda authorizes an alias call on the alias ARN) and dead-letters; StartMonth's role
    starts the machine only through `live` (the qualifier condition)."""
    schedule_role = template["Resources"]["ScheduleRole"]["Properties"]
    assert "ManagedPolicyArns" not in schedule_role
    assert [(s["Action"], s["Resource"]) for s in _statements(template, "ScheduleRole")] == [
        ("lambda:InvokeFunction", {"Ref": "StartMonthAlias"}),
        ("sqs:SendMessage", {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}),
    ]
    start, report = _statements(template, "StartMonthRole")
    assert (start["Action"], start["Resource"]) == (
        "states:StartExecution",
        {"Ref": "StateMachine"},
    )
    assert start["Condition"] == {
        "ForAnyValue:StringEquals": {"states:StateMachineQualifier": ["live"]}
    }
    # Lambda sends a failed start's record with the function's role: Publish to that topic only.
    assert (report["Action"], report["Resource"]) == ("sns:Publish", {"Ref": "AlarmTopic"})
    assert "Condition" not in report


def test_one_dead_lettered_schedule_event_alarms_and_only_that_alarm_may_publish(
    template: dict,
) -> None:
    """An Invoke Scheduler could not make lands in the dead-letter queue and nothing else
    reports it: the alarm fires on one visible message there (SQS's 5-minute metric, so one
    5-minute period), an idle empty queue sends no data and must read OK, and the topic lets
    CloudWatch publish for that alarm only."""
    (logical_id,) = resources_of(template, "AWS::CloudWatch::Alarm")
    alarm = template["Resources"][logical_id]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    queue = template["Resources"]["MonthlySchedule"]["Properties"]["Target"]["DeadLetterConfig"]
    assert queue == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["Statistic"] == "Maximum" and alarm["Period"] == 300
    assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 1
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert alarm.get("ActionsEnabled", True) is True
    policy = template["Resources"]["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    (cloudwatch,) = [
        s
        for s in policy["PolicyDocument"]["Statement"]
        if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert (cloudwatch["Effect"], cloudwatch["Action"]) == ("Allow", "sns:Publish")
    assert cloudwatch["Resource"] == {"Ref": "AlarmTopic"}
    assert cloudwatch["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": [logical_id, "Arn"]}}
    }
    assert "KmsMasterKeyId" not in template["Resources"]["AlarmTopic"]["Properties"]
