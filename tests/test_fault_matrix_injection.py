"""The fault injectors of the matrix (bisonflow.local.faults) do what they say, and undo it:
each fault is met where AWS would produce it, then the runtime is as before."""

from __future__ import annotations

import json
import time

import pytest
import requests
from conftest import wait_for_end
from fault_harness import assert_nothing_left, published_month, what_is_left
from test_faults_stopped import delivered

from bisonflow.local import faults
from bisonflow.local.gbif_standin import GbifStandin
from bisonflow.local.runtime import LocalRuntime


@pytest.fixture
def standin(tmp_path):
    path = tmp_path / "gbif.json"
    path.write_text(json.dumps({"Aus bus": {"usageKey": 1, "matchType": "EXACT"}}), "utf-8")
    with GbifStandin(path) as gbif:
        yield gbif


def match(gbif: GbifStandin) -> requests.Response:
    return requests.get(f"{gbif.base_url}/species/match", params={"name": "Aus bus"}, timeout=5)


def test_a_gbif_outage_answers_its_status_for_its_time_then_ends(standin: GbifStandin) -> None:
    standin.outage(0.5, 503)
    time.sleep(0.6)  # the outage starts at the next request, not when it is set
    assert match(standin).status_code == 503
    time.sleep(0.6)
    assert match(standin).status_code == 200
    standin.outage(5, 429, retry_after_seconds=2)
    refused = match(standin)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "2")
    assert standin.rejected == 1
    standin.outage(0, None)
    assert match(standin).status_code == 200


def test_gbif_down_drops_every_connection_unanswered(standin: GbifStandin) -> None:
    standin.outage(5, None)
    with pytest.raises(requests.ConnectionError):
        match(standin)
    standin.outage(0, None)
    assert match(standin).json()["usageKey"] == 1


def workgroup(rt: LocalRuntime) -> str:
    assert rt.deployment
    return rt.clients["lambda"].get_function_configuration(
        FunctionName=f"{rt.deployment.stack_name}-submit_statements"
    )["Environment"]["Variables"]["REDSHIFT_WORKGROUP"]


def wait_status(rt: LocalRuntime, statement_id: str, wanted: set[str], timeout: float = 20) -> dict:
    data = rt.clients["redshift-data"]
    deadline = time.monotonic() + timeout
    while (described := data.describe_statement(Id=statement_id))["Status"] not in wanted:
        assert time.monotonic() < deadline, described
        time.sleep(0.1)
    return described


def test_a_statement_fails_as_redshift_fails_one_only_when_it_matches(
    runtime: LocalRuntime,
) -> None:
    data = runtime.clients["redshift-data"]
    with faults.sql_fault(r"SELECT 2") as injected:
        failed = data.execute_statement(
            WorkgroupName=workgroup(runtime), Database="dev", Sql="SELECT 2"
        )
        passed = data.execute_statement(
            WorkgroupName=workgroup(runtime), Database="dev", Sql="SELECT 3"
        )
        described = wait_status(runtime, failed["Id"], {"FINISHED", "FAILED"})
        assert wait_status(runtime, passed["Id"], {"FINISHED", "FAILED"})["Status"] == "FINISHED"
    assert described["Status"] == "FAILED"
    assert described["Error"].startswith("ERROR: fault injected: this statement fails")
    assert injected.fired == 1


def test_a_hanging_statement_runs_until_cancelled(runtime: LocalRuntime) -> None:
    data = runtime.clients["redshift-data"]
    with faults.sql_fault(r"SELECT 4", hang=True) as injected:
        hung = data.execute_statement(
            WorkgroupName=workgroup(runtime), Database="dev", Sql="SELECT 4"
        )
        wait_status(runtime, hung["Id"], {"STARTED"})
        time.sleep(1)
        assert data.describe_statement(Id=hung["Id"])["Status"] == "STARTED"
        data.cancel_statement(Id=hung["Id"])
        assert wait_status(runtime, hung["Id"], {"ABORTED", "FAILED"})["Status"] == "ABORTED"
    assert injected.fired == 1
    after = data.execute_statement(WorkgroupName=workgroup(runtime), Database="dev", Sql="SELECT 4")
    assert wait_status(runtime, after["Id"], {"FINISHED", "FAILED"})["Status"] == "FINISHED"


def invocations_logged(rt: LocalRuntime, function: str) -> int:
    """How many invocations of `function` ran: the REPORT lines of its log group, which
    the Lambda stand-in writes after each run of the function (lambda_worker)."""
    logs = rt.clients["logs"]
    try:
        pages = list(
            logs.get_paginator("filter_log_events").paginate(logGroupName=f"/aws/lambda/{function}")
        )
    except logs.exceptions.ResourceNotFoundException:
        return 0
    return sum(e["message"].startswith("REPORT ") for page in pages for e in page["events"])


def test_a_lambda_raises_as_lambda_reports_it_then_runs_again(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    name = f"{runtime.deployment.stack_name}-check_gbif"
    awslambda = runtime.clients["lambda"]
    event = json.dumps({"month": "2020-01"})
    with faults.lambda_raises("check_gbif", "Boom", "injected") as injected:
        ran = invocations_logged(runtime, name)
        first = awslambda.invoke(FunctionName=name, Payload=event)
        # It raised before doing anything: the function never ran (no REPORT line logged).
        assert invocations_logged(runtime, name) == ran
        second = awslambda.invoke(FunctionName=name, Payload=event)
    assert injected.fired == 1
    assert "FunctionError" in first
    assert json.loads(first["Payload"].read())["errorType"] == "Boom"
    assert "FunctionError" not in second
    assert json.loads(second["Payload"].read())["month"] == "2020-01"
    assert invocations_logged(runtime, name) == ran + 1


def test_a_padded_result_keeps_the_real_one(runtime: LocalRuntime) -> None:
    assert runtime.deployment
    name = f"{runtime.deployment.stack_name}-check_gbif"
    with faults.lambda_result_padded("check_gbif", "padding", 10):
        response = runtime.clients["lambda"].invoke(
            FunctionName=name, Payload=json.dumps({"month": "2020-01"})
        )
    result = json.loads(response["Payload"].read())
    assert result["padding"] == "x" * 10 and result.get("month") == "2020-01", result


def test_the_harness_sees_an_execution_s_lock_and_tokens(runtime: LocalRuntime) -> None:
    """what_is_left names what an ended execution still holds; a clean one passes."""
    assert runtime.deployment
    arn = runtime.start_execution("2026-13")  # fails in CheckGbif: nothing launched
    description = wait_for_end(runtime, arn, timeout=90)
    delivered(arn)  # the rule's cleanup of the failed run came first: it deletes tokens
    assert_nothing_left(runtime, arn)
    ssm = runtime.clients["ssm"]
    ssm.put_parameter(
        Name=f"/bisonflow/task-tokens/{description['name']}/calc_stats", Value="t", Type="String"
    )
    try:
        assert what_is_left(runtime, description) == [
            f"task token /bisonflow/task-tokens/{description['name']}/calc_stats is stored"
        ]
    finally:
        ssm.delete_parameter(Name=f"/bisonflow/task-tokens/{description['name']}/calc_stats")
    assert published_month(runtime, "2020-01") == {}
