"""Real ViZDoom frames for learning tests, recorded in-process with the world node's mapping."""

from __future__ import annotations

import os
import tempfile

import numpy as np
from pamiq.doom_world_node import TICRATE, doom_command
from pamiq.preprocessing import preprocess
import vizdoom as vzd


def record(
    scenario: str, steps: int, seed: int = 0, tics_per_step: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Random continuous actions for `steps` steps of 0.1 s; returns (observations, actions).

    observations: (steps + 1, 84, 84, 3) uint8, the agent's view before each step and after the
    last; actions: (steps, 3) float32 in (-1, 1) (Vertical, Horizontal, LookHorizontal).
    """
    rng = np.random.default_rng(seed)
    game = vzd.DoomGame()
    game.load_config(os.path.join(vzd.scenarios_path, scenario + '.cfg'))
    with tempfile.TemporaryDirectory() as engine_dir:
        game.set_doom_config_path(os.path.join(engine_dir, '_vizdoom.ini'))
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_screen_format(vzd.ScreenFormat.RGB24)
        game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
        game.set_available_buttons(
            [
                vzd.Button.MOVE_FORWARD_BACKWARD_DELTA,
                vzd.Button.MOVE_LEFT_RIGHT_DELTA,
                vzd.Button.TURN_LEFT_RIGHT_DELTA,
                vzd.Button.JUMP,
            ]
        )
        game.set_episode_timeout(100000)
        game.set_seed(seed)
        cwd = os.getcwd()
        os.chdir(engine_dir)
        try:
            game.init()
        finally:
            os.chdir(cwd)
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
