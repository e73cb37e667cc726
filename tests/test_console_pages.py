"""The console's Workflow and Outputs pages (issue 15) against moto's in-process AWS.

The pages are asked through ConsoleServer.answer, the server's own dispatch (token, Host, the
routes, AWS's refusals), without a socket, except one download through real HTTP. Where
moto 5.2.5 lacks a call (ListStateMachineVersions) or the test needs AWS to refuse one
(GetSchedule), the connection's client is a small stand-in that answers as AWS would.

mock_aws starts without resetting moto's backends and stops without removing data (see
tests/test_calc_stats.py): the session's local runtime may live in them. Every resource here
has a name of its own, and the bucket is emptied and removed.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from bisonflow.console.connection import Connection
from bisonflow.console.outputs import human_size, month_of_key, published_months
from bisonflow.console.pages import execution_path, outputs, overview
from bisonflow.console.server import ConsoleServer, Response
from bisonflow.deploy.schedule import next_fire_times
from bisonflow.deploy.target import Target
from bisonflow.layout import MonthLayout
from bisonflow.steps.publish import publish

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/bisonflow-test"
EXPRESSION = "cron(0 6 2 * ? *)"
TIMEZONE = "America/New_York"
DEFINITION = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
ROUTES = (*overview.ROUTES, *outputs.ROUTES)


class Versions:
    """A Step Functions client that also answers ListStateMachineVersions, which moto 5.2.5
    lacks, from the versions moto keeps (numbered from 1), newest first as AWS lists them."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def list_state_machine_versions(self, stateMachineArn: str) -> dict[str, Any]:  # noqa: N803
        found = []
        while True:
            arn = f"{stateMachineArn}:{len(found) + 1}"
            try:
                described = self._real.describe_state_machine(stateMachineArn=arn)
            except self._real.exceptions.StateMachineDoesNotExist:
                break
            found.append({"stateMachineVersionArn": arn, "creationDate": described["creationDate"]})
        return {"stateMachineVersions": found[::-1]}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class Refusing:
    """A client on which `operation` is refused as AWS refuses it (an error code, HTTP 400)."""

    def __init__(self, real: Any, method: str, operation: str, code: str, status: int) -> None:
        self._real, self._method, self._operation = real, method, operation
        self._code, self._status = code, status

    def __getattr__(self, name: str) -> Any:
        if name != self._method:
            return getattr(self._real, name)

        def refuse(**_: Any) -> Any:
            error = {
                "Error": {"Code": self._code, "Message": f"not allowed: {self._operation}"},
                "ResponseMetadata": {"HTTPStatusCode": self._status},
            }
            raise ClientError(error, self._operation)

        return refuse


@dataclass
class StandIns(Connection):
    """A connection whose clients may be wrapped per service."""

    wrap: dict[str, Any] | None = None

    def client(self, service: str) -> Any:
        real = super().client(service)
        wrapper = (self.wrap or {}).get(service)
        return wrapper(real) if wrapper else real


