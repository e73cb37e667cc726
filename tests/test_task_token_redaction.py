"""The task token never reaches a Lambda's log line (docs/aws.md, "Where the task token
appears"): the edge logs each step's input with the token replaced."""

from __future__ import annotations

import logging

import pytest

from bisonflow.aws import REDACTED, without_task_tokens
from bisonflow.steps.lambda_edge import step_handler

TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAf-the-callback-token"


def test_the_edge_logs_a_launch_without_its_token(caplog: pytest.LogCaptureFixture) -> None:
    @step_handler("launch_task")
    def launch(event: dict) -> dict:
        raise RuntimeError("stop after the input line")

    event = {"task": "calc_stats", "month": "2026-11", "execution": "e", "task_token": TOKEN}
    with caplog.at_level(logging.INFO, logger="bisonflow"), pytest.raises(RuntimeError):
        launch(event)
    (line,) = [r.getMessage() for r in caplog.records if "launch_task input" in r.getMessage()]
    assert TOKEN not in line and REDACTED in line and "calc_stats" in line


def test_tokens_are_replaced_at_any_depth_and_nothing_else() -> None:
    nested = {"Payload": {"task_token": TOKEN, "month": "2026-11"}, "list": [{"task_token": 1}]}
    assert without_task_tokens(nested) == {
        "Payload": {"task_token": REDACTED, "month": "2026-11"},
        "list": [{"task_token": REDACTED}],
    }
    assert nested["Payload"]["task_token"] == TOKEN  # the caller's value is not changed
