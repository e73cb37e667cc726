"""How `bisonflow` ends when it cannot finish: one line, a conventional exit code, no traceback.

A newcomer who mistypes a path must read what was wrong and how to fix it, not 60 lines of
Python (issue 12). So every error a user can cause ends in one line on stderr and exit code 2;
Ctrl-C and SIGTERM end with exit 128 + the signal's number (130, 143), as a shell reports a
process a signal ended, after the local runtime has been stopped and its work directory
removed; a reader that stops reading (`bisonflow history X --json | head`) ends the command
quietly with 141 (128 + SIGPIPE), as `cat` or `grep` end in the same pipeline, so a script
under `set -o pipefail` sees bisonflow behave as every other tool. `--debug` or
BISONFLOW_DEBUG=1 lets the exception through with its traceback instead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Set to 1 (or pass --debug) to see the traceback behind a one-line error.
DEBUG_VARIABLE = "BISONFLOW_DEBUG"
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class Stopped(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived: unwind as Ctrl-C does, so every `with` cleans up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def debugging(flag: bool = False) -> bool:
    return flag or os.environ.get(DEBUG_VARIABLE, "").strip() not in ("", "0")


def one_line(message: object) -> str:
    """The message on one line: a multi-line error is joined, never cut."""
    return " ".join(str(message).split())


#: Set when SIGINT or SIGTERM arrived (under stop_on_signals), even if the Stopped it raised
#: was lost: a signal handler's exception raised while the main thread runs a finalizer
#: (__del__, a weakref callback) is printed as "Exception ignored" and dropped, and the
#: command then carried on (a `local up` stopped while starting kept serving).
STOP_REQUESTED = threading.Event()


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM unwind the main thread (raising Stopped, a
    KeyboardInterrupt) and set STOP_REQUESTED, so `local up` / `run` stop the emulator and
    remove their work directory on `kill` as on Ctrl-C."""

    def unwind(signum: int, frame: object) -> None:
        STOP_REQUESTED.set()
        raise Stopped(signum)

    STOP_REQUESTED.clear()
    try:
        previous = {s: signal.signal(s, unwind) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (main() called from a thread): leave them as is
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def raise_if_stopped() -> None:
    """Raise Stopped if SIGINT or SIGTERM arrived and its exception was lost."""
    if STOP_REQUESTED.is_set():
        raise Stopped(signal.SIGTERM)


def wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM (which raises Stopped here, or has already set
    STOP_REQUESTED if its exception was lost)."""
    while not STOP_REQUESTED.wait(1.0):
        pass
    raise Stopped(signal.SIGTERM)


def ended(
    command: Callable[[], int],
    message_of: Callable[[BaseException], str | None],
    debug: bool,
    say: Callable[[str], None],
) -> int:
    """Run `command`; turn a user's error (message_of gives its line, None for a defect),
    an interruption or a closed output pipe into an exit code and at most one line. A user's
    error raises SystemExit(2), as argparse does for a bad argument."""
    try:
        return command()
    except KeyboardInterrupt as exc:
        if debug:
            raise
        signum = exc.signum if isinstance(exc, Stopped) else signal.SIGINT
        say(f"bisonflow: stopped ({signal.Signals(signum).name})")
        return 128 + signum
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        message = message_of(exc)
        if debug or message is None:
            raise
        say(f"bisonflow: {one_line(message)}")
        raise SystemExit(EXIT_USAGE) from None  # as argparse ends on a bad argument


def _discard_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush would fail on the closed pipe
    and print "Exception ignored ... BrokenPipeError" (Python docs, signal module, "Note on
    SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    finally:
        os.close(devnull)
