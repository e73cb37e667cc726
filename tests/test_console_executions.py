"""The console's Executions page: newest first, filtered by status (ListExecutions' filter) and
by the month each was started for (its input), with the duration.

Step Functions here is a small stand-in answering ListExecutions and DescribeExecution from a
fixed list, so the statuses and times are the test's own (moto's backends are process-global and
may hold the test session's local runtime, whose interpreter would run the executions)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from bisonflow.console.connection import Connection
from bisonflow.console.pages import execution_path
from bisonflow.console.pages.executions import ROUTES
from bisonflow.console.server import ConsoleServer, Response
from bisonflow.deploy.target import Target

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:bison-workflow"
START = dt.datetime(2031, 3, 2, 6, 0, tzinfo=dt.UTC)
#: (name, status, month, minutes after START it started, minutes it ran)
EXECUTIONS = (
    ("first", "SUCCEEDED", "2031-01", 0, 12),
    ("second", "FAILED", "2031-02", 20, 3),
    ("third", "ABORTED", "2031-02", 40, 1),
)


def arn_of(name: str) -> str:
    return MACHINE.replace(":stateMachine:", ":execution:") + f":{name}"


class StepFunctions:
    """ListExecutions (one page, filtered by status) and DescribeExecution of EXECUTIONS."""

    def __init__(self) -> None:
        self.described = {
            arn_of(name): {
                "executionArn": arn_of(name),
                "name": name,
                "status": status,
                "input": json.dumps({"month": month}),
                "startDate": START + dt.timedelta(minutes=at),
                "stopDate": START + dt.timedelta(minutes=at + ran),
            }
            for name, status, month, at, ran in EXECUTIONS
        }

    def get_paginator(self, operation: str) -> StepFunctions:
        assert operation == "list_executions"
        return self

    def paginate(self, stateMachineArn: str, statusFilter: str | None = None) -> Iterator[dict]:  # noqa: N803
        assert stateMachineArn == MACHINE
        listed = [
            {k: d[k] for k in ("executionArn", "name", "status", "startDate")}
            for d in self.described.values()
            if statusFilter in (None, d["status"])
        ]
        yield {"executions": listed}

    def describe_execution(self, executionArn: str) -> dict[str, Any]:  # noqa: N803
        return self.described[executionArn]


class StandIn(Connection):
    def client(self, service: str) -> Any:
        assert service == "stepfunctions"
        return StepFunctions()


@pytest.fixture
def server() -> ConsoleServer:
    connection = StandIn(
        Target(region="us-east-1"), "bisonflow", {"StateMachineArn": MACHINE}, "1", "us-east-1"
    )
    return ConsoleServer(connection, ROUTES)


def get(server: ConsoleServer, query: str = "") -> Response:
    headers = {"Host": f"127.0.0.1:{server.port}"}
    return server.answer("GET", f"/{server.token}/executions{query}", headers, b"")


def names(page: Response) -> list[str]:
    return re.findall(r'<a href="[^"]*">([a-z]+)</a></td>', str(page.body))


def test_every_execution_newest_first_with_its_month_and_duration(server: ConsoleServer) -> None:
    page = get(server)
    assert page.status == 200
    assert names(page) == ["third", "second", "first"]
    body = str(page.body)
    assert f'href="/{server.token}{execution_path(arn_of("first"))}"' in body
    assert body.count("<td>2031-02</td>") == 2 and "<td>2031-01</td>" in body
    assert '<option value="" selected>any status' in body
    assert '<td class="number">12m 00s</td>' in body  # first ran 12 minutes


def test_filtered_by_status_and_by_month(server: ConsoleServer) -> None:
    assert names(get(server, "?status=ABORTED")) == ["third"]
    assert names(get(server, "?month=2031-02")) == ["third", "second"]
    none = get(server, "?status=ABORTED&month=2031-01")
    assert names(none) == [] and "No executions ABORTED for 2031-01." in str(none.body)


def test_a_status_step_functions_does_not_have_is_refused(server: ConsoleServer) -> None:
    page = get(server, "?status=DONE")
    assert page.status == 400 and "status DONE is not one of RUNNING" in str(page.body)
