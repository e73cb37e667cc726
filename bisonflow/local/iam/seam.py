"""The seam: moto's per-request authorization check, replaced by one that evaluates IAM as AWS.

Every moto service's request handler calls
`moto.core.authorization.ActionAuthenticatorMixin._authenticate_and_authorize_action`:
`BaseResponse.call_action` for the query and JSON services (SSM, EC2, Lambda, Step Functions,
Redshift Data, Logs, Scheduler, STS, IAM) and S3's handlers through
`_authenticate_and_authorize_s3_action` (tests/test_iam_seam.py proves it for each service
this project calls). moto's own version runs only after INITIAL_NO_AUTH_ACTION_COUNT requests
and checks the Action alone ("TODO add support for the Resource and Condition parts of IAM
policies", moto/iam/access_control.py), so a grant on the wrong ARN would pass. This one, for
a request signed by an STS role session (bisonflow.local.credentials.role_credentials):

1. parses the request into its API operation and parameters with moto's own botocore-model
   parsers;
2. maps it to the (action, resource ARN, condition keys) pairs AWS authorizes
   (`requests.py`, `ec2_requests.py`); an operation the mapping does not know is refused;
3. reads the role's policies as they are now (`policies.py`) and evaluates every pair
   (`evaluator.py`); all must be allowed;
4. refuses as the service does: AccessDeniedException (JSON services), AccessDenied (S3, the
   query services), UnauthorizedOperation (EC2), with AWS's message "User: <session ARN> is
   not authorized to perform: <action> on resource: <ARN> because no identity-based policy
   allows the <action> action" (or "... with an explicit deny in an identity-based policy").

Any other key (the operator's "local" key of the CLI, the deploy and the tests) is the
account's administrator and passes, as root would.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from typing import Any

from moto.core.authorization import ActionAuthenticatorMixin
from moto.core.exceptions import ServiceException
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import determine_request_protocol
from moto.core.routing import get_service_router
from moto.core.utils import get_service_model
from moto.redshiftdata.responses import RedshiftDataAPIServiceResponse
from moto.s3.exceptions import S3ClientError
from werkzeug.exceptions import HTTPException

from bisonflow.local.iam.data_api_requests import STATEMENT_OWNERS
from bisonflow.local.iam.evaluator import (
    ALLOWED,
    EXPLICIT_DENY,
    Decision,
    Evaluator,
    EvaluatorUnavailable,
    InvalidSimulation,
    Simulation,
)
from bisonflow.local.iam.policies import RoleSession, UnknownSession, find_session, role_policies
from bisonflow.local.iam.requests import (
    Authorization,
    Operation,
    UnmappedOperation,
    authorizations,
)
from bisonflow.local.seams import Patch, Seam

log = logging.getLogger("bisonflow.iam")

#: A created resource's ARN ends in "/*"; the evaluator would read the star as "any resource
#: the policies name", so it is evaluated under an id no policy names (see NEW in
#: ec2_requests): `instance/*` and `*` match it, `instance/i-0abc` and `instance/i-*` do not,
#: exactly as those patterns match the literal ARN AWS evaluates.
NEW_RESOURCE_ID = "(new)"
#: (role name, action) -> how many requests were allowed: what each caller really does.
ALLOWED_CALLS: Counter[tuple[str, str]] = Counter()
#: Requests the evaluator refused as malformed (a mapping defect) or could not evaluate;
#: the tests assert it stays empty.
PROBLEMS: list[str] = []

_state: dict[str, Any] = {}
EC2_DENIED = "You are not authorized to perform this operation."


class AccessRefused(HTTPException):
    """A refusal in the service's own error format (JSON, query XML or EC2 XML)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(description=body)
        self.code = status


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def refusal(self: Any, code: str, message: str) -> Exception:
    """The error a service answers a refused request with, in its protocol's format."""
    protocol = get_service_model(self.boto3_service_name).metadata["protocol"]
    if protocol == "rest-xml":
        error = S3ClientError(code, message)
        error.code, error.http_status_code = code, 403
        return error
    if protocol == "ec2":
        if code == "AccessDenied":
            # EC2's shape: "You are not authorized to perform this operation. User: ... (EC2
            # API reference, "Error codes for the Amazon EC2 API", UnauthorizedOperation);
            # AWS appends an encoded authorization message, which the emulator does not.
            code, message = "UnauthorizedOperation", f"{EC2_DENIED} {message}"
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{_xml_escape(message)}</Message></Error></Errors>"
            "<RequestID>0</RequestID></Response>"
        )
        return AccessRefused(403, body)
    if protocol in ("json", "rest-json"):
        code = "AccessDeniedException" if code == "AccessDenied" else code
        return AccessRefused(
            400 if protocol == "json" else 403, json.dumps({"__type": code, "message": message})
        )
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{_xml_escape(message)}</Message></Error>"
        "<RequestId>0</RequestId></ErrorResponse>"
    )
    return AccessRefused(403, body)


