"""bisonflow.aws.error_code: the one reading of an AWS error's code every caller uses."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from bisonflow.aws import error_code


def test_the_code_of_an_error_botocore_parsed_from_the_service() -> None:
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", service_error_code="NoSuchKey", http_status_code=404)
        with pytest.raises(ClientError) as raised:
            s3.get_object(Bucket="b", Key="k")
    assert error_code(raised.value) == "NoSuchKey"


@pytest.mark.parametrize("response", [{}, {"Error": {}}, {"Error": {"Message": "no code"}}])
def test_an_answer_naming_no_code_has_the_empty_code(response: dict) -> None:
    """Not a KeyError in the handler of the error being handled: callers compare the code
    with the ones they expect, and "" is none of them."""
    assert error_code(ClientError(response, "GetObject")) == ""  # type: ignore[arg-type]
