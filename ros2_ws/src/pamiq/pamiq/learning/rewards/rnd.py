"""`rnd`: random network distillation (Burda et al. 2018), a lifelong novelty bonus.

A fixed, randomly initialised target network maps the newest frame to 256 features; a
predictor learns to match it on the frames the agent has seen, and r_{t+1} is its squared error
on o_{t+1}: high on frames unlike those seen, falling as they become familiar. As the paper (and
CleanRL's RND PPO): the predictor and target read the newest frame only, normalised per pixel by
running statistics and clipped to [-5, 5]; the bonus is non-episodic (no per-episode memory).
"""

from __future__ import annotations

from dataclasses import replace
import math

import torch
from torch import nn

from pamiq.learning.models import layer_init
from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import (
    IntrinsicReward,
    RunningMeanStd,
    Transitions,
    adam,
    minibatches,
    train_steps,
)

LEARNING_RATE = 1e-4  # the paper's
FEATURES = 256
MINIBATCH = 256
EPOCHS = 1.0  # passes over an update's transitions (the paper's update_proportion 0.25 was
# for 128 environments; with 16 every transition is used once)
CLIP = 5.0


def newest_frame(preset: ModelPreset, stacked: torch.Tensor) -> torch.Tensor:
    """The last observation's view of (B, frames*C, H, W) stacked views."""
    channels = preset.view_shape[0]
    return stacked[:, -channels:]


class Distillation(nn.Module):
    """Target and predictor, with the observation statistics they normalise by."""

    def __init__(self, preset: ModelPreset) -> None:
        super().__init__()
        single = replace(preset, frames=1)
        target_trunk, predictor_trunk = single.trunk(), single.trunk()
        dim = target_trunk.dim
        self.target = nn.Sequential(target_trunk, nn.Linear(dim, FEATURES))
        self.predictor = nn.Sequential(
            predictor_trunk,
            layer_init(nn.Linear(dim, FEATURES)),
            nn.ReLU(),
            layer_init(nn.Linear(FEATURES, FEATURES)),
            nn.ReLU(),
            layer_init(nn.Linear(FEATURES, FEATURES)),
        )
        for layer in self.target.modules():
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer_init(layer, math.sqrt(2))
        self.target.requires_grad_(False)
        self.obs_rms = RunningMeanStd(preset.view_shape)

    def normalized(self, frames: torch.Tensor) -> torch.Tensor:
        mean = self.obs_rms.mean.to(torch.float32)
        return ((frames.to(torch.float32) - mean) / (self.obs_rms.std() + 1e-8)).clamp(-CLIP, CLIP)

    def errors(self, frames: torch.Tensor) -> torch.Tensor:
        """(B,) squared prediction error, mean over the features."""
        x = self.normalized(frames)
        return (self.predictor(x) - self.target(x)).pow(2).mean(-1)


class RandomNetworkDistillation(IntrinsicReward):
    name = 'rnd'
    metrics = ('rnd/loss',)

    def __init__(
        self, preset: ModelPreset, action_space: str, learning_rate: float | None = None
    ) -> None:
        super().__init__()
        self.preset = preset
        self.models = {'rnd': Distillation(preset)}
        self.optimizers = {
            'rnd': adam(self.models['rnd'].predictor, learning_rate or LEARNING_RATE)
        }

    def frames(self, stacked: torch.Tensor) -> torch.Tensor:
        device = self.models['rnd'].obs_rms.mean.device
        return newest_frame(self.preset, stacked).to(device)

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        return self.models['rnd'].errors(self.frames(transitions.next_inputs)).cpu()

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        model = self.models['rnd']
        frames = self.frames(transitions.next_inputs)
        model.obs_rms.update(frames.to(torch.float64))
        batches = minibatches(len(frames), MINIBATCH, EPOCHS, generator)
        loss = train_steps(
            model.predictor,
            self.optimizers['rnd'],
            (model.errors(frames[i]).mean() for i in batches),
        )
        return {'rnd/loss': loss}
