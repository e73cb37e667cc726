"""bisonflow.aws: the one reading of an AWS error's code every caller uses, and the codes
of an S3 object that is not there, as botocore parses S3's answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from bisonflow.aws import OBJECT_MISSING, error_code


@pytest.mark.parametrize("response", [{}, {"Error": {}}, {"Error": {"Message": "no code"}}])
def test_an_answer_naming_no_code_has_the_empty_code(response: dict) -> None:
    """Not a KeyError in the handler of the error being handled: callers compare the code
    with the ones they expect, and "" is none of them."""
    assert error_code(ClientError(response, "GetObject")) == ""


class _Raw:
    """The body of a canned HTTP answer, as botocore reads it from urllib3."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object) -> Iterator[bytes]:
        yield self.body


def _s3_answering(status: int, body: bytes) -> Any:
    """An S3 client whose every request gets this HTTP answer, parsed by botocore as S3's."""
    s3 = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )

    def answer(request: Any, **_: object) -> AWSResponse:
        return AWSResponse(request.url, status, {}, _Raw(body))

    s3.meta.events.register("before-send.s3", answer)
    return s3


def test_a_missing_object_is_named_by_one_of_object_missing_for_get_and_head() -> None:
    """GetObject's 404 carries S3's XML error, NoSuchKey; HeadObject's has no body ("It's not
    possible to retrieve the exact exception"), so botocore names it by the status, "404".
    Both are OBJECT_MISSING; a missing bucket is not."""
    no_such = b"<Error><Code>%s</Code><Message>m</Message></Error>"
    cases = [
        (lambda s3: s3.get_object(Bucket="b", Key="k"), no_such % b"NoSuchKey"),
        (lambda s3: s3.head_object(Bucket="b", Key="k"), b""),
        (lambda s3: s3.get_object(Bucket="b", Key="k"), no_such % b"NoSuchBucket"),
    ]
    codes = []
    for call, body in cases:
        with pytest.raises(ClientError) as raised:
            call(_s3_answering(404, body))
        codes.append(error_code(raised.value))
    assert codes == ["NoSuchKey", "404", "NoSuchBucket"]
    assert [code in OBJECT_MISSING for code in codes] == [True, True, False]
