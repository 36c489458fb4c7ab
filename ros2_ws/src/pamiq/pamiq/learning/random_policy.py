"""The random policy: the original's RandomAgent, for a graph that runs before anything learns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import math

import numpy as np

from pamiq.learning.policy import CheapStep, StepResult
from pamiq.storage.errors import WeightsError
from pamiq.vocabulary import ACTION_SPACES, CONTINUOUS_ACTION_DIM, DISCRETE_ACTION_CHOICES

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class RandomPolicy(CheapStep):
    """Samples actions independently of the observation.

    Continuous: tanh(N(0, 1)) for each of the 3 axes (the original's RandomAgent). Discrete:
    uniform over each of the (3, 3, 3, 2, 2) categories. The reported log-probability is the
    sample's under that distribution, so recorded random steps are complete PPO records.
    """

    version = 0  # no weights, ever
    weights_nbytes = 0

    def __init__(self, action_space: str, seed: int | None = None) -> None:
        if action_space not in ACTION_SPACES:
            raise ValueError(f'action_space must be one of {ACTION_SPACES}, got {action_space!r}')
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[np.ndarray, float]:
        """a_t and log pi(a_t): (3,) float32 axes in (-1, 1) or (5,) int64 category indices."""
        if self.action_space == 'continuous':
            u = self.rng.standard_normal(CONTINUOUS_ACTION_DIM)
            action = np.tanh(u).astype(np.float32)
            # a = tanh(u): log p(a) = sum_d [log N(u_d; 0, 1) - log(1 - a_d^2)]
            log_prob = float(np.sum(-0.5 * u**2 - _LOG_SQRT_2PI - np.log1p(-(np.tanh(u) ** 2))))
            return action, log_prob
        action = np.array([self.rng.integers(n) for n in DISCRETE_ACTION_CHOICES], np.int64)
        return action, -float(np.sum(np.log(DISCRETE_ACTION_CHOICES)))

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        action, log_prob = self.sample()
        return StepResult(action, 0.0, 0.0, log_prob, self.version)

    def reset(self) -> None:
        """Nothing to forget: every action is independent of the past."""

    def load_weights(self, blob: bytes | memoryview) -> int:
        raise WeightsError('the random policy uses no weights')

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        return None
