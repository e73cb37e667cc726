"""boto3 clients for every step.

boto3 itself honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>), so the same code
talks to AWS or to the local emulator without knowing which.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"})


def region() -> str:
    """The region every client uses: AWS_REGION as Lambda sets it, else AWS_DEFAULT_REGION."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


@cache
def client(service: str) -> Any:
    """A cached client; Lambda execution environments reuse it across invocations."""
    return boto3.client(service, region_name=region(), config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests change endpoints between cases)."""
    client.cache_clear()
