"""`zero`: no intrinsic reward. PPO then learns from nothing but its own entropy bonus: the
control that says whether a reward's signal matters at all."""

from __future__ import annotations

import torch

from pamiq.learning.rewards.base import IntrinsicReward, Transitions


class ZeroReward(IntrinsicReward):
    name = 'zero'

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(transitions))
