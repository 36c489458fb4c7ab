"""VRChat's "OSC as Input Controller" vocabulary: input names, value kinds and mappings.

Pure Python (no ROS): the OSC actuator and the Doom world both speak it, and the agent names
its actions with it. Facts from VRChat's OSC input docs and vrchat-io's RESET_VALUES.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

from pamiq.vocabulary import CONTINUOUS_ACTION_DIM, DISCRETE_ACTION_CHOICES

ADDRESS_PREFIX = '/input/'
# Where VRChat listens for OSC input by default (and where the Doom world listens instead).
INPUT_HOST = '127.0.0.1'
INPUT_PORT = 9000

# Axes take floats in [-1, 1] and must be returned to 0.0 (VRChat holds the last value).
AXES = (
    'Vertical',
    'Horizontal',
    'LookHorizontal',
    'UseAxisRight',
    'GrabAxisRight',
    'MoveHoldFB',
    'SpinHoldCwCcw',
    'SpinHoldUD',
    'SpinHoldLR',
)
# Buttons take ints: 1 pressed, 0 released. Sending 1 twice without a 0 is one press.
# The first eight are the ones pamiq's agent moves with.
LOCOMOTION_BUTTONS = (
    'MoveForward',
    'MoveBackward',
    'MoveLeft',
    'MoveRight',
    'LookLeft',
    'LookRight',
    'Jump',
    'Run',
)
BUTTONS = (
    *LOCOMOTION_BUTTONS,
    'ComfortLeft',
    'ComfortRight',
    'DropRight',
    'UseRight',
    'GrabRight',
    'DropLeft',
    'UseLeft',
    'GrabLeft',
    'PanicButton',
    'QuickMenuToggleLeft',
    'QuickMenuToggleRight',
    'Voice',
)
# Every input VRChat knows, at its neutral value: what a clean shutdown sends.
RESET_VALUES: dict[str, float | int] = {**{a: 0.0 for a in AXES}, **{b: 0 for b in BUTTONS}}

# The inputs pamiq's agent moves with, and their neutral values (the watchdog / pause set).
CONTINUOUS_ACTION_NAMES = ('Vertical', 'Horizontal', 'LookHorizontal')
assert len(CONTINUOUS_ACTION_NAMES) == CONTINUOUS_ACTION_DIM
NEUTRAL_VALUES: dict[str, float | int] = {
    **{a: 0.0 for a in CONTINUOUS_ACTION_NAMES},
    **{b: 0 for b in LOCOMOTION_BUTTONS},
}

# The buttons of each discrete choice (pamiq.vocabulary.DISCRETE_ACTION_CHOICES). Index 1 is
# forward/left/left and 2 backward/right/right, as the original's code and tests map it (its
# docstring says the opposite; the code is what ran).
_DISCRETE_BUTTONS = (
    ('MoveForward', 'MoveBackward'),
    ('MoveLeft', 'MoveRight'),
    ('LookLeft', 'LookRight'),
    ('Jump',),
    ('Run',),
)
assert tuple(len(names) + 1 for names in _DISCRETE_BUTTONS) == DISCRETE_ACTION_CHOICES


def address(name: str) -> str:
    """Return the OSC address of an input name, e.g. 'Vertical' -> '/input/Vertical'."""
    return ADDRESS_PREFIX + name


def is_axis(name: str) -> bool:
    return name in RESET_VALUES and isinstance(RESET_VALUES[name], float)


def is_button(name: str) -> bool:
    return name in RESET_VALUES and isinstance(RESET_VALUES[name], int)


def sanitize(name: str, value: float, deadzone: float = 0.0) -> tuple[float | int | None, str]:
    """Turn a commanded value into what may be sent to VRChat.

    Args:
        name: VRChat input name (without '/input/').
        value: The commanded value.
        deadzone: Axis values with a magnitude strictly below this become 0.0 (the original's
            experiment used 0.25).

    Returns:
        (value, problem): the value to send (float for axes, int 0/1 for buttons) or None if it
        must be dropped, and an empty string or a description of what was wrong with the input.
    """
    if name not in RESET_VALUES:
        return None, f'unknown VRChat input {name!r}'
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None, f'{name}: value {value!r} is not a number'
    if not math.isfinite(value):
        return None, f'{name}: non-finite value {value} dropped'
    if is_axis(name):
        problem = ''
        if not -1.0 <= value <= 1.0:
            problem = f'{name}: axis value {value:.3f} outside [-1, 1], clamped'
            value = min(1.0, max(-1.0, value))
        return (0.0 if abs(value) < deadzone else value), problem
    problem = '' if value in (0.0, 1.0) else f'{name}: button value {value:.3f} is not 0 or 1'
    if not 0.0 <= value <= 1.0:
        problem = f'{name}: button value {value:.3f} outside [0, 1], clamped'
    return (1 if value >= 0.5 else 0), problem


def discrete_to_buttons(indices: Sequence[int]) -> dict[str, int]:
    """Map one discrete action (5 indices over DISCRETE_ACTION_CHOICES) to button states."""
    if len(indices) != len(DISCRETE_ACTION_CHOICES):
        raise ValueError(
            f'a discrete action has {len(DISCRETE_ACTION_CHOICES)} indices, got {len(indices)}'
        )
    buttons: dict[str, int] = {}
    for index, choices, names in zip(indices, DISCRETE_ACTION_CHOICES, _DISCRETE_BUTTONS):
        if not 0 <= int(index) < choices:
            raise ValueError(f'discrete index {index} outside [0, {choices})')
        for position, name in enumerate(names, start=1):
            buttons[name] = int(int(index) == position)
    return buttons


def buttons_to_discrete(buttons: Mapping[str, float]) -> list[int]:
    """Inverse of discrete_to_buttons (a pressed first button wins over the second)."""
    indices = []
    for names in _DISCRETE_BUTTONS:
        pressed = [
            position for position, name in enumerate(names, 1) if buttons.get(name, 0) >= 0.5
        ]
        indices.append(pressed[0] if pressed else 0)
    return indices


def twist_to_axes(linear_x: float, linear_y: float, angular_z: float) -> dict[str, float]:
    """Map a teleop Twist (REP 103: x forward, y left, z counter-clockwise) to VRChat axes.

    VRChat's Horizontal is +right and LookHorizontal +turn right, hence the sign flips.
    """
    return {'Vertical': linear_x, 'Horizontal': -linear_y, 'LookHorizontal': -angular_z}
