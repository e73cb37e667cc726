"""Deploy the workflow into the emulator through the same template and code as on AWS.

The emulator declares what its CloudFormation (moto 5.2.5) cannot create
(bisonflow.local.emulator.target_profile); `bisonflow.deploy.deploy` then creates the stack
from definitions/bisonflow.cfn.yaml and those resources through the service APIs. This
module adds only what a laptop needs besides: the GBIF open-data bucket, and the user's
standing inputs and a snapshot uploaded from the sample data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisonflow.deploy import DEFAULT_STACK_NAME, Target, cfn_template, deploy
from bisonflow.deploy.definition import ASL_PATH, placeholder, render_definition
from bisonflow.layout import RIIS_INPUT_KEY, SHAPEFILE_SIDECARS, MonthLayout
from bisonflow.local.emulator import CREDENTIALS, Emulator
from bisonflow.sample.citation import citation_text
from bisonflow.sample.snapshot import month_parts

__all__ = [
    "ASL_PATH",
    "Deployment",
    "deploy_to_emulator",
    "placeholder",
    "render_definition",
    "upload_inputs",
    "upload_snapshot",
]


@dataclass(frozen=True)
class Deployment:
    stack_name: str
    state_machine_arn: str
    bucket: str
    gbif_bucket: str
    outputs: dict[str, str]


def emulator_target(emulator: Emulator) -> Target:
    return Target(
        region=emulator.region, endpoint_url=emulator.endpoint_url, credentials=CREDENTIALS
    )


def deploy_to_emulator(
    emulator: Emulator,
    parameters: dict[str, str],
    progress: Callable[[str], None],
    stack_name: str = DEFAULT_STACK_NAME,
) -> Deployment:
    """`bisonflow deploy` into the emulator, plus the GBIF bucket GBIF would own.

    `parameters` are the template's; RedshiftWorkgroupArn defaults to a workgroup ARN in the
    emulator's account (the DuckDB stand-in serves any workgroup), the task instances' subnet
    and security group to those of the emulator's default VPC (moto makes one per region).
    """
    types = {r["Type"] for r in cfn_template.template()["Resources"].values()}
    emulator.publish_target_profile(types)
    target = emulator_target(emulator)
    workgroup = uuid.uuid5(uuid.NAMESPACE_URL, emulator.endpoint_url)
    values = {
        "RedshiftWorkgroupArn": f"arn:{target.partition}:redshift-serverless:"
        f"{target.region_name}:{target.account_id}:workgroup/{workgroup}",
        **_default_vpc_network(target),
        **parameters,
    }
    deployed = deploy(target, stack_name, values, progress)
    gbif_bucket = values.get("GbifBucket") or f"gbif-open-data-{target.region_name}"
    emulator.clients["s3"].create_bucket(Bucket=gbif_bucket)
    return Deployment(
        stack_name=stack_name,
        state_machine_arn=deployed.outputs["StateMachineArn"],
        bucket=deployed.outputs["BucketName"],
        gbif_bucket=gbif_bucket,
        outputs=deployed.outputs,
    )


def _default_vpc_network(target: Target) -> dict[str, str]:
    """TaskSubnetId and TaskSecurityGroupId in the emulator's default VPC."""
    ec2 = target.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    subnet = ec2.describe_subnets(Filters=in_vpc)["Subnets"][0]
    group = ec2.describe_security_groups(
        Filters=[*in_vpc, {"Name": "group-name", "Values": ["default"]}]
    )["SecurityGroups"][0]
    return {"TaskSubnetId": subnet["SubnetId"], "TaskSecurityGroupId": group["GroupId"]}


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
    """Publish a GBIF snapshot for `month` as GBIF does: part files under occurrence.parquet/,
    in the column types GBIF published that month (bisonflow.gbif.schema), and the snapshot's
    citation.txt beside them (bisonflow.sample.citation)."""
    layout = MonthLayout.for_month(month)
    parts = month_parts(snapshot_dir, layout.snapshot)
    for name, body in parts:
        s3.put_object(Bucket=gbif_bucket, Key=layout.gbif_prefix + name, Body=body)
    s3.put_object(
        Bucket=gbif_bucket,
        Key=layout.gbif_citation_key,
        Body=citation_text(layout.snapshot),
        ContentType="text/plain; charset=utf-8",
    )
    return len(parts)