@dataclass
class World:
    connection: StandIns
    machine: str
    versions: list[str]
    alias: str
    executions: list[str]
    run: MonthLayout
    published: dict[str, bytes]
    unpublished_key: str


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    mock = mock_aws()
    mock.start(reset=False)
    suffix = uuid.uuid4().hex[:10]
    session = boto3.Session(region_name=REGION)
    sfn, s3 = session.client("stepfunctions"), session.client("s3")
    machine = sfn.create_state_machine(
        name=f"console-{suffix}",
        definition=DEFINITION,
        roleArn=ROLE,
        publish=True,
        versionDescription="first deploy",
    )["stateMachineArn"]
    second = sfn.update_state_machine(
        stateMachineArn=machine, definition=DEFINITION, publish=True, versionDescription="second"
    )["stateMachineVersionArn"]
    alias = sfn.create_state_machine_alias(
        name="live",
        routingConfiguration=[
            {"stateMachineVersionArn": f"{machine}:1", "weight": 10},
            {"stateMachineVersionArn": second, "weight": 90},
        ],
    )["stateMachineAliasArn"]
    executions = [
        sfn.start_execution(stateMachineArn=machine, name=f"run-{i}")["executionArn"]
        for i in range(6)
    ]
    schedule = f"console-{suffix}"
    session.client("scheduler").create_schedule(
        Name=schedule,
        ScheduleExpression=EXPRESSION,
        ScheduleExpressionTimezone=TIMEZONE,
        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
        Target={"Arn": alias, "RoleArn": ROLE, "Input": "{}"},
        State="ENABLED",
    )
    bucket = f"console-{suffix}"
    s3.create_bucket(Bucket=bucket)
    run = MonthLayout.for_run("2024-06", "run-a")
    files = published_run(s3, bucket, run)
    publish(s3, bucket, run, executions[0], None)
    other = MonthLayout.for_run("2024-06", "run-b")  # a run of the month never published
    s3.put_object(Bucket=bucket, Key=other.new_this_month_figure_key, Body=b"\x89PNG other")
    outputs_ = {
        "StateMachineArn": machine,
        "StateMachineAliasArn": alias,
        "BucketName": bucket,
        "ScheduleName": schedule,
    }
    connection = StandIns(
        Target(region=REGION), "bisonflow", outputs_, "123456789012", REGION, wrap={}
    )
    connection.wrap = {"stepfunctions": Versions}
    try:
        yield World(
            connection,
            machine,
            [f"{machine}:1", second],
            alias,
            executions,
            run,
            files,
            other.new_this_month_figure_key,
        )
    finally:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        session.client("scheduler").delete_schedule(Name=schedule)
        sfn.delete_state_machine(stateMachineArn=machine)
        mock.stop(remove_data=False)


def published_run(s3: Any, bucket: str, run: MonthLayout) -> dict[str, bytes]:
    """A run's outputs as its steps name them (a map, a figure, a table, the citation, the
    annotated list), the month record last, as calc_stats leaves it."""
    bodies = {
        f"{run.summary_prefix}map_richness_county.png": b"\x89PNG map",
        run.new_this_month_figure_key: b"\x89PNG figure",
        f"{run.species_counts_prefix('county')}0000_part_00.parquet": b"PAR1" * 700,
        run.new_in_county_key: b"county,species\n",
        run.citation_copy_key: b"GBIF.org (2024) Occurrence snapshot",
        run.riis_annotated_key: b"scientificName\nAus bus\n",
        run.record_key: json.dumps({"provenance": {"gbif_snapshot": "s3://gbif/x/"}}).encode(),
    }
    for key, body in bodies.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return bodies


def ask(server: ConsoleServer, method: str, path: str, **query: str) -> Response:
    """One request through the server's own checks and routes, as the browser sends it."""
    raw = f"/{server.token}{path}" + (
        "?" + "&".join(f"{k}={urllib.parse.quote(v, safe='')}" for k, v in query.items())
        if query
        else ""
    )
    return server.answer(method, raw, {"Host": f"127.0.0.1:{server.port}"}, b"")


def text(response: Response) -> str:
    assert isinstance(response.body, str)
    return response.body


