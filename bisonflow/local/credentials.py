"""Temporary credentials of an IAM role, as AWS hands them to the code that runs as the role.

On AWS a Lambda gets its execution role's credentials in its environment, an EC2 task gets its
instance profile role's credentials from instance metadata, and Step Functions and EventBridge
Scheduler call other services with the credentials of the role the state machine or schedule
names. Locally every one of them gets a session of that role from the emulator's STS
(moto's AssumeRole), so the IAM seam (bisonflow.local.iam) can tell who is calling and
evaluate the role's own policies, and the code that uses them stays unchanged.
"""

from __future__ import annotations

from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sts.models import sts_backends

from bisonflow.local import EMULATOR_REGION

#: The account the emulator serves: moto's default account.
ACCOUNT_ID = DEFAULT_ACCOUNT_ID
#: How long a session lasts (STS's default for AssumeRole). Nothing local expires it.
SESSION_SECONDS = 3600


def role_credentials(role_arn: str, session_name: str) -> dict[str, str]:
    """A new session of `role_arn`, as boto3 client keyword arguments.

    The session is made in-process through moto's STS backend, exactly as the emulator's
    AssumeRole would make it, so its access key identifies the role on every later request.
    For the callers that live in the emulator's process (Lambda workers, the EC2 agent).
    """
    role = sts_backends[ACCOUNT_ID]["aws"].assume_role(
        region_name=EMULATOR_REGION,
        role_session_name=session_name[:64],
        role_arn=role_arn,
        policy="",
        duration=SESSION_SECONDS,
        external_id="",
    )
    return {
        "aws_access_key_id": role.access_key_id,
        "aws_secret_access_key": role.secret_access_key,
        "aws_session_token": role.session_token,
    }


def assumed_role_credentials(sts: Any, role_arn: str, session_name: str) -> dict[str, str]:
    """A new session of `role_arn` through an STS client's AssumeRole, in the same form.

    For a caller outside the emulator's process (`bisonflow local fire-schedule`): it asks the
    endpoint's STS as EventBridge Scheduler asks STS for its schedule's role.
    """
    session = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name[:64], DurationSeconds=SESSION_SECONDS
    )["Credentials"]
    return {
        "aws_access_key_id": session["AccessKeyId"],
        "aws_secret_access_key": session["SecretAccessKey"],
        "aws_session_token": session["SessionToken"],
    }


def as_environment(credentials: dict[str, str]) -> dict[str, str]:
    """The same credentials as the environment variables Lambda sets for its runtime."""
    return {
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": credentials["aws_session_token"],
    }
