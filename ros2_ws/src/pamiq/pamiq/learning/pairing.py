"""Pairing the messages of one frame (observation, action, step) by their shared stamp.

The agent publishes agent/observation, action and agent/step with the frame's stamp (and with
more senses agent/hearing and agent/body); the trainer (live, with a timeout) and offline
training (from bags) both join them here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
import time
from typing import Any

PARTS = ('observation', 'action', 'step')


class StampPairer:
    """Joins the parts of one frame by stamp; `expire` gives up frames that cannot be completed.

    A part lacked by frame S can no longer come once that part has brought a later frame: one
    publisher's messages arrive in order, so it was lost. That is decided by what arrived, not by
    the clock: a trainer that fell behind still has the part in its queue, and waiting does not
    lose it. Only a frame whose missing part went silent (its actor paused, left or restarted) is
    given up by wall time, after `timeout` s.

    A dropped frame counts as `dropped` (a part was lost) unless every part it lacks was first
    heard only after it: then it came before that part's subscription matched (each topic's
    subscription matches on its own when an actor joins, and a volatile topic never sends what
    came before), and it counts as `before_matched`.
    """

    def __init__(
        self,
        timeout: float = float('inf'),
        now: Callable[[], float] = time.monotonic,
        parts: tuple[str, ...] = PARTS,
    ) -> None:
        self.timeout, self.now, self.parts = timeout, now, parts
        self.pending: dict[int, dict[str, Any]] = {}
        self.arrived: dict[int, float] = {}
        self.first: dict[str, int] = {}  # part -> stamp of the first value heard
        self.latest: dict[str, int] = {}  # part -> stamp of the newest value heard
        self.dropped = 0
        self.missing: Counter[str] = Counter()  # part -> dropped frames that lacked it
        self.before_matched = 0

    def add(self, stamp_ns: int, part: str, value: Any) -> dict[str, Any] | None:
        """Add one part; returns {part: value} for all parts once the frame is complete."""
        if part not in self.parts:
            raise ValueError(f'part must be one of {self.parts}, got {part!r}')
        self.first.setdefault(part, stamp_ns)
        self.latest[part] = stamp_ns
        entry = self.pending.setdefault(stamp_ns, {})
        self.arrived.setdefault(stamp_ns, self.now())
        entry[part] = value
        if len(entry) < len(self.parts):
            return None
        del self.pending[stamp_ns], self.arrived[stamp_ns]
        return entry

    def expire(self) -> None:
        deadline = self.now() - self.timeout
        for stamp in list(self.pending):
            missing = [part for part in self.parts if part not in self.pending[stamp]]
            passed = all(self.latest.get(part, stamp) > stamp for part in missing)
            if not passed and self.arrived[stamp] >= deadline:
                continue
            if all(self.first.get(part, stamp + 1) > stamp for part in missing):
                self.before_matched += 1
            else:
                self.dropped += 1
                self.missing.update(missing)
            del self.pending[stamp], self.arrived[stamp]

    def incomplete(self) -> int:
        """Frames still missing a part."""
        return len(self.pending)
