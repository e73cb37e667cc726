"""What AWS authorizes for each API operation a role makes: action, resource ARN(s), context.

One entry per operation (boto3 service name, API operation name), each citing the Service
Authorization Reference ("SAR", docs.aws.amazon.com/service-authorization/latest/reference,
"Actions, resources, and condition keys for <service>") or the service's own IAM page. An
operation a role session makes that is not listed here is refused (UnmappedOperation): the
mapping must be complete, never permissive. Every answer is also validated by the evaluator
against the SAR data it ships (action names, resource ARN types, condition keys per action),
so a wrong ARN shape fails loudly in the tests.

A resource that the call creates and has no id yet is named as AWS's own example policies
for it name it, `arn:...:instance/*` (EC2 user guide, "Example policies to control access
the Amazon EC2 API", Launch instances (RunInstances)).
EC2's RunInstances and the other multi-resource operations live in `ec2_requests.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bisonflow.local.iam.policies import PARTITION, RoleSession


@dataclass(frozen=True)
class Operation:
    """One API request as the service received it, already parsed into its API parameters."""

    service: str  # boto3's service name: "s3", "stepfunctions", "redshift-data", ...
    name: str  # the API operation: "GetObject", "StartExecution", ...
    params: dict[str, Any]
    region: str
    session: RoleSession

    @property
    def account(self) -> str:
        return self.session.account_id

    def arn(self, service: str, resource: str, account: str | None = None) -> str:
        """arn:aws:<service>:<region>:<account>:<resource> in this request's region."""
        owner = self.account if account is None else account
        return f"arn:{PARTITION}:{service}:{self.region}:{owner}:{resource}"


@dataclass(frozen=True)
class Authorization:
    """One (action, resource) pair AWS evaluates for an operation; all must be allowed."""

    action: str
    resource: str
    # Read-only, so a mapper's {key: str} or {key: [str]} is one without a cast.
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    resource_policy: dict | None = None


class UnmappedOperation(LookupError):
    """A role made an operation whose authorization this emulator does not know."""


Mapper = Callable[[Operation], list[Authorization]]
MAPPERS: dict[tuple[str, str], Mapper] = {}


def maps(service: str, *operations: str) -> Callable[[Mapper], Mapper]:
    def register(mapper: Mapper) -> Mapper:
        for operation in operations:
            MAPPERS[(service, operation)] = mapper
        return mapper

    return register


def authorizations(operation: Operation) -> list[Authorization]:
    mapper = MAPPERS.get((operation.service, operation.name))
    if mapper is None:
        raise UnmappedOperation(
            f"the emulator's IAM enforcement does not know what AWS authorizes for "
            f"{operation.service} {operation.name}, so it refuses the call by "
            f"{operation.session.arn}; "
            "add the operation to bisonflow/local/iam/requests.py (from the Service "
            "Authorization Reference)"
        )
    return mapper(operation)


def tag_context(tags: dict[str, str], prefix: str) -> dict[str, str | list[str]]:
    """Condition keys for tags: `<prefix>/<key>` per tag (aws:ResourceTag, ec2:ResourceTag...)."""
    return {f"{prefix}/{key}": value for key, value in tags.items()}


def request_tag_context(tags: dict[str, str]) -> dict[str, str | list[str]]:
    """aws:RequestTag/<key> and aws:TagKeys for tags a request sets (IAM User Guide, tags)."""
    if not tags:
        return {}
    return {**tag_context(tags, "aws:RequestTag"), "aws:TagKeys": sorted(tags)}


# --- STS -------------------------------------------------------------------------------------
@maps("sts", "GetCallerIdentity")
def _caller_identity(operation: Operation) -> list[Authorization]:
    """No permission is needed: "no permissions are required to perform this operation"
    (STS API reference, GetCallerIdentity); an explicit deny cannot block it either."""
    return []


# --- S3 --------------------------------------------------------------------------------------
def _bucket_arn(bucket: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}"


def _object_arn(bucket: str, key: str) -> str:
    return f"arn:{PARTITION}:s3:::{bucket}/{key}"


