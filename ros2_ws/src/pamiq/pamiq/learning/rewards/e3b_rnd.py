"""`e3b_rnd`: a within-episode bonus scaled by a lifelong one (NGU's combination).

r = e3b(o_{t+1}) * clip(1 + (rnd(o_{t+1}) - mean) / std, 1, L), NGU's "lifelong curiosity
modulator" (Badia et al. 2020) with E3B as the episodic term: the episodic bonus says "new in
this episode", the modulator "and rarely seen at all", so a room visited in every episode
stops paying even when it is new to the episode. mean and std run over every RND error seen.
Both models learn as in their own files.
"""

from __future__ import annotations

import torch

from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import IntrinsicReward, RunningMeanStd, Transitions
from pamiq.learning.rewards.e3b import EllipticalEpisodicBonus
from pamiq.learning.rewards.rnd import RandomNetworkDistillation

MAX_MODULATION = 5.0  # NGU's L


class EpisodicLifelongBonus(IntrinsicReward):
    name = 'e3b_rnd'
    metrics = ('e3b/loss', 'rnd/loss')

    def __init__(
        self,
        preset: ModelPreset,
        action_space: str,
        horizon: int = 0,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__()
        self.episodic = EllipticalEpisodicBonus(preset, action_space, horizon, learning_rate)
        self.lifelong = RandomNetworkDistillation(preset, action_space, learning_rate)
        self.models = {**self.episodic.models, **self.lifelong.models}
        self.optimizers = {**self.episodic.optimizers, **self.lifelong.optimizers}
        self.error_rms = RunningMeanStd()

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        bonus = self.episodic.compute(transitions, streams)
        errors = self.lifelong.compute(transitions, streams)
        self.error_rms.update(errors)
        modulator = 1.0 + (errors - self.error_rms.mean.float()) / (self.error_rms.std() + 1e-8)
        return bonus * modulator.clamp(1.0, MAX_MODULATION)

    def forget(self, streams: torch.Tensor) -> None:
        self.episodic.forget(streams)

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        return {
            **self.episodic.train(transitions, generator),
            **self.lifelong.train(transitions, generator),
        }

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors, values = self.episodic.state_dict()
        tensors = dict(tensors)
        for key, value in self.error_rms.state_dict().items():
            tensors[f'error_rms/{key}'] = value.clone()
        return tensors, values

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        self.episodic.load_state_dict(tensors, values)
        saved = {
            k.removeprefix('error_rms/'): v
            for k, v in tensors.items()
            if k.startswith('error_rms/')
        }
        if saved:  # a trainer, which never acts, keeps no statistics of act-time errors
            self.error_rms.load_state_dict(saved)
