"""The IAM evaluator against AWS's documented evaluation examples.

Each case is an example or rule from the IAM User Guide: "Policy evaluation logic" (explicit
deny wins; without an allow the request is implicitly denied; a permissions boundary limits an
identity policy), "IAM JSON policy elements: NotAction" and "NotResource", "Condition operators"
(...IfExists, ForAnyValue/ForAllValues with multivalued keys, including ForAllValues on a
missing key), "IAM policy elements: Variables and tags". Plus the evaluator's validation: a
request AWS would never make is an error, not a decision.
"""

from __future__ import annotations

import pytest

from bisonflow.local.iam.evaluator import (
    ALLOWED,
    EXPLICIT_DENY,
    IMPLICIT_DENY,
    Evaluator,
    InvalidSimulation,
    Simulation,
)

SESSION = "arn:aws:sts::123456789012:assumed-role/worker/session-1"
USER_ID = "AROAEXAMPLEID:session-1"
BUCKET = "arn:aws:s3:::bison"


@pytest.fixture(scope="module")
def evaluator() -> Evaluator:
    running = Evaluator()
    yield running
    running.stop()


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def decide(
    evaluator: Evaluator,
    action: str,
    resource: str,
    *statements: dict,
    context: dict | None = None,
    boundary: dict | None = None,
) -> str:
    simulation = Simulation(
        principal=SESSION,
        action=action,
        resource=resource,
        resource_account="123456789012",
        context={"aws:userid": USER_ID, **(context or {})},
        identity_policies={"p": policy(*statements)},
        permission_boundary=boundary,
    )
    return evaluator.decide([simulation])[0].result


def allow(action: str | list[str], resource: str | list[str], **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: str | list[str], resource: str | list[str], **extra: object) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_explicit_deny_overrides_any_allow(evaluator: Evaluator) -> None:
    granted = allow("s3:*", "*")
    assert decide(evaluator, "s3:GetObject", f"{BUCKET}/a", granted) == ALLOWED
    denied = deny("s3:GetObject", f"{BUCKET}/*")
    assert decide(evaluator, "s3:GetObject", f"{BUCKET}/a", granted, denied) == EXPLICIT_DENY


def test_no_allow_is_an_implicit_deny(evaluator: Evaluator) -> None:
    other = allow("s3:GetObject", "arn:aws:s3:::other/*")
    assert decide(evaluator, "s3:GetObject", f"{BUCKET}/a", other) == IMPLICIT_DENY


def test_not_action_allows_everything_but_the_named_actions(evaluator: Evaluator) -> None:
    # IAM User Guide, NotAction: "Allow ... NotAction iam:*" allows every service but IAM.
    everything_but_iam = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    assert decide(evaluator, "s3:GetObject", f"{BUCKET}/a", everything_but_iam) == ALLOWED
    role = "arn:aws:iam::123456789012:role/task"
    assert decide(evaluator, "iam:PassRole", role, everything_but_iam) == IMPLICIT_DENY


def test_not_resource_denies_everything_outside_it(evaluator: Evaluator) -> None:
    # IAM User Guide, NotResource: deny all S3 outside one bucket, whatever else allows.
    only_bison = {
        "Effect": "Deny",
        "Action": "s3:*",
        "NotResource": [BUCKET, f"{BUCKET}/*"],
    }
    everything = allow("s3:*", "*")
    assert decide(evaluator, "s3:GetObject", f"{BUCKET}/a", everything, only_bison) == ALLOWED
    outside = "arn:aws:s3:::elsewhere/a"
    assert decide(evaluator, "s3:GetObject", outside, everything, only_bison) == EXPLICIT_DENY


def test_string_like_on_s3_prefix(evaluator: Evaluator) -> None:
    listing = allow("s3:ListBucket", BUCKET, Condition={"StringLike": {"s3:prefix": "in/*"}})
    inside = {"s3:prefix": "in/2025-08/"}
    assert decide(evaluator, "s3:ListBucket", BUCKET, listing, context=inside) == ALLOWED
    outside = {"s3:prefix": "out/"}
    assert decide(evaluator, "s3:ListBucket", BUCKET, listing, context=outside) == IMPLICIT_DENY
    # A request without the key does not match a condition on it.
    assert decide(evaluator, "s3:ListBucket", BUCKET, listing) == IMPLICIT_DENY


def test_if_exists_matches_when_the_key_is_absent(evaluator: Evaluator) -> None:
    # Condition operators, ...IfExists: "If the policy key is not present, evaluate as true".
    instance = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    statement = allow(
        "ec2:TerminateInstances",
        instance,
        Condition={"StringEqualsIfExists": {"ec2:InstanceType": "t3.micro"}},
    )
    assert decide(evaluator, "ec2:TerminateInstances", instance, statement) == ALLOWED
    other_type = {"ec2:InstanceType": "m5.large"}
    assert (
        decide(evaluator, "ec2:TerminateInstances", instance, statement, context=other_type)
        == IMPLICIT_DENY
    )


