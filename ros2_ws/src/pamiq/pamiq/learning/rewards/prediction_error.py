"""`prediction_error`: P-AMI<Q>'s curiosity, the forward model's error in an embedding space.

[Original design] z = phi(o) from an inverse-dynamics encoder; a forward model predicts
z^_{t+1} = f(a_{t-1}, z_t, a_t) and r_{t+1} = mean_d (z^_{t+1} - z_{t+1})^2
(pamiq.learning.curiosity). [Here] the same models (pamiq.learning.models' InverseDynamics
predictor and ForwardDynamics) on a preset's trunk; the encoder learns for its first
`ENCODER_UPDATES` updates and is then frozen, as the live trainer does (`encoder_rounds`), so
the forward model stops chasing a moving target. Lifelong: no per-episode memory.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from pamiq.learning.curiosity import curiosity_reward
from pamiq.learning.models import ForwardDynamics, action_feature_dim, action_features
from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import (
    IntrinsicReward,
    Transitions,
    adam,
    minibatches,
    train_steps,
)

LEARNING_RATE = 1e-4  # the original's, for both models
ENCODER_UPDATES = 5  # the live trainer's encoder_rounds default
MINIBATCH = 256
EPOCHS = 1.0  # passes over an update's transitions, for each model


class Embedding(nn.Module):
    """phi: a preset's trunk, layer-normalised (nothing else bounds an inverse-dynamics
    feature's scale), with the inverse-dynamics head that trains it."""

    def __init__(self, preset: ModelPreset, action_dim: int) -> None:
        super().__init__()
        self.trunk = preset.trunk()
        self.dim = self.trunk.dim
        self.predictor = nn.Sequential(
            nn.Linear(2 * self.dim, 256), nn.ReLU(), nn.Linear(256, 2 * action_dim)
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(self.trunk(x), (self.dim,))

    def loss(self, prev_action_feat, obs, action_feat, next_obs) -> torch.Tensor:
        """MSE of (a_{t-1}, a_t) predicted from (z_t, z_{t+1}), as the original's encoder."""
        prev_pred, pred = self.predictor(
            torch.cat([self.embed(obs), self.embed(next_obs)], -1)
        ).chunk(2, -1)
        return F.mse_loss(prev_pred, prev_action_feat) + F.mse_loss(pred, action_feat)


class PredictionError(IntrinsicReward):
    name = 'prediction_error'
    metrics = ('encoder/loss', 'forward_dynamics/loss')

    def __init__(
        self, preset: ModelPreset, action_space: str, learning_rate: float | None = None
    ) -> None:
        super().__init__()
        self.preset, self.action_space = preset, action_space
        action_dim = action_feature_dim(action_space)
        encoder = Embedding(preset, action_dim)
        # The original's 512-wide, 4-block forward model reads the original's 512 features;
        # the compact preset's 288 get a forward model of half its width and depth.
        hidden, depth = (512, 4) if preset.name == 'original' else (256, 2)
        dynamics = ForwardDynamics(action_dim, encoder.dim, hidden, depth)
        self.models = {'encoder': encoder, 'forward_dynamics': dynamics}
        self.optimizers = {
            name: adam(m, learning_rate or LEARNING_RATE) for name, m in self.models.items()
        }
        self.updates = 0
        self.last_embedded: tuple[torch.Tensor, torch.Tensor] | None = None  # (o_{t+1}, z_{t+1})

    def on_new_weights(self) -> None:
        self.last_embedded = None

    def features(self, actions: torch.Tensor) -> torch.Tensor:
        return action_features(actions, self.action_space)

    def embed(self, stacked: torch.Tensor) -> torch.Tensor:
        device = next(self.models['encoder'].parameters()).device
        return self.models['encoder'].embed(self.preset.inputs(stacked, device))

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        last = self.last_embedded
        if last is not None and torch.equal(last[0], transitions.inputs):
            # o_t is the o_{t+1} of the previous call (each step of a stream): embedded already
            z, next_z = last[1], self.embed(transitions.next_inputs)
        else:
            z, next_z = self.embed(torch.cat([transitions.inputs, transitions.next_inputs])).chunk(
                2
            )
        self.last_embedded = (transitions.next_inputs, next_z)
        predicted = self.models['forward_dynamics'](
            self.features(transitions.previous_actions.to(z.device)),
            z,
            self.features(transitions.actions.to(z.device)),
        )
        return curiosity_reward(predicted, next_z).cpu()

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        losses = {}
        encoder, dynamics = self.models['encoder'], self.models['forward_dynamics']
        device = next(encoder.parameters()).device
        batches = minibatches(len(transitions), MINIBATCH, EPOCHS, generator)

        def batch(index):
            t = transitions.select(index)
            return (
                self.features(t.previous_actions.to(device)),
                self.preset.inputs(t.inputs, device),
                self.features(t.actions.to(device)),
                self.preset.inputs(t.next_inputs, device),
            )

        if self.updates < ENCODER_UPDATES:
            self.last_embedded = None  # embedded by the encoder before this update
            losses['encoder/loss'] = train_steps(
                encoder,
                self.optimizers['encoder'],
                (encoder.loss(*batch(i)) for i in batches),
            )
            batches = minibatches(len(transitions), MINIBATCH, EPOCHS, generator)

        def dynamics_loss(index):
            previous, obs, action, next_obs = batch(index)
            with torch.no_grad():  # the encoder learns from its own loss only
                z, next_z = encoder.embed(torch.cat([obs, next_obs])).chunk(2)
            return dynamics.loss(previous, z, action, next_z)

        losses['forward_dynamics/loss'] = train_steps(
            dynamics, self.optimizers['forward_dynamics'], (dynamics_loss(i) for i in batches)
        )
        self.updates += 1
        return losses

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {}, {'updates': self.updates}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        self.updates = int(values['updates'])
