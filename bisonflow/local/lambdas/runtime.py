"""The process a local Lambda worker runs: import the handler once, then serve invocations.

It plays the part of Lambda's Python runtime inside one execution environment. The parent
(`bisonflow.local.lambdas.worker`) writes one JSON request per line on stdin; this process
answers one JSON line on the protocol channel. Whatever the handler prints or logs is captured
per invocation and returned as the invocation's log, as Lambda ships it to CloudWatch Logs.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes of Lambda's Python context object that handlers use."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name: str = request["function_name"]
        self.function_version: str = request["function_version"]
        self.invoked_function_arn: str = request["invoked_function_arn"]
        self.memory_limit_in_mb: int = int(request["memory_limit_in_mb"])
        self.aws_request_id: str = request["request_id"]
        self.log_group_name: str = request["log_group_name"]
        self.log_stream_name: str = request["log_stream_name"]
        self._deadline_ms: float = float(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


class _CurrentStderr(io.TextIOBase):
    """Log records go wherever sys.stderr points during the invocation."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)


def _load_handler(spec: str) -> Any:
    module_name, _, func_name = spec.rpartition(".")
    module = importlib.import_module(module_name)
    return getattr(module, func_name)


def _error_payload(exc: BaseException) -> dict[str, Any]:
    # Skip this module's own frame: the trace starts in the handler, as on Lambda.
    tb = exc.__traceback__.tb_next if exc.__traceback__ else None
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_tb(tb),
    }


def serve(handler_spec: str, channel: io.TextIOBase) -> None:
    logging.basicConfig(
        stream=_CurrentStderr(),
        level=os.environ.get("AWS_LAMBDA_LOG_LEVEL", "INFO"),
        format="[%(levelname)s]\t%(asctime)s\t%(name)s\t%(message)s",
    )
    try:
        handler = _load_handler(handler_spec)
        init_error = None
    except (
        Exception
    ) as exc:  # reported on every invocation, as Lambda reports Runtime.ImportModuleError
        handler, init_error = None, exc
    for line in sys.stdin:
        request = json.loads(line)
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
            if init_error is not None:
                ok, payload = False, _error_payload(init_error)
                payload["errorType"] = "Runtime.ImportModuleError"
            else:
                try:
                    result = handler(request["event"], LambdaContext(request))
                    payload = json.loads(json.dumps(result))
                    ok = True
                except Exception as exc:
                    ok, payload = False, _error_payload(exc)
                    print(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}")
                    print("".join(payload["stackTrace"]), end="")
        channel.write(
            json.dumps({"ok": ok, "payload": payload, "logs": captured.getvalue()}) + "\n"
        )
        channel.flush()


def main() -> None:
    # The protocol channel is a private copy of fd 1; fd 1 itself is pointed at stderr so that
    # stray writes (C extensions, subprocesses) can never corrupt the protocol.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    serve(sys.argv[1], channel)


if __name__ == "__main__":
    main()
