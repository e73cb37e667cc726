"""The edge of every Lambda: validate the event, call the library, validate the result.

Keeps each function module to "parse event -> call library -> return a small dict". An AWS
error that is only transient (bisonflow.aws.transient: throttling, 5xx, network) leaves as
AwsTransientError, which the state machine retries with backoff.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from bisonflow.aws import AwsTransientError, transient, without_task_tokens
from bisonflow.schemas import validate

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

log = logging.getLogger("bisonflow")


def step_handler(step: str) -> Callable[[Callable[[dict[str, Any]], dict[str, Any]]], Handler]:
    """Wrap `fn(event) -> result` as a Lambda handler checked against definitions/<step>.*"""

    def decorate(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
            validate(event, f"{step}.input")
            log.info("%s input: %s", step, json.dumps(_loggable(event)))
            try:
                result = fn(event)
            except Exception as exc:
                if not transient(exc):
                    raise
                raise AwsTransientError(
                    f"{step}: {type(exc).__name__}: {exc} (transient: the step is retried)"
                ) from exc
            validate(result, f"{step}.output")
            log.info("%s output: %s", step, json.dumps(result))
            return result

        return handler

    return decorate


def _loggable(event: dict[str, Any]) -> dict[str, Any]:
    """The event without secrets: task tokens never reach a log."""
    loggable: dict[str, Any] = without_task_tokens(event)
    return loggable