#: How AWS's messages name each kind of policy (IAM user guide, "Troubleshoot access denied
#: error messages").
POLICY_KINDS = {
    "identity": "identity-based policy",
    "resource": "resource-based policy",
    "boundary": "permissions boundary",
}


def denial_message(session: RoleSession, authorization: Authorization, decision: Decision) -> str:
    """AWS's AccessDenied text: "... because no <kind> allows the <action> action" or
    "... with an explicit deny in a(n) <kind>"."""
    on = "" if authorization.resource == "*" else f" on resource: {authorization.resource}"
    kind = POLICY_KINDS[decision.denied_by]
    if decision.result == EXPLICIT_DENY:
        article = "an" if kind[0] in "aeiou" else "a"
        reason = f"with an explicit deny in {article} {kind}"
    else:
        reason = f"because no {kind} allows the {authorization.action} action"
    return f"User: {session.arn} is not authorized to perform: {authorization.action}{on} {reason}"


def request_access_key(self: Any) -> str | None:
    """The access key a moto request was signed with (header or presigned query), if any."""
    found = re.search(r"Credential=([^/,\s]+)/", self.headers.get("Authorization", ""))
    if found:
        return found.group(1)
    query = self.querystring.get("X-Amz-Credential")
    return query[0].split("/")[0] if query else None


def parse_operation(self: Any, session: RoleSession) -> Operation:
    """The request's API operation and parameters, parsed with the service's botocore model."""
    service = self.boto3_service_name
    model = get_service_model(service)
    request = self.normalized_request
    uri_params: dict[str, Any] = {}
    if model.metadata["protocol"].startswith("rest"):
        operation_model, uri_params = get_service_router(service).match(request)
        name = operation_model.name
    else:
        name = self._get_action()
        operation_model = model.operation_model(name)
    parser = PROTOCOL_PARSERS[determine_request_protocol(model, request.content_type)]
    params = parser(operation_model).parse(
        {
            "method": request.method,
            "values": request.values,
            "headers": request.headers,
            "body": request.data,
            "url_path": request.path,
            "url_params": uri_params,
        }
    )
    return Operation(service, name, dict(params), self.region, session)


def global_context(session: RoleSession, region: str) -> dict[str, str | list[str]]:
    """The global condition keys AWS sets on every request of a role session (IAM user guide,
    "AWS global condition context keys"). aws:SecureTransport is "true": the SDKs call AWS over
    TLS, and the emulator's plain HTTP on loopback is not what is being modelled."""
    now = time.time()
    return {
        "aws:PrincipalArn": session.role_arn,
        "aws:PrincipalAccount": session.account_id,
        "aws:PrincipalType": "AssumedRole",
        "aws:userid": session.user_id,
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "true",
        "aws:CurrentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "aws:EpochTime": str(int(now)),
    }


def _simulation(
    session: RoleSession, operation: Operation, authorization: Authorization, policies: Any
) -> Simulation:
    resource = authorization.resource
    if resource != "*" and resource.endswith("/*"):
        resource = resource[:-1] + NEW_RESOURCE_ID
    parts = resource.split(":", 5)
    accountless = len(parts) == 6 and parts[2] == "ssm" and parts[4] == ""
    validate_as = ":".join([*parts[:4], session.account_id, parts[5]]) if accountless else None
    return Simulation(
        principal=session.arn,
        action=authorization.action,
        resource=resource,
        resource_account=session.account_id,
        context={**global_context(session, operation.region), **authorization.context},
        identity_policies=policies.identity,
        resource_policy=authorization.resource_policy,
        permission_boundary=policies.permission_boundary,
        validate_as=validate_as,
    )


def authorize(self: Any, session: RoleSession) -> None:
    """Evaluate the request as `session`; raise the service's refusal if AWS would refuse."""
    try:
        operation = parse_operation(self, session)
        needed = authorizations(operation)
    except UnmappedOperation as exc:
        raise refusal(self, "AccessDenied", str(exc)) from None
    except (HTTPException, ServiceException):
        # The mapping looked up a resource the request names and moto has no such resource
        # (a launch template, an instance profile...): the service's own not-found answer,
        # which moto gives next, is what AWS answers too.
        return
    except Exception as exc:
        PROBLEMS.append(f"{self.boto3_service_name}: {exc!r}")
        log.exception("IAM enforcement could not map a %s request", self.boto3_service_name)
        raise refusal(self, "AccessDenied", f"emulator IAM enforcement failed: {exc!r}") from None
    if not needed:
        return
    policies = role_policies(session)
    simulations = [_simulation(session, operation, a, policies) for a in needed]
    try:
        decisions = _state["evaluator"].decide(simulations)
    except (InvalidSimulation, EvaluatorUnavailable) as exc:
        PROBLEMS.append(f"{operation.service} {operation.name}: {exc}")
        log.error(
            "IAM enforcement could not evaluate %s %s: %s", operation.service, operation.name, exc
        )
        raise refusal(self, "AccessDenied", f"emulator IAM enforcement failed: {exc}") from None
    for authorization, decision in zip(needed, decisions, strict=True):
        if decision.result != ALLOWED:
            message = denial_message(session, authorization, decision)
            log.info("denied: %s", message)
            raise refusal(self, "AccessDenied", message)
    for authorization in needed:
        ALLOWED_CALLS[(session.role_name, authorization.action)] += 1
    self._iam_session = session


