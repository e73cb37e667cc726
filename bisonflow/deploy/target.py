"""Where a deployment goes: an account and region reached through boto3 (AWS or an endpoint).

A deployment target may declare, in its own SSM Parameter Store, what its CloudFormation
cannot do (TARGET_PROFILE_PARAMETER). The local emulator publishes such a profile when it
starts; an AWS account has none, so everything goes through CloudFormation there. The deploy
code therefore follows what the target says about itself and never asks whether it is "local".
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from bisonflow.aws import error_code

#: SSM parameter in which a target describes its CloudFormation's gaps (JSON, TargetProfile).
TARGET_PROFILE_PARAMETER = "/bisonflow/deploy-target-profile"

_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"})


@dataclass(frozen=True)
class TargetProfile:
    """What the target's CloudFormation lacks, and which Lambda platform runs the code.

    emulated_types: resource types created through their service APIs with the template's
    values; skipped_types: types not created at all, each with the reason; lambda_layer:
    "lambda" builds the layer for AWS Lambda's runtime and architecture, "interpreter" for
    the Python running the deploy (a target whose Lambdas run on this machine);
    completed_properties: per resource type its CloudFormation does create, the properties
    it ignores, which the deploy then applies through the service APIs.
    """

    emulated_types: tuple[str, ...] = ()
    skipped_types: dict[str, str] = field(default_factory=dict)
    lambda_layer: str = "lambda"
    completed_properties: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "emulated_types": list(self.emulated_types),
                "skipped_types": self.skipped_types,
                "lambda_layer": self.lambda_layer,
                "completed_properties": self.completed_properties,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TargetProfile:
        data = json.loads(text)
        return cls(
            emulated_types=tuple(data.get("emulated_types", ())),
            skipped_types=dict(data.get("skipped_types", {})),
            lambda_layer=data.get("lambda_layer", "lambda"),
            completed_properties=dict(data.get("completed_properties", {})),
        )


@dataclass
class Target:
    """boto3 clients for one account and region, optionally at an endpoint."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    credentials: dict[str, str] | None = None  # explicit keys (an emulator); else boto3's chain
    _clients: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def session(self) -> boto3.Session:
        return boto3.Session(
            profile_name=self.profile, region_name=self.region, **(self.credentials or {})
        )

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint_url, config=_CONFIG
            )
        return self._clients[service]

    @property
    def region_name(self) -> str:
        return self.client("sts").meta.region_name

    @cached_property
    def account_id(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]

    @property
    def partition(self) -> str:
        return self.session.get_partition_for_region(self.region_name)

    @cached_property
    def target_profile(self) -> TargetProfile:
        try:
            value = self.client("ssm").get_parameter(Name=TARGET_PROFILE_PARAMETER)
        except ClientError as exc:
            # An AWS account has no profile (and a deployer may not be allowed to read SSM).
            if error_code(exc) in ("ParameterNotFound", "AccessDeniedException"):
                return TargetProfile()
            raise
        return TargetProfile.from_json(value["Parameter"]["Value"])
