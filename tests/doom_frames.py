"""Real ViZDoom frames for learning tests, recorded in-process with the world node's own game."""

from __future__ import annotations

import tempfile

import numpy as np
from pamiq.doom.game import TICRATE, doom_command, make_game
from pamiq.media.preprocessing import preprocess


def record(
    scenario: str, steps: int, seed: int = 0, tics_per_step: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Random continuous actions for `steps` steps of 0.1 s; returns (observations, actions).

    observations: (steps + 1, 84, 84, 3) uint8, the agent's view before each step and after the
    last; actions: (steps, 3) float32 in (-1, 1) (Vertical, Horizontal, LookHorizontal).
    """
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as engine_dir:
        game = make_game(scenario, '160x120', seed, engine_dir, timeout=100000)
        observations, actions = [], []
        for _ in range(steps):
            observations.append(preprocess(game.get_state().screen_buffer))
            action = np.tanh(rng.standard_normal(3)).astype(np.float32)
            inputs = dict(zip(('Vertical', 'Horizontal', 'LookHorizontal'), action.tolist()))
            command = doom_command(inputs, 120.0 / TICRATE)
            for _ in range(tics_per_step):
                game.set_action(command)
                game.advance_action(1)
            actions.append(action)
        observations.append(preprocess(game.get_state().screen_buffer))
        game.close()
    return np.stack(observations), np.stack(actions)