def _bucket_policy(bucket: str, account: str) -> dict | None:
    """The bucket's policy as stored in the emulator, which AWS evaluates with the caller's."""
    from moto.s3.models import s3_backends

    try:
        stored = s3_backends[account][PARTITION].get_bucket(bucket).policy
    except Exception:  # a missing bucket: S3 answers NoSuchBucket after authorization
        return None
    return json.loads(stored) if stored else None


def _s3(
    operation: Operation, action: str, resource: str, context: dict[str, Any] | None = None
) -> Authorization:
    """An S3 authorization with the bucket's policy and the given (non-empty) condition keys."""
    return Authorization(
        action=f"s3:{action}",
        resource=resource,
        context={k: v for k, v in (context or {}).items() if v is not None},
        resource_policy=_bucket_policy(operation.params["Bucket"], operation.account),
    )


def _object_exists(operation: Operation) -> bool:
    from moto.s3.models import s3_backends

    try:
        backend = s3_backends[operation.account][PARTITION]
        return backend.get_object(operation.params["Bucket"], operation.params["Key"]) is not None
    except Exception:  # no such bucket or key
        return False


@maps("s3", "GetObject", "HeadObject")
def _get_object(operation: Operation) -> list[Authorization]:
    """SAR (Amazon S3): GetObject on the object ARN; HeadObject needs s3:GetObject
    (S3 API reference, HeadObject, Permissions); a version needs s3:GetObjectVersion.

    For a key that does not exist, S3 answers 404 only to a caller that may also list the
    bucket, and 403 otherwise ("If you don't have the s3:ListBucket permission, Amazon S3
    returns an HTTP status code 403 Forbidden ("access denied") error", same section), so
    code that tests for a missing object needs s3:ListBucket too. The documentation names no
    s3:prefix for this check, so none is set: a ListBucket grant limited by s3:prefix does not
    count here.
    """
    p = operation.params
    action = "GetObjectVersion" if p.get("VersionId") else "GetObject"
    needed = [_s3(operation, action, _object_arn(p["Bucket"], p["Key"]))]
    if not _object_exists(operation):
        needed.append(_s3(operation, "ListBucket", _bucket_arn(p["Bucket"])))
    return needed


@maps("s3", "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload")
def _put_object(operation: Operation) -> list[Authorization]:
    """s3:PutObject on the object ARN for the single and the multipart upload (S3 user guide,
    "Multipart upload API and permissions"); a Tagging header also needs
    s3:PutObjectTagging and an ACL s3:PutObjectAcl (S3 API reference, PutObject)."""
    p = operation.params
    target = _object_arn(p["Bucket"], p["Key"])
    context = {
        "s3:x-amz-acl": p.get("ACL"),
        "s3:x-amz-server-side-encryption": p.get("ServerSideEncryption"),
    }
    found = [_s3(operation, "PutObject", target, context)]
    if p.get("Tagging"):
        found.append(_s3(operation, "PutObjectTagging", target))
    if p.get("ACL") or any(k.startswith("Grant") for k in p):
        found.append(_s3(operation, "PutObjectAcl", target))
    return found


@maps("s3", "CopyObject", "UploadPartCopy")
def _copy_object(operation: Operation) -> list[Authorization]:
    """PutObject on the target and GetObject on the source (S3 API reference, CopyObject)."""
    p = operation.params
    source = p["CopySource"] if isinstance(p["CopySource"], str) else ""
    source_bucket, _, source_key = source.lstrip("/").partition("/")
    source_key = source_key.split("?versionId=")[0]
    return [
        _s3(operation, "PutObject", _object_arn(p["Bucket"], p["Key"])),
        Authorization(
            "s3:GetObject",
            _object_arn(source_bucket, source_key),
            resource_policy=_bucket_policy(source_bucket, operation.account),
        ),
    ]


@maps("s3", "AbortMultipartUpload")
def _abort_upload(operation: Operation) -> list[Authorization]:
    p = operation.params
    return [_s3(operation, "AbortMultipartUpload", _object_arn(p["Bucket"], p["Key"]))]


@maps("s3", "DeleteObject")
def _delete_object(operation: Operation) -> list[Authorization]:
    p = operation.params
    action = "DeleteObjectVersion" if p.get("VersionId") else "DeleteObject"
    return [_s3(operation, action, _object_arn(p["Bucket"], p["Key"]))]


