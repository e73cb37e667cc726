"""Faults: AWS throttling and transient errors inside a Lambda (issue 11). boto3 retries them
a few times itself; what outlasts that leaves the Lambda as AwsTransientError, which every
Lambda step of the state machine retries with backoff, instead of failing the month."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from bisonflow import aws
from bisonflow.aws import AwsTransientError
from bisonflow.steps.lambda_edge import step_handler

EVENT = {"statement_id": "s-1", "step": "subset", "batch": 0, "batches": 1}


def client_error(code: str, status: int) -> ClientError:
    response = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "ExecuteStatement")  # type: ignore[arg-type]


def failing_with(exc: Exception):
    @step_handler("poll_statement")
    def handler(event: dict) -> dict:
        raise exc

    return handler


@pytest.mark.parametrize(
    "exc",
    [
        client_error("ThrottlingException", 400),
        client_error("ActiveStatementsExceededException", 400),
        client_error("InsufficientInstanceCapacity", 500),
        client_error("InternalServerException", 503),
        EndpointConnectionError(endpoint_url="https://redshift-data.us-east-1.amazonaws.com"),
    ],
)
def test_a_transient_error_leaves_the_lambda_as_one_the_state_machine_retries(
    exc: Exception,
) -> None:
    with pytest.raises(AwsTransientError, match="poll_statement: .*transient: the step is retried"):
        failing_with(exc)(EVENT)


@pytest.mark.parametrize(
    "exc",
    [client_error("AccessDeniedException", 400), client_error("ValidationException", 400)],
)
def test_other_errors_keep_their_own_name(exc: Exception) -> None:
    with pytest.raises(ClientError) as raised:
        failing_with(exc)(EVENT)
    assert raised.value is exc


def test_botocore_still_names_its_throttling_and_transient_codes() -> None:
    """The lists come from botocore's standard retry mode; an upgrade that moves them fails
    here rather than silently retrying nothing."""
    assert {"ThrottlingException", "TooManyRequestsException", "RequestTimeout"} <= (
        aws.TRANSIENT_CODES
    )
    assert {500, 502, 503, 504} == aws.TRANSIENT_STATUS
