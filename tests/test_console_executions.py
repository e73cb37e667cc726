"""The console's Executions page: newest first, filtered by status (ListExecutions' filter) and
by the month each was started for (its input), with the duration; against moto in-process."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from bisonflow.console.connection import Connection
from bisonflow.console.pages import execution_path
from bisonflow.console.pages.executions import ROUTES
from bisonflow.console.server import ConsoleServer, Response
from bisonflow.deploy.target import Target

PASS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
ROLE = "arn:aws:iam::123456789012:role/bison-test"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConsoleServer]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sfn = boto3.client("stepfunctions", region_name="us-east-1")
        machine = sfn.create_state_machine(
            name=f"executions-page-{id(monkeypatch)}", definition=json.dumps(PASS), roleArn=ROLE
        )["stateMachineArn"]
        for name, month in (("first", "2031-01"), ("second", "2031-02"), ("third", "2031-02")):
            sfn.start_execution(
                stateMachineArn=machine, name=name, input=json.dumps({"month": month})
            )
        sfn.stop_execution(executionArn=machine.replace(":stateMachine:", ":execution:") + ":third")
        connection = Connection(
            Target(region="us-east-1"),
            "bisonflow",
            {"StateMachineArn": machine},
            "123456789012",
            "us-east-1",
        )
        yield ConsoleServer(connection, ROUTES)


def get(server: ConsoleServer, query: str = "") -> Response:
    headers = {"Host": f"127.0.0.1:{server.port}"}
    return server.answer("GET", f"/{server.token}/executions{query}", headers, b"")


def names(page: Response) -> list[str]:
    return re.findall(r'<a href="[^"]*">([a-z]+)</a></td>', str(page.body))


def test_every_execution_newest_first_with_its_month_and_a_link(server: ConsoleServer) -> None:
    page = get(server)
    assert page.status == 200
    assert names(page) == ["third", "second", "first"]
    body = str(page.body)
    first = server.connection.state_machine_arn.replace(":stateMachine:", ":execution:") + ":first"
    assert f'href="/{server.token}{execution_path(first)}"' in body
    assert body.count("<td>2031-02</td>") == 2 and '<option value="" selected>any status' in body


def test_filtered_by_status_and_by_month(server: ConsoleServer) -> None:
    assert names(get(server, "?status=ABORTED")) == ["third"]
    assert names(get(server, "?month=2031-02")) == ["third", "second"]
    assert names(get(server, "?status=ABORTED&month=2031-01")) == []
    assert "No executions ABORTED for 2031-01." in str(
        get(server, "?status=ABORTED&month=2031-01").body
    )


def test_a_status_step_functions_does_not_have_is_refused(server: ConsoleServer) -> None:
    page = get(server, "?status=DONE")
    assert page.status == 400 and "status DONE is not one of RUNNING" in str(page.body)