@maps("s3", "DeleteObjects")
def _delete_objects(operation: Operation) -> list[Authorization]:
    """s3:DeleteObject on every object named (S3 API reference, DeleteObjects)."""
    p = operation.params
    return [
        _s3(operation, "DeleteObject", _object_arn(p["Bucket"], item["Key"]))
        for item in p["Delete"]["Objects"]
    ]


@maps("s3", "ListObjectsV2", "ListObjects", "HeadBucket")
def _list_bucket(operation: Operation) -> list[Authorization]:
    """s3:ListBucket on the bucket ARN with s3:prefix, s3:delimiter and s3:max-keys as the
    request gives them (SAR, Amazon S3, condition keys); HeadBucket needs s3:ListBucket."""
    p = operation.params
    context = {
        "s3:prefix": p.get("Prefix"),
        "s3:delimiter": p.get("Delimiter"),
        "s3:max-keys": str(p["MaxKeys"]) if p.get("MaxKeys") is not None else None,
    }
    return [_s3(operation, "ListBucket", _bucket_arn(p["Bucket"]), context)]


@maps("s3", "GetBucketLocation")
def _bucket_location(operation: Operation) -> list[Authorization]:
    return [_s3(operation, "GetBucketLocation", _bucket_arn(operation.params["Bucket"]))]


# --- SSM Parameter Store ---------------------------------------------------------------------
def _parameter_arn(operation: Operation, name: str) -> str:
    """A parameter's ARN: `parameter` + the name (its leading slash kept, else one added);
    AWS's public parameters (/aws/service/...) have no account (SSM user guide, "Public
    parameters")."""
    if name.startswith("arn:"):
        return name
    path = name if name.startswith("/") else f"/{name}"
    account = "" if path.startswith("/aws/service/") else None
    return operation.arn("ssm", f"parameter{path}", account)


@maps("ssm", "GetParameter", "DeleteParameter", "GetParameterHistory", "LabelParameterVersion")
def _one_parameter(operation: Operation) -> list[Authorization]:
    return [
        Authorization(f"ssm:{operation.name}", _parameter_arn(operation, operation.params["Name"]))
    ]


@maps("ssm", "PutParameter")
def _put_parameter(operation: Operation) -> list[Authorization]:
    """ssm:PutParameter on the parameter with ssm:Overwrite; Tags also need
    ssm:AddTagsToResource (SAR, AWS Systems Manager)."""
    p = operation.params
    tags = {t["Key"]: t["Value"] for t in p.get("Tags") or []}
    context: dict[str, str | list[str]] = {"ssm:Overwrite": str(bool(p.get("Overwrite"))).lower()}
    target = _parameter_arn(operation, p["Name"])
    found = [Authorization("ssm:PutParameter", target, {**context, **request_tag_context(tags)})]
    if tags:
        found.append(Authorization("ssm:AddTagsToResource", target, request_tag_context(tags)))
    return found


@maps("ssm", "GetParameters", "DeleteParameters")
def _many_parameters(operation: Operation) -> list[Authorization]:
    """One authorization per parameter named (SAR: the parameter resource type)."""
    action = f"ssm:{operation.name}"
    return [Authorization(action, _parameter_arn(operation, n)) for n in operation.params["Names"]]


@maps("ssm", "GetParametersByPath")
def _parameters_by_path(operation: Operation) -> list[Authorization]:
    """On the path's own parameter ARN, with ssm:Recursive (SAR, GetParametersByPath)."""
    p = operation.params
    context = {"ssm:Recursive": "true" if p.get("Recursive") else "false"}
    return [Authorization("ssm:GetParametersByPath", _parameter_arn(operation, p["Path"]), context)]


@maps("ssm", "DescribeParameters")
def _describe_parameters(operation: Operation) -> list[Authorization]:
    return [Authorization("ssm:DescribeParameters", "*")]


