"""IAM enforcement through moto's own request path: a role session is authorized as on AWS.

A small moto server of this module's own, with the seam installed; roles, policies and
resources are made with the operator's key (which passes: it is the account admin), and the
calls under test are made with STS sessions of those roles (role_credentials), as the local
Lambdas, tasks, state machine and schedule make theirs.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.authorization import ActionAuthenticatorMixin
from moto.server import ThreadedMotoServer

from bisonflow.local.credentials import role_credentials
from bisonflow.local.iam import seam
from bisonflow.local.iam.requests import Authorization

ACCOUNT = "123456789012"
REGION = "us-east-1"
ADMIN = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
PREFIX = "iamt"
BUCKET = f"{PREFIX}-bucket"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["lambda.amazonaws.com", "ec2.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
WORKGROUP_ID = "0f0f0f0f-1111-2222-3333-444455556666"
DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    seam.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    finally:
        server.stop()
        seam.uninstall()


@pytest.fixture(autouse=True)
def no_mapping_defects() -> Iterator[None]:
    seam.PROBLEMS.clear()
    yield
    assert seam.PROBLEMS == [], "the evaluator refused a mapped request as malformed"


@pytest.fixture(scope="module")
def admin(endpoint: str) -> Callable[[str], Any]:
    return lambda service: boto3.client(service, endpoint_url=endpoint, region_name=REGION, **ADMIN)


@pytest.fixture(scope="module")
def bucket(admin: Callable[[str], Any]) -> str:
    s3 = admin("s3")
    s3.create_bucket(Bucket=BUCKET)
    for key in ("in/a.csv", "out/a.csv"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    return BUCKET


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action: str | list[str], resource: str | list[str], **extra: object) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


class Role:
    """A role of this module and clients of one STS session of it."""

    def __init__(self, admin: Callable[[str], Any], endpoint: str, name: str) -> None:
        self.iam, self.endpoint, self.name = admin("iam"), endpoint, f"{PREFIX}-{name}"
        self.arn = self.iam.create_role(RoleName=self.name, AssumeRolePolicyDocument=TRUST)["Role"][
            "Arn"
        ]
        self.credentials = role_credentials(self.arn, "test-session")
        self.session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/test-session"

    def grant(self, *statements: dict, name: str = "grants") -> None:
        self.iam.put_role_policy(
            RoleName=self.name, PolicyName=name, PolicyDocument=policy(*statements)
        )

    def client(self, service: str) -> Any:
        return boto3.client(
            service, endpoint_url=self.endpoint, region_name=REGION, **self.credentials
        )


@pytest.fixture
def make_role(admin: Callable[[str], Any], endpoint: str) -> Callable[[str], Role]:
    made: list[Role] = []

    def make(name: str) -> Role:
        role = Role(admin, endpoint, f"{name}-{len(made)}-{id(made) % 10_000}")
        made.append(role)
        return role

    yield make
    iam = admin("iam")
    for role in made:
        for name in iam.list_role_policies(RoleName=role.name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=role.name, PolicyName=name)
        for attached in iam.list_attached_role_policies(RoleName=role.name)["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=role.name, PolicyArn=attached["PolicyArn"])


def refused(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def code(error: ClientError) -> str:
    return error.response["Error"]["Code"]


def authorized(call: Callable[[], Any]) -> None:
    """The call got past authorization: it succeeded, or the service answered otherwise."""
    try:
        call()
    except ClientError as exc:
        assert code(exc) not in DENIED_CODES, exc


# --- the seam and who passes ---------------------------------------------------------------
def test_seam_target_is_the_check_every_service_calls() -> None:
    owner, name = seam.TARGET.owner(), seam.TARGET.name
    assert owner is ActionAuthenticatorMixin
    assert list(inspect.signature(getattr(owner, name)).parameters)[:3] == [
        "self",
        "iam_request_cls",
        "resource",
    ]
    s3_check = inspect.getsource(ActionAuthenticatorMixin._authenticate_and_authorize_s3_action)
    assert "self._authenticate_and_authorize_action(" in s3_check


def test_every_service_the_project_calls_passes_through_the_seam(
    make_role: Callable[[str], Role],
) -> None:
    role = make_role("nothing")  # no policy at all: every call but GetCallerIdentity fails
    wg = f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/{WORKGROUP_ID}"
    calls = {
        "s3": lambda c: c.get_object(Bucket=BUCKET, Key="in/a.csv"),
        "ssm": lambda c: c.get_parameter(Name="/bisonflow/x"),
        "ec2": lambda c: c.describe_instances(),
        "lambda": lambda c: c.invoke(FunctionName="f", Qualifier="live"),
        "stepfunctions": lambda c: c.send_task_heartbeat(taskToken="token"),
        "redshift-data": lambda c: c.execute_statement(
            Sql="select 1", WorkgroupName=wg, Database="dev"
        ),
        "logs": lambda c: c.create_log_stream(logGroupName="g", logStreamName="s"),
        "scheduler": lambda c: c.get_schedule(Name="monthly"),
        "iam": lambda c: c.list_roles(),
    }
    expected = {
        "s3": "AccessDenied",
        "ec2": "UnauthorizedOperation",
        "iam": "AccessDenied",
    }
    for service, call in calls.items():
        client = role.client(service)
        error = refused(lambda: call(client))  # noqa: B023  (called at once)
        assert code(error) == expected.get(service, "AccessDeniedException"), service
        assert role.session_arn in str(error), service
    identity = role.client("sts").get_caller_identity()
    assert identity["Arn"] == role.session_arn


def test_the_operators_key_is_the_account_admin(admin: Callable[[str], Any], bucket: str) -> None:
    assert admin("s3").get_object(Bucket=bucket, Key="out/a.csv")["Body"].read() == b"x"
    assert admin("iam").list_roles()["Roles"] is not None


def test_an_unknown_session_key_or_token_is_refused(
    endpoint: str, make_role: Callable[[str], Role], bucket: str
) -> None:
    forged = {"aws_access_key_id": "ASIAFORGEDFORGED0000", "aws_secret_access_key": "x"}
    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_session_token="t", **forged
    )
    assert code(refused(lambda: s3.get_object(Bucket=bucket, Key="in/a.csv"))) == (
        "InvalidClientTokenId"
    )
    role = make_role("token")
    wrong = {**role.credentials, "aws_session_token": "not-the-session-token"}
    ssm = boto3.client("ssm", endpoint_url=endpoint, region_name=REGION, **wrong)
    assert code(refused(lambda: ssm.get_parameter(Name="/x"))) == "InvalidClientTokenId"


def test_an_operation_the_mapping_does_not_know_is_refused_naming_it(
    make_role: Callable[[str], Role],
) -> None:
    role = make_role("admin-ish")
    role.grant(allow("*", "*"))
    error = refused(lambda: role.client("iam").list_roles())
    assert code(error) == "AccessDenied"
    assert "does not know what AWS authorizes for iam ListRoles" in str(error)


# --- S3 ------------------------------------------------------------------------------------
def test_s3_object_and_prefix_grants(make_role: Callable[[str], Role], bucket: str) -> None:
    role = make_role("s3")
    role.grant(
        allow("s3:GetObject", f"arn:aws:s3:::{bucket}/in/*"),
        allow(
            "s3:ListBucket",
            f"arn:aws:s3:::{bucket}",
            Condition={"StringLike": {"s3:prefix": "in/*"}},
        ),
    )
    s3 = role.client("s3")
    assert s3.get_object(Bucket=bucket, Key="in/a.csv")["Body"].read() == b"x"
    assert seam.ALLOWED_CALLS[(role.name, "s3:GetObject")] == 1
    error = refused(lambda: s3.get_object(Bucket=bucket, Key="out/a.csv"))
    assert str(error).endswith(
        f"User: {role.session_arn} is not authorized to perform: s3:GetObject on resource: "
        f"arn:aws:s3:::{bucket}/out/a.csv because no identity-based policy allows the "
        "s3:GetObject action"
    )
    assert s3.list_objects_v2(Bucket=bucket, Prefix="in/")["KeyCount"] == 1
    assert code(refused(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="out/"))) == (
        "AccessDenied"
    )
    assert code(refused(lambda: s3.list_objects_v2(Bucket=bucket))) == "AccessDenied"
    error = refused(lambda: s3.put_object(Bucket=bucket, Key="in/b.csv", Body=b"y"))
    assert "s3:PutObject on resource: arn:aws:s3:::" in str(error)


def test_an_explicit_deny_put_through_iam_applies_to_the_next_call(
    admin: Callable[[str], Any], make_role: Callable[[str], Role], bucket: str
) -> None:
    role = make_role("deny")
    role.grant(allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*"))
    s3 = role.client("s3")
    assert s3.get_object(Bucket=bucket, Key="in/a.csv")["Body"].read() == b"x"
    role.grant({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}, name="stop")
    error = refused(lambda: s3.get_object(Bucket=bucket, Key="in/a.csv"))
    assert "with an explicit deny in an identity-based policy" in str(error)
    admin("iam").delete_role_policy(RoleName=role.name, PolicyName="stop")
    assert s3.get_object(Bucket=bucket, Key="in/a.csv")["Body"].read() == b"x"
    # A managed policy attached later counts as well.
    managed = admin("iam").create_policy(
        PolicyName=f"{role.name}-deny",
        PolicyDocument=policy({"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}),
    )["Policy"]["Arn"]
    admin("iam").attach_role_policy(RoleName=role.name, PolicyArn=managed)
    assert code(refused(lambda: s3.get_object(Bucket=bucket, Key="in/a.csv"))) == "AccessDenied"


# --- SSM, Logs -----------------------------------------------------------------------------
def test_ssm_parameters_are_authorized_by_their_arn(
    admin: Callable[[str], Any], make_role: Callable[[str], Role]
) -> None:
    admin("ssm").put_parameter(Name="/iamt/tokens/a", Value="t", Type="SecureString")
    admin("ssm").put_parameter(Name="/iamt/other", Value="t", Type="String")
    role = make_role("ssm")
    role.grant(
        allow(["ssm:GetParameter", "ssm:GetParametersByPath", "ssm:DeleteParameters"],
              [f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/iamt/tokens",
               f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/iamt/tokens/*"]),
    )  # fmt: skip
    ssm = role.client("ssm")
    assert (
        ssm.get_parameter(Name="/iamt/tokens/a", WithDecryption=True)["Parameter"]["Value"] == "t"
    )
    assert len(ssm.get_parameters_by_path(Path="/iamt/tokens", Recursive=True)["Parameters"]) == 1
    error = refused(lambda: ssm.get_parameter(Name="/iamt/other"))
    assert "parameter/iamt/other because no identity-based policy" in str(error)
    error = refused(lambda: ssm.delete_parameters(Names=["/iamt/tokens/a", "/iamt/other"]))
    assert "ssm:DeleteParameters on resource: " in str(error)


def test_log_shipping_needs_the_log_stream_arn(
    admin: Callable[[str], Any], make_role: Callable[[str], Role]
) -> None:
    admin("logs").create_log_group(logGroupName="/iamt/tasks")
    role = make_role("logs")
    role.grant(
        allow(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/iamt/tasks:log-stream:*",
        )
    )
    logs = role.client("logs")
    logs.create_log_stream(logGroupName="/iamt/tasks", logStreamName="i-1")
    logs.put_log_events(
        logGroupName="/iamt/tasks",
        logStreamName="i-1",
        logEvents=[{"timestamp": 1, "message": "m"}],
    )
    role.grant(
        allow(["logs:CreateLogStream"], f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/iamt/tasks")
    )  # the log group's ARN alone is not the resource CreateLogStream is authorized on
    error = refused(lambda: logs.create_log_stream(logGroupName="/iamt/tasks", logStreamName="i-2"))
    assert "log-group:/iamt/tasks:log-stream:i-2" in str(error)


def test_a_missing_object_is_403_without_list_bucket(
    make_role: Callable[[str], Role], bucket: str
) -> None:
    role = make_role("marker")
    read = allow("s3:GetObject", f"arn:aws:s3:::{bucket}/*")
    role.grant(read)
    s3 = role.client("s3")
    error = refused(lambda: s3.get_object(Bucket=bucket, Key="in/missing.csv"))
    assert "s3:ListBucket on resource: arn:aws:s3:::" in str(error)
    role.grant(read, allow("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
    assert code(refused(lambda: s3.get_object(Bucket=bucket, Key="in/missing.csv"))) == (
        "NoSuchKey"
    )
    assert code(refused(lambda: s3.head_object(Bucket=bucket, Key="in/missing.csv"))) == "404"


def test_work_done_in_process_as_a_role_is_authorized_too(
    make_role: Callable[[str], Role], bucket: str
) -> None:
    # E.g. Redshift's UNLOAD writing S3 as the IAM role its SQL names.
    role = make_role("redshift")
    role.grant(allow("s3:PutObject", f"arn:aws:s3:::{bucket}/in/*"))
    put = lambda key: [Authorization("s3:PutObject", f"arn:aws:s3:::{bucket}/{key}")]  # noqa: E731
    seam.authorize_role(role.arn, "redshift", put("in/part-0000"), REGION)
    with pytest.raises(seam.RoleAccessDenied, match="s3:PutObject on resource: arn:aws:s3:::"):
        seam.authorize_role(role.arn, "redshift", put("out/part-0000"), REGION)
