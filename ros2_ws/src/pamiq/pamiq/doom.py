"""The built-in world's game: a headless ViZDoom map driven by VRChat's input axes and buttons.

No ROS here: doom_world_node wires it to topics, and benchmarks step it directly.
"""

from __future__ import annotations

import os

import vizdoom as vzd

TICRATE = 35  # Doom's fixed simulation rate
# Doom's own per-tic command magnitudes (forwardmove/sidemove/angleturn of a walking player).
WALK_FORWARD, WALK_SIDE = 25.0, 24.0
RESOLUTIONS = ('160x120', '320x240', '640x480')


def doom_command(inputs: dict[str, float], turn_per_tic: float) -> list[float]:
    """One tic's [forward, strafe right, turn right (deg), jump, unused] from held inputs."""

    def get(name: str) -> float:
        return inputs.get(name, 0.0)

    forward = get('Vertical') + get('MoveForward') - get('MoveBackward')
    right = get('Horizontal') + get('MoveRight') - get('MoveLeft')
    turn = get('LookHorizontal') + get('LookRight') - get('LookLeft')
    speed = 2.0 if get('Run') >= 0.5 else 1.0
    clamp = lambda v: max(-1.0, min(1.0, v))
    return [
        clamp(forward) * WALK_FORWARD * speed,
        clamp(right) * WALK_SIDE * speed,
        clamp(turn) * turn_per_tic,
        1.0 if get('Jump') >= 0.5 else 0.0,
    ]


def make_game(
    scenario: str, resolution: str, seed: int, engine_dir: str, timeout: int | None = None
) -> vzd.DoomGame:
    """A headless ViZDoom game with VRChat-like continuous controls and pose variables.

    ViZDoom writes its engine config and a _vizdoom/ folder into the working directory, so
    they go to `engine_dir` instead of the user's checkout. `timeout` overrides the scenario's
    episode length in tics.

    Raises:
        ValueError: There is no such scenario.
    """
    path = (
        scenario
        if scenario.endswith('.cfg')
        else os.path.join(vzd.scenarios_path, scenario + '.cfg')
    )
    if not os.path.isfile(path):
        raise ValueError(f'no ViZDoom scenario at {path}')
    game = vzd.DoomGame()
    game.load_config(path)
    game.set_doom_config_path(os.path.join(engine_dir, '_vizdoom.ini'))
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_screen_resolution(getattr(vzd.ScreenResolution, 'RES_' + resolution.upper()))
    game.set_available_buttons(
        [
            vzd.Button.MOVE_FORWARD_BACKWARD_DELTA,
            vzd.Button.MOVE_LEFT_RIGHT_DELTA,
            vzd.Button.TURN_LEFT_RIGHT_DELTA,
            vzd.Button.JUMP,
        ]
    )
    game.set_available_game_variables(
        [vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y, vzd.GameVariable.ANGLE]
    )
    game.set_mode(vzd.Mode.PLAYER)
    game.set_seed(seed)
    if timeout is not None:
        game.set_episode_timeout(timeout)
    working_dir = os.getcwd()
    os.chdir(engine_dir)
    try:
        game.init()
    finally:
        os.chdir(working_dir)
    return game