# --- Lambda ----------------------------------------------------------------------------------
def function_arn(operation: Operation, name: str, qualifier: str | None) -> str:
    """The function ARN as invoked: a name, partial or full ARN, with its version or alias.

    Lambda authorizes a qualified call against the qualified ARN, so a policy naming only the
    unqualified function does not allow invoking its alias (Step Functions developer guide,
    "Invoke an AWS Lambda function with Step Functions", IAM policies for calling AWS Lambda:
    "An unqualified ARN (without the `:*` suffix) does not grant permission to invoke a
    specific version or alias, and the invocation will fail with an Access Denied error").
    """
    if name.startswith("arn:"):
        arn = name
    elif ":function:" in name:  # "<account>:function:<name>[:qualifier]"
        arn = f"arn:{PARTITION}:lambda:{operation.region}:{name}"
    else:
        arn = operation.arn("lambda", f"function:{name}")
    if qualifier and len(arn.split(":")) == 7:
        arn = f"{arn}:{qualifier}"
    return arn


@maps("lambda", "Invoke", "InvokeAsync", "InvokeWithResponseStream")
def _invoke(operation: Operation) -> list[Authorization]:
    """lambda:InvokeFunction on the (qualified) function ARN (SAR, AWS Lambda)."""
    p = operation.params
    target = function_arn(operation, p["FunctionName"], p.get("Qualifier"))
    return [Authorization("lambda:InvokeFunction", target)]


@maps("lambda", "GetFunction", "GetFunctionConfiguration")
def _get_function(operation: Operation) -> list[Authorization]:
    p = operation.params
    target = function_arn(operation, p["FunctionName"], p.get("Qualifier"))
    return [Authorization(f"lambda:{operation.name}", target)]


# --- Step Functions --------------------------------------------------------------------------
def state_machine(arn: str) -> tuple[str, str | None]:
    """(unqualified state machine ARN, qualifier or None) of a machine, version or alias ARN.

    Step Functions authorizes a call on a version or alias against the state machine's own
    ARN, and exposes the version number or alias name as `states:StateMachineQualifier`
    (Step Functions developer guide, "Authorization for versions and aliases in Step
    Functions workflows", auth-version-alias.html: "To authorize a version or an alias to
    invoke an API action, Step Functions uses the state machine's ARN instead of using the
    version ARN or alias ARN"). The awsdocs GitHub copy of that guide was archived before
    versions and aliases existed, so the page itself is the source.
    """
    parts = arn.split(":")
    if len(parts) == 8:
        return ":".join(parts[:7]), parts[7]
    return arn, None


def _on_state_machine(operation: Operation, action: str, arn: str) -> list[Authorization]:
    unqualified, qualifier = state_machine(arn)
    # The SAR types the key ArrayOfString, so policies test it with ForAnyValue:StringEquals.
    context = {"states:StateMachineQualifier": [qualifier]} if qualifier else {}
    return [Authorization(action, unqualified, context)]


@maps("stepfunctions", "StartExecution", "StartSyncExecution")
def _start_execution(operation: Operation) -> list[Authorization]:
    """states:StartExecution (also for StartSyncExecution) on the state machine (SAR)."""
    action = f"states:{operation.name}"
    return _on_state_machine(operation, action, operation.params["stateMachineArn"])


@maps(
    "stepfunctions",
    "DescribeStateMachine",
    "ListExecutions",
    "ListStateMachineVersions",
    "ListStateMachineAliases",
)
def _on_machine(operation: Operation) -> list[Authorization]:
    """On the state machine (SAR: the statemachine resource type), a version's or alias's
    ARN authorized against the machine's with its qualifier."""
    action = f"states:{operation.name}"
    return _on_state_machine(operation, action, operation.params["stateMachineArn"])


@maps("stepfunctions", "DescribeStateMachineAlias")
def _on_alias(operation: Operation) -> list[Authorization]:
    """SAR: DescribeStateMachineAlias takes the statemachine resource type; the alias ARN is
    authorized against the machine's, the alias's name its qualifier."""
    action = f"states:{operation.name}"
    return _on_state_machine(operation, action, operation.params["stateMachineAliasArn"])


@maps("stepfunctions", "SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat")
def _task_callback(operation: Operation) -> list[Authorization]:
    """No resource type: the task token is the authority, so Resource must be "*" (SAR)."""
    return [Authorization(f"states:{operation.name}", "*")]


@maps(
    "stepfunctions",
    "DescribeExecution",
    "StopExecution",
    "GetExecutionHistory",
    "RedriveExecution",
    "DescribeStateMachineForExecution",
)
def _on_execution(operation: Operation) -> list[Authorization]:
    return [Authorization(f"states:{operation.name}", operation.params["executionArn"])]


