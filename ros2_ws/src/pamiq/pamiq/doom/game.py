"""The built-in world's game: a headless ViZDoom map driven by VRChat's input axes and buttons.

No ROS here: doom_world_node wires it to topics, and benchmarks step it directly. Besides the
screen the game gives what the player hears (ViZDoom's audio buffer, `DoomHearing`) and what
VRChat would report of the avatar's body (`avatar_parameters`).
"""

from __future__ import annotations

import math
import os

import numpy as np
import vizdoom as vzd

from pamiq.doom.engine_guard import EngineGuard, hide_descriptors
from pamiq.doom.process_usage import children_named
from pamiq.media.audio import SAMPLE_RATE, Chunk, ChunkAssembler, Resampler

TICRATE = 35  # Doom's fixed simulation rate
AUDIO_RATE = 22050  # ViZDoom's audio buffer, resampled to pamiq.media.audio's format
AUDIO_PER_TIC = AUDIO_RATE // TICRATE  # 630 stereo frames
AUDIO_BUFFER_TICS = TICRATE  # the buffer keeps the last second: more than one step advances
# Doom's player is 56 map units tall; at 32 units per metre that is 1.75 m.
MAP_UNITS_PER_METRE = 32.0
# The game variables every game reports, in this order (pose first, then the body's).
GAME_VARIABLES = (
    vzd.GameVariable.POSITION_X,
    vzd.GameVariable.POSITION_Y,
    vzd.GameVariable.ANGLE,
    vzd.GameVariable.VELOCITY_X,
    vzd.GameVariable.VELOCITY_Y,
    vzd.GameVariable.VELOCITY_Z,
    vzd.GameVariable.ON_GROUND,
)
# Doom's own per-tic command magnitudes (forwardmove/sidemove/angleturn of a walking player).
WALK_FORWARD, WALK_SIDE = 25.0, 24.0
RESOLUTIONS = ('160x120', '320x240', '640x480')
ENGINE = b'vizdoom'
# ViZDoom 1.x names its engine's shared memory and message queues after the instance id it
# passes on the engine's command line; they are files in /dev/shm.
INSTANCE_ID_ARGUMENT = b'+viz_instance_id'
ENGINE_FILES = ('ViZDoomSM', 'ViZDoomMQCtr', 'ViZDoomMQDoom')
SHM_DIR = '/dev/shm'


class DoomGame(vzd.DoomGame):
    """ViZDoom's game, whose engine gets none of this process's descriptors and does not
    outlive it (pamiq.doom.engine_guard)."""

    guard: EngineGuard | None = None

    def init(self) -> bool:
        before = set(children_named(os.getpid(), ENGINE))
        hide_descriptors()
        started = super().init()
        engines = [pid for pid in children_named(os.getpid(), ENGINE) if pid not in before]
        if engines:
            self.guard = guard_engine(engines[0])
        return started

    def close(self) -> None:
        super().close()
        if self.guard is not None:
            self.guard.release()
            self.guard = None


