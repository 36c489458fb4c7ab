"""`place_count`: 1/sqrt(N) of the place a frame shows, places learned from time.

The episodic oracle pays 1/sqrt(N) of the true cell and is the one reward here that taught a
memoryless policy to cover the maze; E3B, whose bonus pays for any new view, taught it to run in
circles or jitter against a wall (docs/evaluation.md). This reward keeps the oracle's count and
replaces the true cell by a learned one.

An encoder psi maps a frame to a unit vector, trained by temporal contrast (InfoNCE): a frame and
one from at most POSITIVE_WITHIN steps later or earlier in the same episode are pulled together,
frames of other streams and episodes pushed apart. Frames a few steps apart show the same place
from nearby and from other angles, so psi learns what stays while the agent turns and sways (the
place) and drops what changes (the view), the idea of episodic curiosity through reachability
(Savinov et al. 2019) with a contrastive loss in place of its comparator network.

Within an episode each stream remembers the psi of every frame it has seen (a ring of MEMORY),
and r_{t+1} = 1 / sqrt(1 + N), with N = sum over the memory m of
sigmoid((cos(psi(o_{t+1}), m) - SAME) / SOFT), a soft count of the frames seen at this place
before. Turning on the spot or pushing into a wall keeps the same place, so its count grows and
it stops paying; a new room pays 1.

Episodes without episodes: as E3B's, the memory is cleared where the world says an episode starts
and, when `horizon` > 0, every `horizon` steps of a stream.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import (
    EpisodicReward,
    Transitions,
    adam,
    minibatches,
    train_steps,
)

LEARNING_RATE = 1e-4
FEATURES = 64
POSITIVE_WITHIN = 4  # steps: ~40 map units at a run, under a 64-unit cell
# Frames of the same episode closer than this are left out as negatives (they may be one place).
NEGATIVE_BEYOND = 3 * POSITIVE_WITHIN
TEMPERATURE = 0.1
# The soft count's cosine at which two frames count as one place, and its softness.
SAME = 0.8
SOFT = 0.05
MEMORY = 1024  # frames per stream (a Doom episode is at most 700 steps)
MINIBATCH = 256
EPOCHS = 1.0


class PlaceEncoder(nn.Module):
    """psi: the preset's trunk, a linear map to FEATURES, batch-normalised, unit length. The
    batch norm centres the features on their running mean: a trunk's features share one large
    direction, which would put every frame at cosine ~1 to every other (one place)."""

    def __init__(self, preset: ModelPreset) -> None:
        super().__init__()
        trunk = preset.trunk()
        self.encoder = nn.Sequential(
            trunk, nn.Linear(trunk.dim, FEATURES), nn.BatchNorm1d(FEATURES, affine=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(x), dim=-1)

    def loss(self, anchors: torch.Tensor, positives: torch.Tensor, same_place: torch.Tensor):
        """Symmetric InfoNCE: row i's positive is positives[i], the rest of the batch its
        negatives, except where `same_place` (B, B) says they may show the same place."""
        z, z_pos = self(torch.cat([anchors, positives])).chunk(2)
        logits = z @ z_pos.T / TEMPERATURE
        eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(same_place & ~eye, float('-inf'))
        labels = torch.arange(len(z), device=z.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def positive_pairs(
    segments: torch.Tensor, times: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor, partner) indices: for each transition one of its segment's others at most
    POSITIVE_WITHIN steps away, drawn at random; transitions with none drawn are left out."""
    keys = segments * (int(times.max()) + 2 * POSITIVE_WITHIN + 1) + times
    order = torch.argsort(keys)
    sorted_keys = keys[order]
    offsets = torch.randint(1, POSITIVE_WITHIN + 1, keys.shape, generator=generator)
    signs = torch.randint(0, 2, keys.shape, generator=generator) * 2 - 1
    wanted = keys + offsets * signs
    at = torch.searchsorted(sorted_keys, wanted).clamp(max=len(keys) - 1)
    found = sorted_keys[at] == wanted
    return torch.nonzero(found).squeeze(1), order[at[found]]