def test_set_operators_on_multivalued_tag_keys(evaluator: Evaluator) -> None:
    parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/bisonflow/x"
    any_value = allow(
        "ssm:PutParameter",
        parameter,
        Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["team"]}},
    )
    tagged = {"aws:TagKeys": ["team", "cost"], "aws:RequestTag/team": "bison"}
    assert decide(evaluator, "ssm:PutParameter", parameter, any_value, context=tagged) == ALLOWED
    all_values = allow(
        "ssm:PutParameter",
        parameter,
        Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}},
    )
    assert (
        decide(evaluator, "ssm:PutParameter", parameter, all_values, context=tagged)
        == IMPLICIT_DENY
    )
    # The documented caveat: ForAllValues is true when the key is missing (no tags at all).
    assert decide(evaluator, "ssm:PutParameter", parameter, all_values) == ALLOWED


def test_policy_variable_aws_userid(evaluator: Evaluator) -> None:
    # The Data API's own-statement pattern (Redshift management guide, query editor policy).
    own = allow(
        "redshift-data:DescribeStatement",
        "*",
        Condition={"StringEquals": {"redshift-data:statement-owner-iam-userid": "${aws:userid}"}},
    )
    mine = {"redshift-data:statement-owner-iam-userid": USER_ID}
    assert decide(evaluator, "redshift-data:DescribeStatement", "*", own, context=mine) == ALLOWED
    theirs = {"redshift-data:statement-owner-iam-userid": "AROAOTHER:session-2"}
    assert (
        decide(evaluator, "redshift-data:DescribeStatement", "*", own, context=theirs)
        == IMPLICIT_DENY
    )


def test_permissions_boundary_limits_the_identity_policy(evaluator: Evaluator) -> None:
    # Policy evaluation logic: an action must be allowed by the identity policy AND the boundary.
    everything = allow("s3:*", "*")
    boundary = policy(allow("s3:GetObject", "*"))
    read = decide(evaluator, "s3:GetObject", f"{BUCKET}/a", everything, boundary=boundary)
    write = decide(evaluator, "s3:PutObject", f"{BUCKET}/a", everything, boundary=boundary)
    assert (read, write) == (ALLOWED, IMPLICIT_DENY)


@pytest.mark.parametrize(
    ("action", "resource", "context", "reason"),
    [
        ("s3:GetObjcet", f"{BUCKET}/a", {}, "invalid.action"),
        ("s3:GetObject", BUCKET, {}, "no.resource.types"),
        ("states:SendTaskSuccess", "arn:aws:states:us-east-1:1:stateMachine:m", {}, "wildcard"),
        ("s3:GetObject", f"{BUCKET}/a", {"ec2:ResourceTag/x": "1"}, "do not apply"),
    ],
)
def test_a_request_aws_never_makes_is_an_error(
    evaluator: Evaluator, action: str, resource: str, context: dict, reason: str
) -> None:
    with pytest.raises(InvalidSimulation, match=reason):
        decide(evaluator, action, resource, allow("*", "*"), context=context)


def test_one_sidecar_answers_concurrent_threads_each_its_own(evaluator: Evaluator) -> None:
    # moto's server is threaded: answers must never cross between requests.
    from concurrent.futures import ThreadPoolExecutor

    granted = allow("s3:GetObject", f"{BUCKET}/in/*")

    def one(index: int) -> tuple[int, str]:
        key = f"in/{index}" if index % 2 else f"out/{index}"
        return index, decide(evaluator, "s3:GetObject", f"{BUCKET}/{key}", granted)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, range(80)))
    assert all((d == ALLOWED) == bool(i % 2) for i, d in results)


def test_a_refusal_names_the_kind_of_policy_that_refused(evaluator: Evaluator) -> None:
    def one(boundary: dict | None = None, resource_policy: dict | None = None) -> tuple:
        simulation = Simulation(
            principal=SESSION,
            action="s3:GetObject",
            resource=f"{BUCKET}/a",
            resource_account="123456789012",
            context={"aws:userid": USER_ID},
            identity_policies={"p": policy(allow("s3:*", "*"))},
            resource_policy=resource_policy,
            permission_boundary=boundary,
        )
        return tuple(evaluator.decide([simulation])[0])

    assert one(boundary=policy(allow("ec2:*", "*"))) == (IMPLICIT_DENY, "boundary")
    assert one(boundary=policy(deny("s3:*", "*"))) == (EXPLICIT_DENY, "boundary")
    bucket_deny = policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:GetObject",
            "Resource": f"{BUCKET}/*",
        }
    )
    assert one(resource_policy=bucket_deny) == (EXPLICIT_DENY, "resource")
