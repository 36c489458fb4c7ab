"""How long messages wait in a subscription's queue before their callback takes them."""

from __future__ import annotations

from collections.abc import Callable
import time


class QueueWait:
    """Per source (an actor), how long its newest message waited between reaching the DDS
    reader (the message info's `received_timestamp`, wall clock) and being taken.

    `behind()` says whether a source is still catching up: its newest message waited over
    `limit` s and was taken less than `limit` s ago (once its queue is empty nothing more is
    taken, and after `limit` s the source counts as caught up).
    """

    def __init__(
        self,
        limit: float,
        now: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.limit, self.now, self.wall_ns = limit, now, wall_ns
        self.latest: dict[str, tuple[float, float]] = {}  # source -> (wait s, taken at)
        self.longest = 0.0

    def taken(self, source: str, info: dict) -> None:
        received = info.get('received_timestamp', 0)
        if received <= 0:
            return  # the RMW does not say
        wait = max(0.0, (self.wall_ns() - received) / 1e9)
        self.latest[source] = (wait, self.now())
        self.longest = max(self.longest, wait)

    def behind(self) -> bool:
        now = self.now()
        return any(
            wait > self.limit and now - taken <= self.limit for wait, taken in self.latest.values()
        )