def engine_instance(pid: int) -> str | None:
    """The instance id on the engine `pid`'s command line (None if it is gone or has none)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as stream:
            arguments = stream.read().split(b'\0')
    except OSError:
        return None
    if INSTANCE_ID_ARGUMENT not in arguments[:-1]:
        return None
    return arguments[arguments.index(INSTANCE_ID_ARGUMENT) + 1].decode()


def guard_engine(pid: int) -> EngineGuard | None:
    """A guard for the engine `pid` (None if it is gone or names no instance id)."""
    instance = engine_instance(pid)
    if instance is None:
        return None
    files = [os.path.join(SHM_DIR, prefix + instance) for prefix in ENGINE_FILES]
    return EngineGuard(pid, instance, files)


def doom_command(inputs: dict[str, float], turn_per_tic: float) -> list[float]:
    """One tic's [forward, strafe right, turn right (deg), jump, use] from held inputs.

    VRChat's UseRight (use the held item) is Doom's use key: on a wall it makes the player's
    grunt, a sound source in the otherwise nearly silent my_way_home.
    """

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
        1.0 if get('UseRight') >= 0.5 else 0.0,
    ]


def make_game(
    scenario: str,
    resolution: str,
    seed: int,
    engine_dir: str,
    timeout: int | None = None,
    audio: bool = False,
    map_info: bool = False,
) -> DoomGame:
    """A headless ViZDoom game with VRChat-like continuous controls and GAME_VARIABLES.

    ViZDoom writes its engine config and a _vizdoom/ folder into the working directory, so
    they go to `engine_dir` instead of the user's checkout. `timeout` overrides the scenario's
    episode length in tics. `audio` fills the state's audio buffer with the last
    AUDIO_BUFFER_TICS tics of sound: it needs OpenAL (apt libopenal1; without it the buffer is
    silently all zeros). `map_info` fills the state's sectors and objects (the map's geometry
    and its things, which `pamiq.doom.geometry` reads once; a played game does not need them).

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
    game = DoomGame()
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
            vzd.Button.USE,
        ]
    )
    game.set_available_game_variables(list(GAME_VARIABLES))
    if audio:
        game.set_audio_buffer_enabled(True)
        game.set_audio_sampling_rate(vzd.SamplingRate.SR_22050)
        game.set_audio_buffer_size(AUDIO_BUFFER_TICS)
        # OpenAL Soft's effects extension aborts on an assertion with ViZDoom's sound setup.
        game.add_game_args('+snd_efx 0')
    if map_info:
        game.set_sectors_info_enabled(True)
        game.set_objects_info_enabled(True)
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


class DoomHearing:
    """What the player heard over the tics just advanced, as stamped chunks (pamiq.media.audio)."""

    def __init__(self) -> None:
        self.resampler = Resampler(AUDIO_RATE, SAMPLE_RATE, 2)
        self.assembler = ChunkAssembler()

    def take(self, buffer: np.ndarray, tics: int, start_ns: int) -> list[Chunk]:
        """Chunks completed by the last `tics` tics of an audio buffer, the first of them
        heard at `start_ns`."""
        tics = min(tics, AUDIO_BUFFER_TICS)
        if tics <= 0 or buffer is None:
            return []
        heard = self.resampler.process(buffer[-tics * AUDIO_PER_TIC :] / 32768.0)
        return self.assembler.push(heard, start_ns)

    def silence(self, tics: int, start_ns: int) -> list[Chunk]:
        """Chunks completed by `tics` tics of silence (the engine loading), from `start_ns`."""
        if tics <= 0:
            return []
        heard = self.resampler.process(np.zeros((tics * AUDIO_PER_TIC, 2)))
        return self.assembler.push(heard, start_ns)


def avatar_parameters(
    velocity: tuple[float, float, float], angle: float, turn_rate: float, on_ground: bool
) -> dict[str, float | bool]:
    """What VRChat would send of the Doom player's body (pamiq.vrchat.avatar.BODY_FIELDS).

    Args:
        velocity: The player's velocity in map units per tic (x east, y north, z up).
        angle: Where the player looks, degrees counter-clockwise from east.
        turn_rate: How fast it turns, degrees per second counter-clockwise.
        on_ground: Whether the player stands on something.

    Returns:
        Velocities in m/s in the avatar's frame (X right, Y up, Z forward), AngularY in
        degrees per second with VRChat's sign (positive: turning right), and the booleans.
    """
    east, north, up = (v * TICRATE / MAP_UNITS_PER_METRE for v in velocity)
    yaw = math.radians(angle)
    forward = east * math.cos(yaw) + north * math.sin(yaw)
    right = east * math.sin(yaw) - north * math.cos(yaw)
    return {
        'VelocityX': right,
        'VelocityY': up,
        'VelocityZ': forward,
        'VelocityMagnitude': math.sqrt(east * east + north * north + up * up),
        'AngularY': -turn_rate,
        'Upright': 1.0,
        'Grounded': bool(on_ground),
        'Seated': False,
        'AFK': False,
        'InStation': False,
    }
