"""The Redshift Data API's authorization: the workgroup, its credentials, the statement owner.

Sources: Service Authorization Reference, "Actions, resources, and condition keys for Amazon
Redshift Data API" (ExecuteStatement and BatchExecuteStatement on the cluster or workgroup;
statements have no resource type; redshift-data:statement-owner-iam-userid); Redshift
management guide, "Authorizing access to the Amazon Redshift Data API" and "Configuring IAM
permissions".
"""

from __future__ import annotations

from bisonflow.local.iam.requests import Authorization, Operation, UnmappedOperation, maps

#: Statement id -> aws:userid of the session that submitted it, recorded by the seam.
STATEMENT_OWNERS: dict[str, str] = {}


def _workgroup_arn(operation: Operation, workgroup: str) -> str:
    """The workgroup ARN the Data API authorizes. The API accepts the ARN as WorkgroupName
    (Data API reference, ExecuteStatement: "The serverless workgroup name or Amazon Resource
    Name (ARN)"); from a bare name the emulator cannot know the workgroup's id that its ARN
    carries, so it refuses rather than guess."""
    if workgroup.startswith("arn:"):
        return workgroup
    raise UnmappedOperation(
        f"redshift-data {operation.name} names workgroup {workgroup!r}; the emulator's IAM "
        "enforcement needs the workgroup ARN (the Data API accepts it as WorkgroupName) to "
        "authorize the call against it"
    )


@maps("redshift-data", "ExecuteStatement", "BatchExecuteStatement")
def _execute_statement(operation: Operation) -> list[Authorization]:
    """The statement's action on the workgroup (or cluster) ARN, plus the credentials the Data
    API gets as the caller: redshift-serverless:GetCredentials on the workgroup (Redshift
    management guide, "Authorizing access to the Amazon Redshift Data API": "confirm the
    policy allows the use of the redshift-serverless:GetCredentials action"),
    redshift:GetClusterCredentialsWithIAM on the database (or GetClusterCredentials on the
    dbuser) for a cluster, or secretsmanager:GetSecretValue on SecretArn."""
    p = operation.params
    action = f"redshift-data:{operation.name}"
    if p.get("WorkgroupName"):
        target = _workgroup_arn(operation, p["WorkgroupName"])
        credentials = Authorization("redshift-serverless:GetCredentials", target)
    elif p.get("ClusterIdentifier"):
        cluster = p["ClusterIdentifier"]
        target = operation.arn("redshift", f"cluster:{cluster}")
        if p.get("DbUser"):
            credentials = Authorization(
                "redshift:GetClusterCredentials",
                operation.arn("redshift", f"dbuser:{cluster}/{p['DbUser']}"),
            )
        else:
            credentials = Authorization(
                "redshift:GetClusterCredentialsWithIAM",
                operation.arn("redshift", f"dbname:{cluster}/{p['Database']}"),
            )
    else:
        raise UnmappedOperation(f"redshift-data {operation.name} names no workgroup or cluster")
    if p.get("SecretArn"):
        credentials = Authorization("secretsmanager:GetSecretValue", p["SecretArn"])
    return [Authorization(action, target), credentials]


@maps(
    "redshift-data",
    "DescribeStatement",
    "GetStatementResult",
    "GetStatementResultV2",
    "CancelStatement",
)
def _on_statement(operation: Operation) -> list[Authorization]:
    """A statement has no ARN: Resource "*", with redshift-data:statement-owner-iam-userid,
    the aws:userid of the session that ran it (SAR, Amazon Redshift Data API; the
    AmazonRedshiftQueryEditor policy limits these actions with it). GetStatementResultV2 is
    authorized by redshift-data:GetStatementResult (management guide, "Configuring IAM
    permissions"). A sub-statement id "<id>:<n>" belongs to its batch's owner."""
    statement = operation.params["Id"].split(":")[0]
    owner = STATEMENT_OWNERS.get(statement)
    context = {"redshift-data:statement-owner-iam-userid": owner} if owner else {}
    action = (
        "GetStatementResult" if operation.name.startswith("GetStatementResult") else operation.name
    )
    return [Authorization(f"redshift-data:{action}", "*", context)]


@maps("redshift-data", "ListStatements")
def _list_statements(operation: Operation) -> list[Authorization]:
    return [Authorization("redshift-data:ListStatements", "*")]
