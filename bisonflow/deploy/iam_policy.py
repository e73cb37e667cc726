"""Least privilege, checked: no `*` action, no `service:*`, no Resource "*" but where AWS
offers no resource to scope to (UNSCOPABLE, each with the reason docs/aws.md lists).

`bisonflow deploy` refuses a template that breaks these rules, and the tests run the same
check on the template and on bad policies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

#: Actions AWS authorizes only on Resource "*", and why.
UNSCOPABLE = {
    "redshift-data:DescribeStatement": "the Data API has no statement ARN; it authorizes by "
    "the identity that submitted the statement",
    "redshift-data:GetStatementResult": "the Data API has no statement ARN; it authorizes by "
    "the identity that submitted the statement",
    "redshift-data:CancelStatement": "the Data API has no statement ARN; it authorizes by "
    "the identity that submitted the statement",
    "redshift-data:ListStatements": "the Data API has no statement ARN; it lists only the "
    "statements of the caller's IAM role (ListStatements, RoleLevel)",
    "ec2:DescribeInstances": "EC2 Describe* actions support no resource-level permissions",
    "ec2:DescribeNetworkInterfaces": "EC2 Describe* actions support no resource-level "
    "permissions (Lambdas in a VPC only)",
    "ec2:DescribeSubnets": "EC2 Describe* actions support no resource-level permissions "
    "(Lambdas in a VPC only, as AWSLambdaVPCAccessExecutionRole grants it)",
    "states:SendTaskSuccess": "task-token callbacks have no resource ARN; the token names the task",
    "states:SendTaskFailure": "task-token callbacks have no resource ARN; the token names the task",
    "states:SendTaskHeartbeat": "task-token callbacks have no resource ARN; the token names the "
    "task",
    "ecr:GetAuthorizationToken": "the registry login token is account-wide (image from ECR only)",
    "logs:CreateLogDelivery": "CloudWatch Logs vended delivery (state machine logging) takes no "
    "resource ARN",
    "logs:GetLogDelivery": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:UpdateLogDelivery": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:DeleteLogDelivery": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:ListLogDeliveries": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:PutResourcePolicy": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:DescribeResourcePolicies": "CloudWatch Logs vended delivery takes no resource ARN",
    "logs:DescribeLogGroups": "CloudWatch Logs vended delivery takes no resource ARN",
    "xray:PutTraceSegments": "X-Ray segment and sampling APIs have no resource ARN",
    "xray:PutTelemetryRecords": "X-Ray segment and sampling APIs have no resource ARN",
    "xray:GetSamplingRules": "X-Ray segment and sampling APIs have no resource ARN",
    "xray:GetSamplingTargets": "X-Ray segment and sampling APIs have no resource ARN",
}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, policy document) for every identity policy in the template."""
    for logical_id, resource in template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{logical_id}/{policy.get('PolicyName')}", policy["PolicyDocument"]
        elif resource.get("Type") in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            yield logical_id, props["PolicyDocument"]


def violations(template: dict[str, Any], unscopable: dict[str, str] = UNSCOPABLE) -> list[str]:
    """Each wildcard the rules forbid, as "where: what" (empty when the template complies)."""
    found = []
    for where, document in _policy_documents(template):
        for index, statement in enumerate(_listed(document.get("Statement", []))):
            name = f"{where} statement {statement.get('Sid', index)}"
            if "Effect" not in statement:
                found.append(f"{name}: not a plain statement (a condition?); cannot be checked")
                continue
            if statement["Effect"] != "Allow":
                continue
            if "NotAction" in statement or "NotResource" in statement:
                found.append(f"{name}: NotAction/NotResource grant more than they name")
            actions = [str(a) for a in _listed(statement.get("Action", []))]
            for action in actions:
                if action == "*" or action.endswith(":*"):
                    found.append(f"{name}: action {action!r} is a wildcard")
            if "*" in _listed(statement.get("Resource", [])):
                broad = sorted(a for a in actions if a not in unscopable)
                if broad:
                    found.append(f"{name}: Resource '*' for {', '.join(broad)}")
    return found