class PlaceMemory:
    """Each stream's psi of the frames it has seen, (streams, MEMORY, FEATURES), as a ring."""

    def __init__(self, dim: int, capacity: int = MEMORY) -> None:
        self.dim, self.capacity = dim, capacity
        self.frames = torch.zeros(0, capacity, dim)
        self.steps = torch.zeros(0, dtype=torch.long)  # frames each stream has added

    def ensure(self, streams: int, device) -> None:
        if len(self.frames) < streams:
            grow = streams - len(self.frames)
            empty = torch.zeros(grow, self.capacity, self.dim, device=device)
            self.frames = torch.cat([self.frames.to(device), empty])
            self.steps = torch.cat([self.steps, torch.zeros(grow, dtype=torch.long)])

    def clear(self, streams: torch.Tensor) -> None:
        if len(streams):
            self.frames[streams] = 0.0
            self.steps[streams] = 0

    def count_and_add(self, features: torch.Tensor, streams: torch.Tensor) -> torch.Tensor:
        """N, the soft count of each stream's remembered frames at the place `features` show;
        then each is remembered."""
        self.ensure(int(streams.max()) + 1, features.device)
        held = self.steps[streams.cpu()]  # frames each stream has added so far
        remembered = self.frames[streams]  # (B, MEMORY, d)
        similarity = torch.bmm(remembered, features.unsqueeze(-1)).squeeze(-1)
        filled = torch.arange(self.capacity, device=features.device) < held.to(
            features.device
        ).unsqueeze(1)
        count = (torch.sigmoid((similarity - SAME) / SOFT) * filled).sum(-1)
        self.frames[streams, (held % self.capacity).to(features.device)] = features
        self.steps[streams.cpu()] += 1
        return count


class PlaceCount(EpisodicReward):
    name = 'place_count'
    metrics = ('place_count/loss',)

    def __init__(
        self,
        preset: ModelPreset,
        action_space: str,
        horizon: int = 0,
        learning_rate: float | None = None,
    ) -> None:
        super().__init__(horizon)
        self.preset = preset
        # eval: acting uses the batch norm's running statistics (train_steps trains, then back)
        self.models = {'place_count': PlaceEncoder(preset).eval()}
        self.optimizers = {
            'place_count': adam(self.models['place_count'], learning_rate or LEARNING_RATE)
        }
        self.memory = PlaceMemory(FEATURES)

    def device(self):
        return next(self.models['place_count'].parameters()).device

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        self.forget_past_horizon(streams)
        inputs = self.preset.inputs(transitions.next_inputs, self.device())
        features = self.models['place_count'](inputs)
        count = self.memory.count_and_add(features, streams.to(features.device))
        return (1.0 + count).rsqrt().cpu()

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        if transitions.segments is None or transitions.times is None:
            raise ValueError(
                'place_count learns from time: its transitions need segments and times'
            )
        model, device = self.models['place_count'], self.device()
        anchors, partners = positive_pairs(transitions.segments, transitions.times, generator)
        if len(anchors) < 2:
            return {'place_count/loss': float('nan')}

        def loss(index):
            a, p = anchors[index], partners[index]
            segments, times = transitions.segments, transitions.times
            same_segment = segments[a].unsqueeze(1) == segments[p].unsqueeze(0)
            near = (times[a].unsqueeze(1) - times[p].unsqueeze(0)).abs() < NEGATIVE_BEYOND
            return model.loss(
                self.preset.inputs(transitions.next_inputs[a], device),
                self.preset.inputs(transitions.next_inputs[p], device),
                (same_segment & near).to(device),
            )

        batches = minibatches(len(anchors), MINIBATCH, EPOCHS, generator)
        loss_value = train_steps(model, self.optimizers['place_count'], (loss(i) for i in batches))
        return {'place_count/loss': loss_value}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        return {
            'memory_frames': self.memory.frames.detach().cpu().clone(),
            'memory_steps': self.memory.steps.clone(),
        }, {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        if 'memory_frames' in tensors:  # a trainer, which never acts, keeps no memory
            self.memory.frames = tensors['memory_frames'].to(self.device()).clone()
            self.memory.steps = tensors['memory_steps'].clone()
