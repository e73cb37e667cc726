"""The release's artifacts (Lambda packages, the layer, the ASL) in the artifact bucket.

Keys are content-addressed (`releases/<digest>/...`), so an unchanged tree uploads nothing
and yields unchanged stack parameters, hence an empty change set.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from bisonflow.aws import OBJECT_MISSING, error_code
from bisonflow.deploy import packaging
from bisonflow.deploy.definition import ASL_PATH
from bisonflow.deploy.target import Target

ASL_NAME = "bison_workflow.asl.json"


def build(lambda_layer: str) -> dict[str, bytes]:
    """Artifact name -> bytes: each function's zip, the layer and the state machine's ASL.

    lambda_layer "lambda" builds the layer for AWS Lambda's runtime and architecture (pip
    wheels for that platform), "interpreter" for the Python running this.
    """
    if lambda_layer == "lambda":
        layer = packaging.layer_zip(
            packaging.LAMBDA_RUNTIME.removeprefix("python"), packaging.LAMBDA_ARCHITECTURE
        )
    elif lambda_layer == "interpreter":
        layer = packaging.layer_zip()
    else:
        raise ValueError(f"lambda_layer must be 'lambda' or 'interpreter', got {lambda_layer!r}")
    built = {f"functions/{f}.zip": packaging.function_zip(f) for f in packaging.FUNCTIONS}
    built["layer.zip"] = layer
    built[ASL_NAME] = ASL_PATH.read_bytes()
    return built


def release_prefix(artifacts: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(artifacts):
        digest.update(name.encode() + b"\0" + hashlib.sha256(artifacts[name]).digest())
    return f"releases/{digest.hexdigest()[:20]}/"


def artifact_bucket_name(target: Target) -> str:
    """One artifact bucket per account and region, named from them at run time."""
    return f"bisonflow-artifacts-{target.account_id}-{target.region_name}"


def ensure_bucket(target: Target, bucket: str) -> bool:
    """Create the artifact bucket if missing: private and encrypted. True if created."""
    s3 = target.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
            raise
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if target.region_name != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": target.region_name}
    s3.create_bucket(**kwargs)
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
    return True


@dataclass(frozen=True)
class Uploaded:
    bucket: str
    prefix: str
    uploaded: tuple[str, ...]  # names uploaded now; the others were already there


def upload(
    target: Target, artifacts: dict[str, bytes], progress: Callable[[str], None]
) -> Uploaded:
    bucket = artifact_bucket_name(target)
    if ensure_bucket(target, bucket):
        progress(f"created artifact bucket s3://{bucket} (private, encrypted)")
    prefix = release_prefix(artifacts)
    s3 = target.client("s3")
    uploaded = []
    for name, body in sorted(artifacts.items()):
        key = prefix + name
        try:
            s3.head_object(Bucket=bucket, Key=key)
            continue
        except ClientError as exc:
            if error_code(exc) not in OBJECT_MISSING:
                raise
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        uploaded.append(name)
    progress(
        f"artifacts at s3://{bucket}/{prefix}: {len(uploaded)} uploaded, "
        f"{len(artifacts) - len(uploaded)} unchanged"
    )
    return Uploaded(bucket, prefix, tuple(uploaded))
