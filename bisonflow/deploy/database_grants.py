"""The database user the workflow's SQL runs as, and the GRANTs an administrator runs once.

The Data API runs a statement submitted to a Redshift Serverless workgroup with temporary
credentials as the database user mapped 1:1 from the caller's IAM identity: IAM role R is
database user `IAMR:R` (Redshift Management Guide, "Authorizing access to the Amazon Redshift
Data API"). CloudFormation would give the SQL Lambda's role a random name, so the template
names it (SubmitStatementsRole.RoleName = sql_role_name()) and this module can print the
statements that give that user what the SQL in bisonflow.sql.workflow_sql needs:

* CREATE EXTERNAL SCHEMA creates a schema in the database, which takes CREATE on the
  database ("For databases, CREATE allows users to create schemas within the database":
  Database Developer Guide, GRANT). Its issuer owns it (CREATE EXTERNAL SCHEMA), and only the
  external schema's owner or a superuser may CREATE EXTERNAL TABLE in it (CREATE EXTERNAL
  TABLE); where the schema exists already, ALTER SCHEMA ... OWNER hands it over.
* CREATE TABLE / DROP TABLE of the month's tables in the PUBLIC schema: every user has CREATE
  and USAGE on PUBLIC by default (CREATE USER, usage notes), so this GRANT matters only where
  an administrator revoked them. The user owns the tables it creates, so COPY (INSERT on the
  table: COPY) and DROP TABLE ("Table owner with the USAGE privilege on the schema": DROP
  TABLE) need nothing more.
* COPY and UNLOAD with IAM_ROLE: ASSUMEROLE, needed once a superuser has revoked it from
  PUBLIC (GRANT, "Usage notes for granting the ASSUMEROLE permission").
* The user exists after its first connection; before that an administrator may create it
  ("If a Redshift user isn't automatically created, you can create one by running a CREATE
  USER statement ... specifying the user name in the format IAM:<user name>": Management
  Guide, "Using a federated identity to manage Amazon Redshift access to local resources and
  Amazon Redshift Spectrum external tables"), so the GRANTs can run before the first month.

Why a named user and not a database role passed through the IAM role's `RedshiftDbRoles`
tag (Management Guide, "Defining database roles to grant to federated users in Amazon
Redshift Serverless"): that path also needs the role to call tag:GetResources and
tag:GetTagKeys, which take no resource ARN (two more Resource "*" grants), and a database role
still needs the same GRANTs; a predictable user needs neither.
"""

from __future__ import annotations

from dataclasses import fields

from bisonflow.deploy.stack import DeployError
from bisonflow.sql.workflow_sql import SqlTarget

#: IAM role names are 1-64 characters (IAM API reference, CreateRole, RoleName).
MAX_ROLE_NAME = 64
#: The public schema, where the month's tables are created (unqualified names).
TABLE_SCHEMA = "public"


def sql_role_name(stack_name: str, region: str) -> str:
    """The SQL Lambda's role name, as the template builds it. IAM names are unique in the
    account across regions, so the region is part of it."""
    name = f"{stack_name}-sql-{region}"
    if len(name) > MAX_ROLE_NAME:
        raise DeployError(
            f"stack name {stack_name!r} is too long: the SQL role's name {name!r} would have "
            f"{len(name)} characters, over IAM's {MAX_ROLE_NAME} (use at most "
            f"{MAX_ROLE_NAME - len(name) + len(stack_name)} characters)"
        )
    return name


def database_user(role_name: str) -> str:
    """The database user the Data API maps an IAM role to."""
    return f"IAMR:{role_name}"


def external_schema() -> str:
    """The external schema the subset mounts the snapshot in (SqlTarget's default)."""
    default = next(f.default for f in fields(SqlTarget) if f.name == "external_schema")
    assert isinstance(default, str), "SqlTarget.external_schema has a default"
    return default


def grant_statements(user: str, database: str, iam_role: str) -> list[str]:
    """What an administrator (a superuser) runs once in `database`, each with why.

    `iam_role` is the stack's RedshiftIamRole: "default" or role ARN(s)."""
    quoted = '"' + user.replace('"', '""') + '"'
    roles = "default" if iam_role.lower() == "default" else f"'{iam_role}'"
    schema = external_schema()
    return [
        f"CREATE USER {quoted} PASSWORD DISABLE;  -- unless the workflow has connected once",
        f"GRANT CREATE ON DATABASE {database} TO {quoted};  -- CREATE EXTERNAL SCHEMA {schema}",
        f"ALTER SCHEMA {schema} OWNER TO {quoted};  -- only if {schema} exists already",
        f"GRANT CREATE, USAGE ON SCHEMA {TABLE_SCHEMA} TO {quoted};  -- the month's tables",
        f"GRANT ASSUMEROLE ON {roles} TO {quoted} FOR COPY, UNLOAD;  -- COPY / UNLOAD IAM_ROLE",
    ]
