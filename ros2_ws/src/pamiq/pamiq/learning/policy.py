"""What every policy the agent can run offers: one step per observation, the same result.

The agent node holds a `Policy` and never asks which one it is: the random policy returns the
same `StepResult` as the curiosity policy (reward 0, value 0, its own log-probability) and
refuses weights, so acting, publishing and pausing are one code path.

A step comes in two halves so that the avatar never waits for bookkeeping: `decide` gives a_t
(what the world waits for), `complete` the rest of the step (the curiosity reward and the
forward model's prediction for the next one), computed after the action is on its way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Decision:
    action: np.ndarray  # a_t: (3,) float32 in (-1, 1) or (5,) int64
    version: int  # the policy version that acted


@dataclass(frozen=True)
class StepResult:
    action: np.ndarray  # a_t: (3,) float32 in (-1, 1) or (5,) int64
    reward: float  # r_t: error of the prediction of z_t made at t-1 (0 at the first step)
    value: float  # V(o_t)
    log_prob: float  # log pi(a_t | o_t)
    version: int  # the policy version that acted
    sense_rewards: dict[str, float] = field(default_factory=dict)  # r_t's share of each sense
    policy_state: np.ndarray | None = None  # a recurrent policy's state before o_t


class Policy(Protocol):
    @property
    def version(self) -> int:
        """The weights version acting now (0: initial weights, or none)."""

    @property
    def weights_nbytes(self) -> int:
        """Bytes of tensor data in one weights blob for this policy (0: it takes none)."""

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        """Decide a_t for o_t, a (84, 84, 3) uint8 RGB frame, and what the other senses give
        at that frame (pamiq.learning.senses: 'hearing', 'body'), if the policy has them.
        The same as `decide` and then `complete`."""

    def decide(self, observation: np.ndarray, senses: Mapping | None = None) -> Decision:
        """The first half of `step`: a_t alone, as soon as it is known."""

    def complete(self) -> StepResult:
        """The second half of the step `decide` began (call it once after each `decide`)."""

    def reset(self) -> None:
        """Forget the step sequence: the next observation starts a new one."""

    def load_weights(self, blob: bytes | memoryview) -> int:
        """Validate a weights blob and swap it in between two steps; returns its version.

        Raises:
            pamiq.storage.weights.WeightsError: the blob is unusable; nothing changed.
        """

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        """Start from the newest usable checkpoint in run_dir; returns its path, or None."""


class CheapStep:
    """`decide` and `complete` for a policy whose whole `step` is cheap: the step is taken at
    once and handed out in two halves."""

    pending: StepResult | None = None

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        raise NotImplementedError

    def decide(self, observation: np.ndarray, senses: Mapping | None = None) -> Decision:
        self.pending = self.step(observation, senses)
        return Decision(self.pending.action, self.pending.version)

    def complete(self) -> StepResult:
        if self.pending is None:
            raise RuntimeError('complete() without a decide() before it')
        result, self.pending = self.pending, None
        return result
