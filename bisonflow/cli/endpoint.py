"""A loopback endpoint needs no AWS configuration: its region and dummy credentials.

`bisonflow local up` prints commands such as `bisonflow start --endpoint-url
http://127.0.0.1:5000 --month 2026-12`. Pasted into a fresh shell they must work (issue 12),
but boto3 needs a region and credentials before it sends anything, and a shell with no AWS
setup has neither ("You must specify a region", "Unable to locate credentials"). The emulator
on loopback accepts any keys and serves one region, so for an endpoint on 127.0.0.0/8, ::1 or
localhost the commands default them: the region to the one given (--region, AWS_REGION,
AWS_DEFAULT_REGION), else the emulator's; the credentials, when none are given in the
environment (keys, AWS_PROFILE, a web identity) or by --profile, to the emulator's dummy
keys (they win over ~/.aws/credentials' default profile, which an emulator does not need).
No other endpoint, and AWS itself, is ever given defaults: there a missing region or
credentials stays boto3's own error.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from bisonflow.local import EMULATOR_KEYS, EMULATOR_REGION

#: What makes boto3 find credentials without the dummy keys: keys, a profile, a web identity.
_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def is_loopback(url: str | None) -> bool:
    """True for http(s)://127.x.x.x, [::1] or localhost (any port)."""
    if not url:
        return False
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_of(args: argparse.Namespace) -> str | None:
    """The endpoint a command talks to: --endpoint-url, else AWS_ENDPOINT_URL."""
    return getattr(args, "endpoint_url", None) or os.environ.get("AWS_ENDPOINT_URL") or None


@contextmanager
def loopback_defaults(args: argparse.Namespace) -> Iterator[None]:
    """While the command runs: for a loopback endpoint, a region on `args` (if it takes
    --region) and the dummy keys in the environment when no credentials are configured.
    The environment is restored afterwards (tests call main() in one process)."""
    if not is_loopback(endpoint_of(args)):
        yield
        return
    if "region" in vars(args) and not args.region:
        args.region = (
            os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or EMULATOR_REGION
        )
    given = any(os.environ.get(name) for name in _CREDENTIAL_VARIABLES)
    given = given or bool(getattr(args, "profile", None))
    added = {} if given else EMULATOR_KEYS
    for name, value in added.items():
        os.environ[name] = value
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