class RoleAccessDenied(PermissionError):
    """AWS would refuse a role what the emulator was about to do in-process on its behalf."""


def authorize_role(
    role_arn: str, session_name: str, needed: list[Authorization], region: str
) -> None:
    """Raise RoleAccessDenied, with AWS's message, unless a session of `role_arn` may do all
    of `needed`; a no-op while enforcement is off.

    For work the emulator does in-process, with no request to the seam, that AWS does as a
    role: e.g. Redshift's COPY, UNLOAD and external tables read and write S3 as the IAM role
    the SQL names.
    """
    if not installed():
        return
    from moto.iam.models import iam_backends

    from bisonflow.local.iam.policies import PARTITION

    account = role_arn.split(":")[4]
    role = iam_backends[account][PARTITION].get_role_by_arn(role_arn)
    session = RoleSession(account, role_arn, role.name, role.id, session_name, "")
    operation = Operation("in-process", "in-process", {}, region, session)
    policies = role_policies(session)
    simulations = [_simulation(session, operation, a, policies) for a in needed]
    for authorization, decision in zip(
        needed, _state["evaluator"].decide(simulations), strict=True
    ):
        if decision.result != ALLOWED:
            raise RoleAccessDenied(denial_message(session, authorization, decision))


def _authenticate_and_authorize_action(
    self: Any, iam_request_cls: type, resource: str = "*"
) -> None:
    """The replacement of moto's check: role sessions are evaluated, other keys pass."""
    key = request_access_key(self)
    if not key:
        return
    try:
        session = find_session(self.current_account, key)
    except UnknownSession:
        raise refusal(
            self, "InvalidClientTokenId", "The security token included in the request is invalid."
        ) from None
    if session is None:
        return
    token = (
        self.headers.get("X-Amz-Security-Token")
        or (self.querystring.get("X-Amz-Security-Token") or [None])[0]
    )
    if token != session.session_token:
        raise refusal(
            self, "InvalidClientTokenId", "The security token included in the request is invalid."
        )
    authorize(self, session)


def _recording_call_action(self: Any) -> Any:
    """Redshift Data's handler, recording who submitted each statement (its owner's aws:userid
    is the condition key redshift-data:statement-owner-iam-userid of later reads)."""
    status, headers, body = _moto_call_action(self)
    session = getattr(self, "_iam_session", None)
    if (
        session
        and status == 200
        and self._get_action() in ("ExecuteStatement", "BatchExecuteStatement")
    ):
        STATEMENT_OWNERS[json.loads(body)["Id"]] = session.user_id
    return status, headers, body


#: Redshift Data's handler as moto has it (inherited from BaseResponse).
_moto_call_action = RedshiftDataAPIServiceResponse.call_action

#: What the seam replaces (bisonflow.local.seams): the check every service calls, and Redshift
#: Data's handler, which records who submitted each statement.
TARGET = Patch(
    ActionAuthenticatorMixin.__module__,
    "ActionAuthenticatorMixin._authenticate_and_authorize_action",
    ("self", "iam_request_cls", "resource"),
    replacement=_authenticate_and_authorize_action,
)
SEAM = Seam(
    __name__,
    TARGET,
    Patch(
        RedshiftDataAPIServiceResponse.__module__,
        "RedshiftDataAPIServiceResponse.call_action",
        ("self",),
        replacement=_recording_call_action,
    ),
)


def installed() -> bool:
    return "evaluator" in _state


def install() -> None:
    """Enforce IAM in this process's moto; the evaluator starts on first use.

    moto's backends and classes are process-wide, so installs are counted: each install() is
    undone by one uninstall(), and the last one restores moto.
    """
    _state["users"] = _state.get("users", 0) + 1
    if installed():
        return
    SEAM.install()
    _state["evaluator"] = Evaluator()


def uninstall() -> None:
    """Undo one install(); the last restores moto's own check and stops the evaluator."""
    if not installed():
        return
    _state["users"] -= 1
    if _state["users"] > 0:
        return
    SEAM.uninstall()
    _state.pop("evaluator").stop()
    STATEMENT_OWNERS.clear()
