"""`oracle_count` and `oracle_lifelong_count`: 1/sqrt(N) of the player's true 64x64 cell.

Ceilings, not agents: they read the world's ground-truth pose (world/pose), which no camera
gives. N counts arrivals in the cell, the one being rewarded included (the first visit is worth
1). `oracle_count` counts within the episode (per stream, cleared at an episode's start): the
ceiling for a within-episode bonus such as E3B. `oracle_lifelong_count` counts over the whole run
and every stream: the ceiling for a lifelong bonus such as RND.
"""

from __future__ import annotations

from collections import Counter

import torch

from pamiq.doom.geometry import CELL
from pamiq.learning.rewards.base import IntrinsicReward, Transitions


class OracleCount(IntrinsicReward):
    name = 'oracle_count'
    uses_positions = True
    lifelong = False

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[int, Counter] = {}  # stream (or -1 for the lifelong count) -> cells

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        if transitions.positions is None:
            raise ValueError(f'{self.name} needs the true positions (world/pose)')
        cells = torch.div(transitions.positions.cpu(), CELL, rounding_mode='floor').long()
        rewards = []
        for stream, (x, y) in zip(streams.tolist(), cells.tolist()):
            counts = self.counts.setdefault(-1 if self.lifelong else stream, Counter())
            counts[(x, y)] += 1
            rewards.append(counts[(x, y)] ** -0.5)
        return torch.tensor(rewards)

    def forget(self, streams: torch.Tensor) -> None:
        if not self.lifelong:
            for stream in streams.tolist():
                self.counts.pop(stream, None)

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {
            'counts': {
                str(stream): [[x, y, n] for (x, y), n in counts.items()]
                for stream, counts in self.counts.items()
            }
        }

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        self.counts = {
            int(stream): Counter({(x, y): n for x, y, n in cells})
            for stream, cells in values['counts'].items()
        }


class OracleLifelongCount(OracleCount):
    name = 'oracle_lifelong_count'
    lifelong = True
