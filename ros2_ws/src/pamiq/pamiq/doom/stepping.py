"""A step of the built-in world as the live Doom world takes it, for in-process play.

One step, as in doom_world_node and the agent node: the policy's action becomes VRChat inputs
(as the actuator sends them, with its default no deadzone and no smoothing), and the game
advances 35 / publish_rate tics holding those inputs (3 or 4 tics at 10 Hz, the world's own
rounding). The evaluation's whole episodes (pamiq.evaluation.episodes) and the training worlds
(pamiq.doom.training_worlds) step the game with these helpers, so all three step it alike.
"""

from __future__ import annotations

import numpy as np
import vizdoom as vzd

from pamiq.doom.game import TICRATE
from pamiq.vrchat import controller

# The world's defaults (doom_world_node.WorldConfig), which the live graph plays with.
PUBLISH_RATE = 10.0  # steps per simulated second
TURN_RATE = 120.0  # degrees per second at LookHorizontal = 1
RESOLUTION = '160x120'

_POSE = (vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y, vzd.GameVariable.ANGLE)


def step_tics(step: int, publish_rate: float = PUBLISH_RATE) -> int:
    """Tics of the world's step number `step` (1, 2, ...): DoomWorld.step's rounding."""
    return round(step * TICRATE / publish_rate) - round((step - 1) * TICRATE / publish_rate)


def action_inputs(action: np.ndarray, action_space: str) -> dict[str, float]:
    """A policy's action as the VRChat inputs the actuator sends (pamiq.ros.messages' names)."""
    if action_space == 'continuous':
        return dict(zip(controller.CONTINUOUS_ACTION_NAMES, (float(v) for v in action)))
    return {name: float(v) for name, v in controller.discrete_to_buttons(action).items()}


def pose(game: vzd.DoomGame) -> tuple[float, float, float]:
    """x, y, angle now (ViZDoom still reports them once the episode has ended)."""
    return tuple(float(game.get_game_variable(variable)) for variable in _POSE)


def reached_goal(game: vzd.DoomGame) -> bool:
    """Whether the episode ended before its timeout with the player alive (my_way_home: the
    vest was picked up); shared by evaluation and the in-process training harness."""
    return bool(
        game.is_episode_finished()
        and not game.is_player_dead()
        and game.get_episode_time() < game.get_episode_start_time() + game.get_episode_timeout()
    )
