"""Deploy the workflow into the emulator with the same API calls a deployment to AWS makes.

Buckets (private, encrypted, TLS-only), roles, the Lambda functions from the one deployment
package, a launch template per task, and the state machine from the ASL file with its
`${...}` placeholders replaced by the functions' ARNs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisonflow import PROJECT_ROOT
from bisonflow.ec2_tasks import TASK_STEPS
from bisonflow.layout import RIIS_INPUT_KEY, SHAPEFILE_SIDECARS, MonthLayout
from bisonflow.packaging import FUNCTIONS, handler_of, lambda_zip

ASL_PATH = PROJECT_ROOT / "statemachines" / "bison_workflow.asl.json"
STATE_MACHINE_NAME = "bison-workflow"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def placeholder(function: str) -> str:
    """The ASL placeholder of a function: check_gbif -> CheckGbifFunctionArn."""
    return "".join(part.title() for part in function.split("_")) + "FunctionArn"


def render_definition(function_arns: dict[str, str]) -> str:
    """The ASL with its `${Name}` placeholders substituted; an unknown one is an error.

    Only `${Name}` is touched: JSONPath's `$` and the context object's `$$` stay as written.
    """
    values = {placeholder(f): arn for f, arn in function_arns.items()}

    def substitute(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            raise KeyError(f"{ASL_PATH.name}: no value for placeholder ${{{match.group(1)}}}")
        return values[match.group(1)]

    return PLACEHOLDER.sub(substitute, ASL_PATH.read_text())


@dataclass(frozen=True)
class Deployment:
    state_machine_arn: str
    bucket: str
    gbif_bucket: str
    function_arns: dict[str, str]


_ASSUME = {
    "lambda": "lambda.amazonaws.com",
    "states": "states.amazonaws.com",
    "ec2": "ec2.amazonaws.com",
}


def _role(iam: Any, name: str, service: str) -> str:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))["Role"][
        "Arn"
    ]


def create_private_bucket(s3: Any, bucket: str, tls_only: bool = True) -> None:
    """Public access blocked, encrypted at rest, and (on AWS) only reachable over TLS."""
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    if not tls_only:
        return
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def upload_inputs(s3: Any, bucket: str, riis_csv: Path, shapefiles: dict[str, Path]) -> None:
    """The user's standing inputs: the US-RIIS master list and the boundary layers.

    `shapefiles` maps each layer's key in the bucket (COUNTY_SHAPEFILE_KEY,
    AIANNH_SHAPEFILE_KEY) to the local .shp; its sidecars go beside it.
    """
    s3.upload_file(str(riis_csv), bucket, RIIS_INPUT_KEY)
    for key, shapefile in shapefiles.items():
        s3.upload_file(str(shapefile), bucket, key)
        for suffix in SHAPEFILE_SIDECARS:
            s3.upload_file(
                str(shapefile.with_suffix(suffix)), bucket, key.removesuffix(".shp") + suffix
            )


def upload_snapshot(s3: Any, gbif_bucket: str, snapshot_dir: Path, month: str) -> int:
    """Publish a GBIF snapshot for `month` as GBIF does: part files under occurrence.parquet/."""
    prefix = MonthLayout.for_month(month).gbif_prefix
    parts = sorted(p for p in snapshot_dir.iterdir() if p.is_file())
    for part in parts:
        s3.upload_file(str(part), gbif_bucket, prefix + part.name)
    return len(parts)


def deploy(
    clients: dict[str, Any], bucket: str, region: str, environment: dict[str, str]
) -> Deployment:
    s3, iam, awslambda, ec2, sfn = (
        clients[n] for n in ("s3", "iam", "lambda", "ec2", "stepfunctions")
    )
    gbif_bucket = f"gbif-open-data-{region}"
    # The emulator serves plain HTTP on loopback, and moto enforces aws:SecureTransport, so
    # the TLS-only policy (which deployments to AWS carry) would deny every request here.
    create_private_bucket(s3, bucket, tls_only=False)
    s3.create_bucket(Bucket=gbif_bucket)

    lambda_role = _role(iam, "bisonflow-lambda", _ASSUME["lambda"])
    states_role = _role(iam, "bisonflow-states", _ASSUME["states"])
    _role(iam, "bisonflow-task-instance", _ASSUME["ec2"])
    iam.create_instance_profile(InstanceProfileName="bisonflow-task-instance")
    iam.add_role_to_instance_profile(
        InstanceProfileName="bisonflow-task-instance", RoleName="bisonflow-task-instance"
    )

    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    for task in TASK_STEPS:
        ec2.create_launch_template(
            LaunchTemplateName=f"bison-task-{task}",
            LaunchTemplateData={
                "ImageId": image_id,
                "InstanceType": "t4g.small",
                "IamInstanceProfile": {"Name": "bisonflow-task-instance"},
                "InstanceMarketOptions": {"MarketType": "spot"},
                "InstanceInitiatedShutdownBehavior": "terminate",
                "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            },
        )

    env = {
        "BISON_BUCKET": bucket,
        **{f"{task.upper()}_LAUNCH_TEMPLATE": f"bison-task-{task}" for task in TASK_STEPS},
        **environment,
    }
    code = lambda_zip()
    arns = {}
    for function in FUNCTIONS:
        arns[function] = awslambda.create_function(
            FunctionName=f"bisonflow-{function}",
            Runtime="python3.12",
            Role=lambda_role,
            Handler=handler_of(function),
            Code={"ZipFile": code},
            Timeout=60,
            MemorySize=256,
            Environment={"Variables": env},
        )["FunctionArn"]

    machine = sfn.create_state_machine(
        name=STATE_MACHINE_NAME, definition=render_definition(arns), roleArn=states_role
    )
    return Deployment(machine["stateMachineArn"], bucket, gbif_bucket, arns)
