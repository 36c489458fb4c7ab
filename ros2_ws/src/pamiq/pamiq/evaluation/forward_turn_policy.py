"""The forward-and-turn policy: a hand-made explorer, a baseline that needs no learning.

Walking straight ahead covers ground that uniform random actions (which mostly cancel out)
never reach, and a turn held for a while bends the path around the rooms and off the walls. A
curiosity agent that explores no further than this has learnt nothing a line of code could not
do (issue 12's "forward + random turn" baseline).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from pamiq.learning.policy import CheapStep, StepResult
from pamiq.storage.errors import WeightsError
from pamiq.vocabulary import ACTION_SPACES, DISCRETE_ACTION_CHOICES

# Discrete action indices (pamiq.vrchat.controller's buttons): 0 none, 1 the first, 2 the
# second button.
_FORWARD, _TURN_CHOICES = 1, (0, 1, 2)  # MoveForward; LookLeft/LookRight or no turn


class ForwardTurnPolicy(CheapStep):
    """Always walks forward and keeps a random turn that it re-draws at random moments.

    Continuous actions: Vertical = 1, Horizontal = 0, LookHorizontal = the held turn, drawn
    uniformly from [-turn_scale, turn_scale] (1 turns at the world's turn_rate, 120 deg/s).
    Discrete actions: MoveForward and one of no turn, LookLeft, LookRight, drawn uniformly.
    After each step the turn is re-drawn with probability 1 / mean_hold_steps, so a turn is
    held for a geometrically distributed number of steps with that mean (10 steps: 1 s at the
    world's 10 Hz). The observation is ignored. Its log-probabilities are 0: these actions are
    not samples of a density PPO could learn from, and this policy acts only for evaluation.
    """

    version = 0  # no weights, ever
    weights_nbytes = 0

    def __init__(
        self,
        action_space: str,
        seed: int | None = None,
        turn_scale: float = 1.0,
        mean_hold_steps: float = 10.0,
    ) -> None:
        if action_space not in ACTION_SPACES:
            raise ValueError(f'action_space must be one of {ACTION_SPACES}, got {action_space!r}')
        if not 0.0 <= turn_scale <= 1.0:
            raise ValueError(f'turn_scale must be in [0, 1], got {turn_scale}')
        if mean_hold_steps < 1.0:
            raise ValueError(f'mean_hold_steps must be at least 1, got {mean_hold_steps}')
        self.action_space = action_space
        self.turn_scale = turn_scale
        self.mean_hold_steps = mean_hold_steps
        self.rng = np.random.default_rng(seed)
        self.turn: float | int | None = None  # the held turn; None: draw one at the next step

    def draw_turn(self) -> float | int:
        if self.action_space == 'continuous':
            return float(self.rng.uniform(-self.turn_scale, self.turn_scale))
        return int(self.rng.choice(_TURN_CHOICES))

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        if self.turn is None or self.rng.random() < 1.0 / self.mean_hold_steps:
            self.turn = self.draw_turn()
        if self.action_space == 'continuous':
            action = np.array([1.0, 0.0, self.turn], np.float32)
        else:
            action = np.zeros(len(DISCRETE_ACTION_CHOICES), np.int64)
            action[0], action[2] = _FORWARD, self.turn
        return StepResult(action, 0.0, 0.0, 0.0, self.version)

    def reset(self) -> None:
        """A new episode starts with a new turn."""
        self.turn = None

    def load_weights(self, blob: bytes | memoryview) -> int:
        raise WeightsError('the forward-turn policy uses no weights')

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        return None
