"""A reading of an API that is slow or may hang (placement, neutron), taken beside the
publisher's cycle: read again once `interval` has passed, in a thread of its own, so that
the health path never waits for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PeriodicReading(Generic[T]):
    """The latest reading, started again once `interval` has passed (one at a time; in
    the caller's thread when not `background`). A reading that fails is logged once until
    one succeeds, prefixed with `failure`, and leaves the last one in place, or `failed`
    when given (an opinion that must not outlive its source)."""

    def __init__(
        self,
        read: Callable[[], T],
        initial: T,
        failure: str,
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        background: bool = True,
        failed: T | None = None,
    ) -> None:
        self.read, self.interval, self.clock = read, interval, clock
        self.failure, self.failed = failure, failed
        self.background = background
        self.latest: T = initial
        self.read_at: float | None = None
        self.reading: threading.Thread | None = None
        self.failing = False

    def __call__(self, log: Callable[[str], None]) -> T:
        now = self.clock()
        due = self.read_at is None or now - self.read_at >= self.interval
        if due and not (self.reading is not None and self.reading.is_alive()):
            self.read_at = now
            if self.background:
                self.reading = threading.Thread(
                    target=self._read, args=(log,), name="periodic-reading", daemon=True
                )
                self.reading.start()
            else:
                self._read(log)
        return self.latest

    def _read(self, log: Callable[[str], None]) -> None:
        try:
            self.latest = self.read()
            self.failing = False
        except Exception as error:  # in a thread: logged, never a traceback
            if not self.failing:
                log(f"{self.failure}: {error}")
            self.failing = True
            if self.failed is not None:
                self.latest = self.failed
