"""The random policy: the original's RandomAgent, for a graph that runs before anything learns."""

from __future__ import annotations

import numpy as np

from pamiq import vrchat


class RandomPolicy:
    """Samples actions independently of the observation.

    Continuous: tanh(N(0, 1)) for each of the 3 axes (the original's RandomAgent). Discrete:
    uniform over each of the (3, 3, 3, 2, 2) categories.
    """

    def __init__(self, action_space: str, seed: int | None = None) -> None:
        if action_space not in ('continuous', 'discrete'):
            raise ValueError(
                f"action_space must be 'continuous' or 'discrete', got {action_space!r}"
            )
        self.action_space = action_space
        self.rng = np.random.default_rng(seed)

    def step(self, observation: np.ndarray) -> np.ndarray:
        """Return a_t: (3,) float32 axes in (-1, 1) or (5,) int64 category indices."""
        if self.action_space == 'continuous':
            return np.tanh(self.rng.standard_normal(3)).astype(np.float32)
        return np.array([self.rng.integers(n) for n in vrchat.DISCRETE_ACTION_CHOICES], np.int64)
