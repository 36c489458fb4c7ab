"""`e3b`: exploration via elliptical episodic bonuses (Henaff et al. 2022).

An encoder phi is trained by inverse dynamics (predict a_t from phi(o_t), phi(o_{t+1})), so its
features keep what the agent's actions change and drop what they cannot (noise, a TV). Within
an episode each stream keeps C = lambda I + sum_k phi_k phi_k^T over the frames it has seen, and
r_{t+1} = phi(o_{t+1})^T C^{-1} phi(o_{t+1}): large for a frame unlike the episode's so far,
small for one its span already covers. C^{-1} is updated in place by Sherman-Morrison.

Episodes without episodes: VRChat has none. The memory is cleared where the world says an
episode starts (the Doom world does), and also every `horizon` steps of a stream when
`horizon` > 0 (the live graph's stand-in for an episode: a memory over a time window).
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from pamiq.learning.models import action_features
from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import (
    EpisodicReward,
    Transitions,
    adam,
    minibatches,
    train_steps,
)
from pamiq.vocabulary import DISCRETE_ACTION_CHOICES

LEARNING_RATE = 1e-4
FEATURES = 256
# lambda, for unit-length features. The paper's 0.1 was on features of no fixed length; on ours
# (layer-normalised, length 16) it is a ridge of 0.1 / 256 relative to one frame, so the first
# frames of an episode pay thousands and the rest next to nothing. Chosen offline with
# bench/e3b_ridge.py (random rollouts on training seed 0, a fresh encoder and two screening
# runs'): the per-step bonus's correlation with the true cell's 1/sqrt(N) is 0.18-0.22 at the
# paper's relative ridge, 0.32-0.39 at 1, 0.40-0.43 at 10 and 0.41-0.44 at 30.
RIDGE = 10.0
MINIBATCH = 256
EPOCHS = 1.0


class InverseDynamicsEncoder(nn.Module):
    """phi (trunk, then a linear map to FEATURES) and the inverse model that trains it."""

    def __init__(self, preset: ModelPreset, action_space: str) -> None:
        super().__init__()
        self.action_space = action_space
        trunk = preset.trunk()
        self.encoder = nn.Sequential(trunk, nn.Linear(trunk.dim, FEATURES))
        outputs = sum(DISCRETE_ACTION_CHOICES) if action_space == 'discrete' else 3
        self.inverse = nn.Sequential(
            nn.Linear(2 * FEATURES, 256), nn.ReLU(), nn.Linear(256, outputs)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """phi(o), layer-normalised (length sqrt(FEATURES)): with random or young features one
        shared direction holds most of every frame's vector, and the bonus then measures that,
        not novelty. Tuned on training seed 0: without it the inverse model's loss fell
        4.68 -> 4.63 in 1e5 steps and the policy's entropy stayed at 4.63 of 4.68; with it
        4.97 -> 4.30 and 4.27."""
        return F.layer_norm(self.encoder(x), (FEATURES,))

    def loss(self, obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor):
        """Cross-entropy per button (discrete) or MSE of the axes (continuous)."""
        z, next_z = self(torch.cat([obs, next_obs])).chunk(2)
        predicted = self.inverse(torch.cat([z, next_z], -1))
        if self.action_space == 'continuous':
            return F.mse_loss(predicted, action_features(action, 'continuous'))
        logits = predicted.split(DISCRETE_ACTION_CHOICES, -1)
        return sum(F.cross_entropy(lg, action[:, k].long()) for k, lg in enumerate(logits))


class EllipticalMemory:
    """C^{-1} per stream, (streams, d, d), grown on demand."""

    def __init__(self, dim: int, ridge: float = RIDGE) -> None:
        self.dim, self.ridge = dim, ridge
        self.inverse = torch.zeros(0, dim, dim)
        self.steps = torch.zeros(0, dtype=torch.long)  # frames in each stream's memory

    def ensure(self, streams: int, device) -> None:
        if len(self.inverse) < streams:
            grow = streams - len(self.inverse)
            eye = torch.eye(self.dim, device=device) / self.ridge
            self.inverse = torch.cat([self.inverse.to(device), eye.expand(grow, -1, -1)])
            self.steps = torch.cat([self.steps, torch.zeros(grow, dtype=torch.long)])

    def clear(self, streams: torch.Tensor) -> None:
        if len(streams):
            self.inverse[streams] = torch.eye(self.dim, device=self.inverse.device) / self.ridge
            self.steps[streams] = 0

    def bonus_and_add(self, features: torch.Tensor, streams: torch.Tensor) -> torch.Tensor:
        """b = u^T C^{-1} u for each stream's u, then C += u u^T (Sherman-Morrison)."""
        self.ensure(int(streams.max()) + 1, features.device)
        every = len(streams) == len(self.inverse) and bool(
            (streams == torch.arange(len(streams), device=streams.device)).all()
        )
        # All streams in order (pamiq train's every step): update C^{-1} in place, no copies.
        inverse = self.inverse if every else self.inverse[streams]  # (B, d, d)
        cu = torch.bmm(inverse, features.unsqueeze(-1))  # C^{-1} u, (B, d, 1)
        bonus = (features * cu.squeeze(-1)).sum(-1)
        scaled = cu / (1.0 + bonus).sqrt().view(-1, 1, 1)
        inverse.baddbmm_(scaled, scaled.transpose(1, 2), alpha=-1.0)
        if not every:
            self.inverse[streams] = inverse
        self.steps[streams.cpu()] += 1
        return bonus


class EllipticalEpisodicBonus(EpisodicReward):
    name = 'e3b'
    metrics = ('e3b/loss',)

    def __init__(
        self,
        preset: ModelPreset,
        action_space: str,
        horizon: int = 0,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(horizon)
        self.preset = preset
        self.models = {'e3b': InverseDynamicsEncoder(preset, action_space)}
        self.optimizers = {'e3b': adam(self.models['e3b'], learning_rate or LEARNING_RATE)}
        self.memory = EllipticalMemory(FEATURES)

    def device(self):
        return next(self.models['e3b'].parameters()).device

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        self.forget_past_horizon(streams)
        features = self.models['e3b'](self.preset.inputs(transitions.next_inputs, self.device()))
        unit = features / FEATURES**0.5  # the length RIDGE is chosen for
        return self.memory.bonus_and_add(unit, streams.to(features.device)).cpu()

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        model, device = self.models['e3b'], self.device()

        def loss(index):
            t = transitions.select(index)
            return model.loss(
                self.preset.inputs(t.inputs, device),
                t.actions.to(device),
                self.preset.inputs(t.next_inputs, device),
            )

        batches = minibatches(len(transitions), MINIBATCH, EPOCHS, generator)
        return {'e3b/loss': train_steps(model, self.optimizers['e3b'], (loss(i) for i in batches))}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {
            'memory_inverse': self.memory.inverse.detach().cpu().clone(),
            'memory_steps': self.memory.steps.clone(),
        }, {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        if 'memory_inverse' in tensors:  # a trainer, which never acts, keeps no memory
            self.memory.inverse = tensors['memory_inverse'].to(self.device()).clone()
            self.memory.steps = tensors['memory_steps'].clone()
