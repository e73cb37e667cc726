"""A task's background loops (its heartbeat, its Spot interruption watch) as one shape.

Both run beside the task's work in a daemon thread for exactly as long as a with-block: the
block's end stops the loop and waits for it, so no beat or check outlives the task's report.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Self


class Periodic(ABC):
    """Calls `tick` in a daemon thread every `interval` seconds inside a with-block (first at
    once when `at_once`); `tick` returning True ends the loop early."""

    #: Whether the first tick comes as the block starts rather than one interval later.
    at_once = False

    def __init__(self, interval: float, name: str) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @abstractmethod
    def tick(self) -> bool:
        """One beat or check; True when the loop is done."""

    def _loop(self) -> None:
        if self.at_once and self.tick():
            return
        while not self._stop.wait(self._interval):
            if self.tick():
                return
