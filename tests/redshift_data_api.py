"""The Data API stand-in as the workflow reaches it: the session's emulator over HTTP with
boto3, and the few helpers the stand-in's test files share (submit, wait, read rows).

Not a test module: tests/test_redshift_api.py, test_redshift_aggregate.py, test_redshift_poll.py
and test_redshift_rules.py import the `rsd` and `s3` fixtures (`rsd_fixture`, `s3_fixture`:
named apart so a test's `rsd` parameter shadows nothing) and the helpers from here; the
session's `runtime` fixture is conftest's.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import boto3
import pytest

from bisonflow.local.runtime import LocalRuntime

# moto's backends are process-wide and other test modules run a whole local deployment in the
# same process: names of this module's own keep its objects and databases apart from theirs.
GBIF_BUCKET = "bisonflow-rsd-test-gbif"
BISON_BUCKET = "bisonflow-rsd-test-bison"
REGION = "us-east-1"
WHERE = {"WorkgroupName": "bisonflow-rsd-test", "Database": "dev"}
DONE = ("FINISHED", "FAILED", "ABORTED")


def standin_client(runtime: LocalRuntime, service: str) -> Any:
    """A boto3 client of the session's emulator, where the stand-in is installed, as in
    every local run."""
    return boto3.client(
        service,
        endpoint_url=runtime.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def standin_s3(runtime: LocalRuntime) -> Any:
    """An S3 client of the emulator with this package's two buckets (made by the first test
    module of the session that asks)."""
    client = standin_client(runtime, "s3")
    for bucket in (GBIF_BUCKET, BISON_BUCKET):
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
    return client


@pytest.fixture(scope="module", name="rsd")
def rsd_fixture(runtime: LocalRuntime) -> Any:
    """The stand-in's Data API client (a test module imports this to have `rsd`)."""
    return standin_client(runtime, "redshift-data")


@pytest.fixture(scope="module", name="s3")
def s3_fixture(runtime: LocalRuntime) -> Any:
    """The emulator's S3 with this package's buckets (a test module imports it for `s3`)."""
    return standin_s3(runtime)


def wait(rsd: Any, statement_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = rsd.describe_statement(Id=statement_id)
        if desc["Status"] in DONE:
            return desc
        assert time.monotonic() < deadline, f"statement still {desc['Status']}"
        time.sleep(0.02)


def run(rsd: Any, *sqls: str, expect: str = "FINISHED") -> dict[str, Any]:
    if len(sqls) == 1:
        statement_id = rsd.execute_statement(Sql=sqls[0], **WHERE)["Id"]
    else:
        statement_id = rsd.batch_execute_statement(Sqls=list(sqls), **WHERE)["Id"]
    desc = wait(rsd, statement_id)
    assert desc["Status"] == expect, desc.get("Error")
    return desc


def rows(rsd: Any, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query, as Python values, following NextToken."""
    statement_id = run(rsd, sql)["Id"]
    out: list[tuple[Any, ...]] = []
    token = None
    while True:
        kwargs = {"Id": statement_id, **({"NextToken": token} if token else {})}
        page = rsd.get_statement_result(**kwargs)
        for record in page["Records"]:
            out.append(tuple(None if f.get("isNull") else next(iter(f.values())) for f in record))
        token = page.get("NextToken")
        if not token:
            return out


# The seam's checks are in tests/test_seams.py, with every other emulator seam's.
