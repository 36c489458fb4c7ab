"""Two updates that run at once share the cores, and the one left running takes them all.

With `concurrent_updates` the policy's update (PPO) and the embedding models' (encoder, forward
model) run on two threads of `torch_threads` each. They rarely end together: in the lockstep
graph the one left running held a core idle for the last 1-3 s of a 5-6 s round while the actors
waited for the weights (30-45 % of the machine idle then, /proc/stat in 0.1 s steps). So once
either has finished, the other widens to both shares at its next minibatch.

torch's thread count belongs to the thread that sets it (OpenMP's and MKL's per-thread
settings), so each update sets its own, at its own minibatch boundaries.
"""

from __future__ import annotations

from collections.abc import Callable
import threading
from typing import TypeVar

import torch

T = TypeVar('T')


class SharedCores:
    """One round's pair of updates; `each` torch threads per update while both run."""

    def __init__(self, each: int) -> None:
        self.each = each
        self.finished = threading.Event()  # one of the two is done

    def run(self, update: Callable[[Callable[[], bool]], T], should_stop: Callable[[], bool]) -> T:
        """`update(check)`, on the calling thread: `check` is `should_stop` that also widens
        the thread to both shares once the other update has finished."""
        torch.set_num_threads(self.each)
        wide = False

        def check() -> bool:
            nonlocal wide
            if not wide and self.finished.is_set():
                torch.set_num_threads(2 * self.each)
                wide = True
            return should_stop()

        try:
            return update(check)
        finally:
            self.finished.set()
            torch.set_num_threads(self.each)
