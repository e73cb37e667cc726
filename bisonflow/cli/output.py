"""Where `bisonflow`'s lines go: what a command did on stdout, warnings and errors on stderr.

Each line is flushed as it is printed: `run` and `local up` report progress for half a minute
and more, and a reader at the other end of a pipe (CI, `tee`, a test) must see each step as it
happens, not when the buffer fills.
"""

from __future__ import annotations

import sys


def say(message: str) -> None:
    """A line of what the command is doing or did (stdout)."""
    print(message, flush=True)


def warn(message: str) -> None:
    """A warning or the one line of an error (stderr)."""
    print(message, file=sys.stderr, flush=True)
