"""What an intrinsic reward is to pamiq: one protocol, one file per reward, one registry line.

A reward answers three questions, each in one place:

- What it gives at act time: `act(transitions, streams, starts)` returns r_{t+1} for each
  transition (o_t, a_t, o_{t+1}) of a batch, one per stream (an environment of `pamiq train`, an
  actor of the live graph). Within-episode memory (E3B's covariance, an episode's counts) is
  kept per stream and cleared where `starts` says o_{t+1} begins an episode. A transition into
  an episode's first frame earns 0 from every reward: the world put the agent there.
- What it learns: `train(transitions)` trains its own models on an update's transitions with
  its own losses, optimisers and learning rates, and returns the losses to log.
- What it keeps: `models` travel in checkpoints and weights blobs (the agent needs them to
  compute the reward at act time); `state_dict()` holds the rest (running statistics and the
  per-stream memory), as tensors and JSON-able values, for resumable runs.

The reward's scale is the trainer's business, not the reward's: PPO divides every reward by the
running std of its discounted sum (pamiq.learning.curiosity.RewardNormalizer).
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch
from torch import nn


@dataclass
class Transitions:
    """A batch of transitions in network-input form (pamiq.learning.presets: stacked views)."""

    inputs: torch.Tensor  # o_t, (B, *input_shape) uint8
    actions: torch.Tensor  # a_t, (B, 3) float or (B, 5) long
    next_inputs: torch.Tensor  # o_{t+1}, (B, *input_shape) uint8
    previous_actions: torch.Tensor  # a_{t-1} (zeros at a sequence's start)
    positions: torch.Tensor | None = None  # (B, 2) true x, y at o_{t+1}: the oracle's only
    # Where each transition sits in time, for rewards that learn from it (an update's batch;
    # None at act time): (B,) long, one id per stream and episode, and the step t.
    segments: torch.Tensor | None = None
    times: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.inputs)

    def select(self, index: torch.Tensor) -> Transitions:
        pick = lambda x: None if x is None else x[index]
        return Transitions(
            self.inputs[index],
            self.actions[index],
            self.next_inputs[index],
            self.previous_actions[index],
            pick(self.positions),
            pick(self.segments),
            pick(self.times),
        )


class RunningMeanStd(nn.Module):
    """Mean and variance of everything seen, elementwise (Chan et al.'s parallel update, as
    baselines' RunningMeanStd); buffers, so they travel with the module's state dict."""

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer('mean', torch.zeros(shape, dtype=torch.float64))
        self.register_buffer('var', torch.ones(shape, dtype=torch.float64))
        self.register_buffer('count', torch.tensor(1e-4, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64)
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), len(batch)
        delta, total = batch_mean - self.mean, self.count + n
        m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
        self.mean.copy_(self.mean + delta * n / total)
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def std(self) -> torch.Tensor:
        return self.var.sqrt().to(torch.float32)


def minibatches(count: int, size: int, epochs: float, generator: torch.Generator | None):
    """Index tensors of `epochs` shuffled passes over `count` samples in minibatches of at most
    `size` (a fractional epoch takes the first part of one more pass)."""
    total = math.ceil(epochs * count)
    done = 0
    while done < total:
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, size):
            if done >= total:
                return
            index = order[start : start + min(size, total - done)]
            done += len(index)
            yield index


def train_steps(model: nn.Module, optimizer, losses) -> float:
    """Step `optimizer` on each loss `losses` yields (a generator that builds them lazily);
    returns their mean."""
    model.train()
    total, count = 0.0, 0
    for loss in losses:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach())
        count += 1
    model.eval()
    return total / max(count, 1)


def adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Every reward model's optimiser: Adam, fused (one kernel per step on the CPU)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


class IntrinsicReward:
    """The base of every reward: no models, no memory, nothing to keep. Subclasses override
    what they have (see the module docstring for the contract)."""

    name = ''
    # The losses `train` reports (the live trainer publishes each on trainer/<name>).
    metrics: tuple[str, ...] = ()
    # Whether `act` reads Transitions.positions (the oracles do: they see the map).
    uses_positions = False

    def __init__(self) -> None:
        self.models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    def to(self, device: torch.device) -> IntrinsicReward:
        for model in self.models.values():
            model.to(device)
        return self

    @torch.no_grad()  # a reward is a target for PPO, never a path for gradients
    def act(
        self, transitions: Transitions, streams: torch.Tensor, starts: torch.Tensor
    ) -> torch.Tensor:
        """r_{t+1} of each transition, (B,) float32: the streams where `starts` is set forget
        their episode first, and their transition earns 0.

        Args:
            transitions: One transition per stream, in the order of `streams`.
            streams: (B,) long, which stream each transition belongs to (distinct).
            starts: (B,) bool, o_{t+1} is the first frame of an episode.
        """
        if bool(starts.any()):
            self.forget(streams[starts])
        rewards = self.compute(transitions, streams).to(torch.float32)
        return torch.where(starts.to(rewards.device), torch.zeros_like(rewards), rewards)

    def compute(self, transitions: Transitions, streams: torch.Tensor) -> torch.Tensor:
        """The reward of each transition, remembering o_{t+1} in its stream's memory."""
        raise NotImplementedError

    def forget(self, streams: torch.Tensor) -> None:
        """Clear the within-episode memory of these streams (nothing to clear by default)."""

    def on_new_weights(self) -> None:
        """The models were just loaded from elsewhere: drop what was computed with the old."""

    def train(self, transitions: Transitions, generator: torch.Generator) -> dict[str, float]:
        return {}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, plain values) besides the models and optimisers."""
        return {}, {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], values: dict) -> None:
        """Restore what `state_dict` returned."""


class EpisodicReward(IntrinsicReward):
    """A reward with a within-episode memory per stream: `self.memory`, with `steps` (frames
    each stream holds) and `clear(streams)`. It is cleared where an episode starts and, when
    `horizon` > 0, every `horizon` steps of a stream (the stand-in for an episode where the
    world has none, as in VRChat)."""

    def __init__(self, horizon: int) -> None:
        super().__init__()
        self.horizon = horizon

    def forget_past_horizon(self, streams: torch.Tensor) -> None:
        if self.horizon > 0 and len(self.memory.steps):
            known = streams[streams < len(self.memory.steps)]
            self.forget(known[self.memory.steps[known] >= self.horizon])

    def forget(self, streams: torch.Tensor) -> None:
        self.memory.clear(streams[streams < len(self.memory.steps)])


ONE_STREAM = torch.zeros(1, dtype=torch.long)
NO_START = torch.zeros(1, dtype=torch.bool)


class Arrivals:
    """One acting stream's rewards, frame by frame (the live agent's, an evaluated policy's):
    each frame's transition from the frame before it, and the reward of arriving there."""

    def __init__(self, reward: IntrinsicReward) -> None:
        self.reward = reward
        self.previous: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def arrive(
        self, inputs: torch.Tensor, action: torch.Tensor, positions: torch.Tensor | None = None
    ) -> float:
        """r_t of arriving at `inputs` (o_t; 0 at a sequence's first), then a_t is remembered."""
        reward = 0.0
        if self.previous is not None:
            last_inputs, last_action, before_last = self.previous
            transition = Transitions(last_inputs, last_action, inputs, before_last, positions)
            reward = float(self.reward.act(transition, ONE_STREAM, NO_START)[0])
        before = torch.zeros_like(action) if self.previous is None else self.previous[1]
        self.previous = (inputs, action, before)
        return reward

    def reset(self) -> None:
        """The next frame starts a new sequence: no transition into it, a fresh memory."""
        self.previous = None
        self.reward.forget(ONE_STREAM)
