"""Issue 12: SIGINT and SIGTERM stop a command even when the exception their handler raised
was lost (raised inside a finalizer, which Python reports as "Exception ignored" and drops):
a `local up` stopped while starting went on to serve."""

from __future__ import annotations

import os
import signal
import time

import pytest

from bisonflow.cli.errors import (
    STOP_REQUESTED,
    Stopped,
    raise_if_stopped,
    stop_on_signals,
    wait_for_stop,
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_lost_stop_is_still_seen(signum: int) -> None:
    with stop_on_signals():
        raise_if_stopped()  # nothing yet
        try:
            os.kill(os.getpid(), signum)
            time.sleep(2)  # the handler raises here
        except Stopped as exc:
            assert exc.signum == signum and isinstance(exc, KeyboardInterrupt)
            # ...and the exception is lost, as a finalizer's would be
        with pytest.raises(Stopped):
            raise_if_stopped()
        started = time.monotonic()
        with pytest.raises(Stopped):
            wait_for_stop()
        assert time.monotonic() - started < 0.5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_each_command_starts_with_no_stop_requested() -> None:
    STOP_REQUESTED.set()
    with stop_on_signals():
        raise_if_stopped()
