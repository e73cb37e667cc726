"""The IAM mapping knows every AWS operation the workflow's code makes as a role.

The code that runs as a role (the Lambdas in functions/ and the library they call, the EC2
tasks, the state machine's service integrations, the schedule's target, the task log
shipping) is scanned for the boto3 calls it makes; each must have an entry in the mapping, so
adding a call without its authorization fails here instead of in an execution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import boto3
import pytest

from bisonflow.local.iam.requests import MAPPERS, state_machine

ROOT = Path(__file__).resolve().parent.parent
#: The code that runs as a role on AWS (as a Lambda's execution role or the task instance's).
ROLE_CODE = [
    *sorted((ROOT / "functions").glob("*.py")),
    *sorted((ROOT / "tasks").glob("*.py")),
    *(
        ROOT / "bisonflow" / name
        for name in (
            "aws.py",
            "steps/ec2_tasks.py",
            "steps/statements.py",
            "gbif/snapshot.py",
            "gbif/name_cache.py",
            "riis/master_list.py",
            "riis/columns.py",
        )
    ),
]
SERVICES = ("s3", "ssm", "ec2", "stepfunctions", "redshift-data", "logs", "lambda", "sts")
#: Made for the code by AWS services as the role: the state machine's Lambda integration, the
#: schedule's target, and the task container's log driver shipping its output.
IMPLICIT = {
    ("lambda", "Invoke"),
    ("stepfunctions", "StartExecution"),
    ("logs", "CreateLogStream"),
    ("logs", "PutLogEvents"),
}


@cache
def _operations_by_method(services: tuple[str, ...] = SERVICES) -> dict[str, set[tuple[str, str]]]:
    """boto3 method name -> (service, API operation) for the services the code uses."""
    found: dict[str, set[tuple[str, str]]] = {}
    for service in services:
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x",
                              aws_secret_access_key="x")  # fmt: skip
        for method, operation in client.meta.method_to_api_mapping.items():
            found.setdefault(method, set()).add((service, operation))
    return found


def operations_in(text: str, services: tuple[str, ...] = SERVICES) -> set[tuple[str, str]]:
    """The (service, operation) pairs of the boto3 calls and paginators `text` names."""
    by_method = _operations_by_method(services)
    names = set(re.findall(r"\.(\w+)\(", text)) | set(
        re.findall(r"get_paginator\(\s*\"(\w+)\"", text)
    )
    return {operation for name in names for operation in by_method.get(name, set())}


def called_operations(
    paths: Iterable[Path] = ROLE_CODE, services: tuple[str, ...] = SERVICES
) -> set[tuple[str, str]]:
    called: set[tuple[str, str]] = set()
    for path in paths:
        if path.exists():
            called |= operations_in(path.read_text(), services)
    return called


def test_the_scan_finds_the_calls_the_code_is_known_to_make() -> None:
    called = called_operations()
    for expected in (
        ("s3", "GetObject"),
        ("s3", "ListObjectsV2"),
        ("ssm", "PutParameter"),
        ("ec2", "RunInstances"),
        ("ec2", "TerminateInstances"),
        ("stepfunctions", "SendTaskSuccess"),
        ("redshift-data", "ExecuteStatement"),
        ("redshift-data", "GetStatementResult"),
    ):
        assert expected in called


def test_every_operation_made_as_a_role_is_mapped() -> None:
    called = called_operations() | IMPLICIT
    # Method names shared by services the code does not call that way (e.g. s3's and
    # ssm's list_tags_for_resource) would be false positives: only what the mapping lacks
    # and the code names unambiguously is reported.
    missing = sorted(op for op in called if op not in MAPPERS)
    assert missing == [], f"add these to bisonflow/local/iam: {missing}"


def test_the_asl_invokes_lambdas_through_the_mapped_integration() -> None:
    definition = json.loads((ROOT / "statemachines" / "bison_workflow.asl.json").read_text())
    resources = set(re.findall(r'"Resource": "([^"]+)"', json.dumps(definition, indent=1)))
    assert resources <= {
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
    }, "a new service integration needs its operations in the IAM mapping"


MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:m"


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (MACHINE, (MACHINE, None)),
        (f"{MACHINE}:live", (MACHINE, "live")),
        (f"{MACHINE}:7", (MACHINE, "7")),
    ],
)
def test_state_machine_qualifiers(arn: str, expected: tuple) -> None:
    assert state_machine(arn) == expected
