"""Who is calling, and the policies AWS would evaluate for them, read live from moto.

A request signed with a key of one of moto's STS sessions (AssumeRole, which is how
bisonflow.local.credentials.role_credentials makes every caller's credentials) is made as
that role. Its policies are read from moto's IAM backend at every request: the inline
policies, the default version of every attached managed policy, and the permissions boundary,
so a change through the IAM API (PutRolePolicy, AttachRolePolicy, CreatePolicyVersion, ...)
applies to the very next call. AWS evaluates the policies in force when a request arrives,
after a change has propagated (IAM is eventually consistent: IAM User Guide, "Changes that I
make are not always immediately visible"); the emulator applies it at once, the earliest AWS
could.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from moto.iam.models import iam_backends
from moto.sts.models import sts_backends

PARTITION = "aws"


@dataclass(frozen=True)
class RoleSession:
    """An STS assumed-role session: the principal of a request signed with its key."""

    account_id: str
    role_arn: str
    role_name: str
    role_id: str
    session_name: str
    session_token: str

    @property
    def arn(self) -> str:
        """The session's principal ARN, as AWS names it in AccessDenied messages."""
        role = f"assumed-role/{self.role_name}/{self.session_name}"
        return f"arn:{PARTITION}:sts::{self.account_id}:{role}"

    @property
    def user_id(self) -> str:
        """aws:userid of a role session: the role's unique id, a colon, the session name."""
        return f"{self.role_id}:{self.session_name}"


class UnknownSession(LookupError):
    """A temporary (ASIA...) key that no STS session of the emulator issued."""


def find_session(account_id: str, access_key_id: str) -> RoleSession | None:
    """The session that issued `access_key_id`, or None for a long-term key (the operator's).

    Raises UnknownSession for a temporary key no session issued: AWS refuses such a request
    (InvalidClientTokenId) rather than treating it as anyone.
    """
    for assumed in sts_backends[account_id][PARTITION].assumed_roles:
        if assumed.access_key_id == access_key_id:
            role = iam_backends[account_id][PARTITION].get_role_by_arn(assumed.role_arn)
            return RoleSession(
                account_id=account_id,
                role_arn=assumed.role_arn,
                role_name=role.name,
                role_id=role.id,
                session_name=assumed.session_name,
                session_token=assumed.session_token,
            )
    if access_key_id.startswith("ASIA"):
        raise UnknownSession(access_key_id)
    return None


def _document(text: Any) -> dict:
    if isinstance(text, dict):
        return text
    text = str(text)
    return json.loads(text if text.lstrip().startswith("{") else unquote(text))


def _managed_document(account_id: str, policy_arn: str) -> dict:
    policy = iam_backends[account_id][PARTITION].get_policy(policy_arn)
    default = next(v for v in policy.versions if v.is_default)
    return _document(default.document)


@dataclass(frozen=True)
class RolePolicies:
    identity: dict[str, dict]  # policy name or ARN -> document
    permission_boundary: dict | None


def role_policies(session: RoleSession) -> RolePolicies:
    """The role's identity policies and permissions boundary as they are now."""
    role = iam_backends[session.account_id][PARTITION].get_role_by_arn(session.role_arn)
    identity = {f"inline:{name}": _document(doc) for name, doc in role.policies.items()}
    for arn in list(role.managed_policies):
        identity[arn] = _managed_document(session.account_id, arn)
    boundary = role.permissions_boundary_arn
    return RolePolicies(
        identity=identity,
        permission_boundary=_managed_document(session.account_id, boundary) if boundary else None,
    )
