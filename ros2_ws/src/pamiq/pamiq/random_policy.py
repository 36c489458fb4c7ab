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

    def step(self, observation: np.ndarray) -> tuple[list[str], list[float]]:
        """Return the action for one observation as (VRChat input names, values)."""
        if self.action_space == 'continuous':
            values = np.tanh(self.rng.standard_normal(len(vrchat.CONTINUOUS_ACTION_NAMES)))
            return list(vrchat.CONTINUOUS_ACTION_NAMES), [float(v) for v in values]
        indices = [int(self.rng.integers(n)) for n in vrchat.DISCRETE_ACTION_CHOICES]
        buttons = vrchat.discrete_to_buttons(indices)
        return list(buttons), [float(v) for v in buttons.values()]