# --- CloudWatch Logs -------------------------------------------------------------------------
def _log_group_arn(operation: Operation, group: str) -> str:
    return operation.arn("logs", f"log-group:{group}")


@maps("logs", "CreateLogGroup")
def _create_log_group(operation: Operation) -> list[Authorization]:
    p = operation.params
    tags = request_tag_context(p.get("tags") or {})
    return [
        Authorization("logs:CreateLogGroup", _log_group_arn(operation, p["logGroupName"]), tags)
    ]


@maps("logs", "CreateLogStream", "PutLogEvents")
def _log_stream(operation: Operation) -> list[Authorization]:
    """Both on the log-stream ARN `log-group:<group>:log-stream:<stream>` (SAR, CloudWatch
    Logs: CreateLogStream and PutLogEvents take the log-stream resource type)."""
    p = operation.params
    stream = f"{_log_group_arn(operation, p['logGroupName'])}:log-stream:{p['logStreamName']}"
    return [Authorization(f"logs:{operation.name}", stream)]


@maps("logs", "DescribeLogStreams", "FilterLogEvents")
def _on_log_group(operation: Operation) -> list[Authorization]:
    """On the log-group ARN (SAR, CloudWatch Logs: both take the log-group resource type)."""
    group = operation.params["logGroupName"]
    return [Authorization(f"logs:{operation.name}", _log_group_arn(operation, group))]


# --- EventBridge Scheduler -------------------------------------------------------------------
@maps("scheduler", "GetSchedule")
def _get_schedule(operation: Operation) -> list[Authorization]:
    """On the schedule ARN `schedule/<group>/<name>`, the group "default" when the request
    names none (SAR, Amazon EventBridge Scheduler; API reference, GetSchedule: GroupName)."""
    p = operation.params
    schedule = f"schedule/{p.get('GroupName') or 'default'}/{p['Name']}"
    return [Authorization("scheduler:GetSchedule", operation.arn("scheduler", schedule))]


# --- CloudFormation --------------------------------------------------------------------------
def _stack_arn(operation: Operation, name_or_id: str) -> str:
    """A stack's ARN, `stack/<name>/<id>`: a stack id is its ARN already; a name is looked up
    in the emulator. A stack that does not exist is evaluated as `stack/<name>/*` (AWS answers
    ValidationError after authorization)."""
    if name_or_id.startswith("arn:"):
        return name_or_id
    from moto.cloudformation.exceptions import ValidationError
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[operation.account][operation.region]
    try:
        (stack,) = backend.describe_stacks(name_or_id)
    except ValidationError:  # no such stack
        return operation.arn("cloudformation", f"stack/{name_or_id}/*")
    return str(stack.stack_id)


@maps("cloudformation", "DescribeStacks")
def _describe_stacks(operation: Operation) -> list[Authorization]:
    """On the stack it names (SAR, AWS CloudFormation: the stack resource type), "*" when it
    names none (every stack of the account is listed)."""
    name = operation.params.get("StackName")
    target = _stack_arn(operation, name) if name else "*"
    return [Authorization("cloudformation:DescribeStacks", target)]


# --- SNS -------------------------------------------------------------------------------------
def _topic_policy(topic: str, account: str) -> dict | None:
    """The topic's access policy as stored in the emulator: in one account AWS allows a call
    that either it or the caller's policies allow (IAM User Guide, "Policy evaluation logic")."""
    from moto.sns.models import sns_backends

    try:
        stored = sns_backends[account][topic.split(":")[3]].get_topic(topic).policy
    except Exception:  # a missing topic: SNS answers NotFound after authorization
        return None
    return json.loads(stored) if stored else None


@maps("sns", "Publish")
def _publish(operation: Operation) -> list[Authorization]:
    """sns:Publish on the topic (SAR, Amazon SNS), with the topic's policy."""
    topic = operation.params.get("TopicArn") or operation.params.get("TargetArn") or "*"
    policy = _topic_policy(topic, operation.account) if topic != "*" else None
    return [Authorization("sns:Publish", topic, resource_policy=policy)]


# The services whose mappings live in their own modules register themselves on import.
from bisonflow.local.iam import data_api_requests, ec2_requests  # noqa: E402, F401
