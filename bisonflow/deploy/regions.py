"""The region the stack goes to must be one GBIF serves, and the workgroup's.

The SQL reads GBIF's snapshot from `gbif-open-data-<region>` of the stack's own region (the
template's default GbifBucket), and the Lambdas reach the workgroup through the Data API of
their region, so GBIF's bucket, the Redshift workgroup and the stack must share one region.
`bisonflow deploy` checks this before building anything; a wrong region would otherwise show
only as a failed first month.
"""

from __future__ import annotations

from collections.abc import Mapping

from bisonflow.deploy.stack import DeployError

#: Regions holding GBIF's open-data bucket: gbif/occurrence, aws-public-data.md, "Data format"
#: ("Data are stored in Parquet format files in AWS S3 in five regions").
GBIF_REGIONS = ("af-south-1", "ap-southeast-2", "eu-central-1", "sa-east-1", "us-east-1")


def check(region: str, parameters: Mapping[str, str]) -> None:
    """Raise DeployError naming the mismatch; `parameters` are the effective stack values."""
    workgroup = parameters.get("RedshiftWorkgroupArn", "")
    parts = workgroup.split(":")
    if len(parts) > 3 and parts[3] != region:
        raise DeployError(
            f"the Redshift workgroup is in {parts[3]} but the stack would be in {region}: "
            "deploy to the workgroup's region (--region)"
        )
    if not parameters.get("GbifBucket") and region not in GBIF_REGIONS:
        raise DeployError(
            f"GBIF publishes no open-data bucket in {region} (only in "
            f"{', '.join(GBIF_REGIONS)}): deploy to one of those, with a workgroup there, or "
            "pass --gbif-bucket naming a copy in this region"
        )