class _ById(HTMLParser):
    """The text inside the element with one id (nested elements' text included)."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted, self.depth, self.parts = wanted, 0, []
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in ("br", "img", "meta", "input")
        elif dict(attrs).get("id") == self.wanted:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def part(html: str, element_id: str) -> str:
    parser = _ById(element_id)
    parser.feed(html)
    assert parser.found, f"no element #{element_id}"
    return " ".join(parser.parts)


def test_the_overview_shows_versions_aliases_and_the_next_five_fire_times(world: World) -> None:
    before = dt.datetime.now(dt.UTC)
    with ConsoleServer(world.connection, ROUTES) as server:
        response = ask(server, "GET", "/")
    html = text(response)
    assert response.status == 200
    machine = part(html, "state-machine")
    assert world.machine in machine and "STANDARD" in machine and ROLE in machine
    versions = part(html, "versions")
    assert all(v in versions for v in world.versions)
    assert "first deploy" in versions and "second" in versions
    aliases = part(html, "aliases")
    assert world.alias in aliases and "version 1: 10%" in aliases and "version 2: 90%" in aliases
    schedule = part(html, "schedule")
    assert EXPRESSION in schedule and TIMEZONE in schedule and "ENABLED" in schedule
    assert "15 minutes" in schedule and world.alias in schedule
    fires = part(html, "next-fires")
    expected = next_fire_times(EXPRESSION, before, 5, TIMEZONE)
    assert len(expected) == 5
    for fire in expected:
        assert f"{fire:%Y-%m-%d %H:%M} {fire.tzname()}" in fires
        assert f"{fire.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" in fires
    links = re.findall(r'href="([^"]*/executions/[^"]*)"', part_html(html, "executions"))
    assert len(links) == 5
    assert {link.removeprefix(f"/{server.token}") for link in links} <= {
        execution_path(arn) for arn in world.executions
    }


def part_html(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def test_without_fire_now_there_is_no_form_and_firing_is_not_found(world: World) -> None:
    with ConsoleServer(world.connection, ROUTES) as server:
        html = text(ask(server, "GET", "/"))
        fired = ask(server, "POST", "/schedule/fire")
    assert 'id="fire-now"' not in html and "/schedule/fire" not in html
    assert "fires on its own" in part(html, "schedule")
    assert fired.status == 404


def test_fire_now_redirects_to_the_execution_it_started(world: World) -> None:
    started = world.executions[-1]
    world.connection.fire_now = lambda: started
    with ConsoleServer(world.connection, ROUTES) as server:
        html = text(ask(server, "GET", "/"))
        fired = ask(server, "POST", "/schedule/fire")
    form = part_html(html, "schedule")
    assert 'id="fire-now"' in form and 'method="post"' in form and "data-confirm=" in form
    assert f'action="/{server.token}/schedule/fire"' in form
    assert fired.status == 303
    assert fired.headers["Location"] == f"/{server.token}{execution_path(started)}"


def test_a_failed_firing_is_shown_on_the_overview(world: World) -> None:
    class FireFailed(RuntimeError):
        pass

    def fail() -> str:
        raise FireFailed("schedule x: StartExecution on y failed: ExecutionLimitExceeded")

    world.connection.fire_now = fail
    with ConsoleServer(world.connection, ROUTES) as server:
        fired = ask(server, "POST", "/schedule/fire")
    assert fired.status == 502
    assert "ExecutionLimitExceeded" in part(text(fired), "problem")
    assert world.machine in part(text(fired), "state-machine")


def test_a_refused_get_schedule_leaves_the_rest_of_the_page(world: World) -> None:
    world.connection.wrap = {
        "stepfunctions": Versions,
        "scheduler": lambda real: Refusing(
            real, "get_schedule", "GetSchedule", "AccessDeniedException", 400
        ),
    }
    with ConsoleServer(world.connection, ROUTES) as server:
        response = ask(server, "GET", "/")
    html = text(response)
    assert response.status == 200
    schedule = part(html, "schedule")
    assert "AWS refused GetSchedule: AccessDeniedException: not allowed: GetSchedule" in schedule
    assert 'id="next-fires"' not in html
    assert world.machine in part(html, "state-machine")
    assert world.alias in part(html, "aliases") and world.versions[1] in part(html, "versions")


def test_an_endpoint_without_list_versions_shows_the_versions_aliases_route_to(
    world: World,
) -> None:
    world.connection.wrap = {
        "stepfunctions": lambda real: Refusing(
            real, "list_state_machine_versions", "ListStateMachineVersions", "500", 500
        )
    }
    with ConsoleServer(world.connection, ROUTES) as server:
        versions = part(text(ask(server, "GET", "/")), "versions")
    assert "could not list the versions" in versions
    assert all(v in versions for v in world.versions)


def test_outputs_lists_the_published_month_with_its_files_and_sizes(world: World) -> None:
    s3 = world.connection.client("s3")
    assert published_months(s3, world.connection.bucket) == [world.run.month_layout]
    with ConsoleServer(world.connection, ROUTES) as server:
        response = ask(server, "GET", "/outputs")
    html = text(response)
    assert response.status == 200
    assert "2024-06" in part(html, "months")
    files = part(html, "files")
    for key, body in world.published.items():
        assert key in files and f"{human_size(len(body))} {len(body)}" in " ".join(files.split())
    assert world.unpublished_key not in html and world.run.done_marker_key not in files
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", part_html(html, "gallery"))
    assert captions == ["Figure: new this month county", "Map: richness county"]
    assert execution_path(world.executions[0]) in part_html(html, "published-by")


def test_a_published_key_is_served_with_its_type_and_any_other_is_not(world: World) -> None:
    figure = world.run.new_this_month_figure_key
    table = world.run.new_in_county_key
    with ConsoleServer(world.connection, ROUTES) as server:
        url = f"{server.url}outputs/file?key={urllib.parse.quote(figure, safe='')}"
        with urllib.request.urlopen(url) as got:
            assert got.headers["Content-Type"] == "image/png"
            assert got.read() == world.published[figure]
        download = ask(server, "GET", "/outputs/file", key=table, download="1")
        unpublished = ask(server, "GET", "/outputs/file", key=world.unpublished_key)
        foreign = ask(server, "GET", "/outputs/file", key="input/riis/USRIISv2_MasterList.csv")
    assert download.status == 200 and download.content_type == "text/csv"
    assert download.body == world.published[table]
    assert download.headers["Content-Disposition"] == (
        'attachment; filename="new_this_month_county.csv"'
    )
    assert unpublished.status == 404 and foreign.status == 404


def test_keys_belong_to_their_month_and_sizes_read_as_people_read_them() -> None:
    run = MonthLayout.for_run("2024-06", "run-a")
    assert month_of_key(run.riis_annotated_key) == run.month_layout
    assert month_of_key(run.new_in_county_key) == run.month_layout
    assert month_of_key("input/riis/USRIISv2_MasterList.csv") is None
    assert month_of_key("summary/not-a-month/x.csv") is None
    assert [human_size(n) for n in (0, 1023, 1536, 5 * 1024**3)] == [
        "0 bytes",
        "1023 bytes",
        "1.5 KiB",
        "5.0 GiB",
    ]


def test_a_month_published_in_place_lists_its_files_and_what_is_missing(world: World) -> None:
    s3, bucket = world.connection.client("s3"), world.connection.bucket
    legacy = MonthLayout.for_month("2024-05")  # its marker names no run and no file
    s3.put_object(Bucket=bucket, Key=legacy.riis_annotated_key, Body=b"scientificName\n")
    s3.put_object(Bucket=bucket, Key=legacy.done_marker_key, Body=b"")
    assert published_months(s3, bucket) == [world.run.month_layout, legacy]
    with ConsoleServer(world.connection, ROUTES) as server:
        html = text(ask(server, "GET", "/outputs", month="2024-05"))
        served = ask(server, "GET", "/outputs/file", key=legacy.riis_annotated_key)
    assert "published in place" in part(html, "published-by")
    files = " ".join(part(html, "files").split())
    assert f"{legacy.riis_annotated_key} 15 bytes 15" in files
    assert f"{legacy.riis_report_key} named by the month's marker, but not in the bucket" in files
    assert served.status == 200 and served.body == b"scientificName\n"
