"""VRChat's avatar parameters as OSC output: the body sense's vocabulary and its holder.

No ROS here. VRChat sends `/avatar/parameters/<Name> <value>` to UDP 9001 whenever a value
changes (and only then), and `/avatar/change <avatar id>` when an avatar loads. The body sense
keeps the last value of each; the Doom world sends the same parameters (pamiq.doom.game) so the
path is the same in both worlds. Facts from VRChat's OSC and animator-parameter docs.
"""

from __future__ import annotations

import math
import threading
import time

from pamiq.vrchat.osc import short

PARAMETER_PREFIX = '/avatar/parameters/'
CHANGE_ADDRESS = '/avatar/change'
# Where VRChat sends its OSC output by default (and where the Doom world sends it too).
OUTPUT_HOST = '127.0.0.1'
OUTPUT_PORT = 9001

# The parameters the body sense reads, in the order of its vector, with VRChat's units:
# velocities in m/s in the avatar's frame (X right, Y up, Z forward), AngularY in degrees/s
# (positive: turning right, as Unity's Y rotation), Upright 0 (lying) to 1, the rest booleans.
BODY_FIELDS = (
    'VelocityX',
    'VelocityY',
    'VelocityZ',
    'VelocityMagnitude',
    'AngularY',
    'Upright',
    'Grounded',
    'Seated',
    'AFK',
    'InStation',
)
# Scales that bring each field to about [-1, 1] for the body encoder (booleans are 0/1).
BODY_SCALES = {
    'VelocityX': 5.0,
    'VelocityY': 5.0,
    'VelocityZ': 5.0,
    'VelocityMagnitude': 5.0,
    'AngularY': 180.0,
}
# The value of each field before VRChat said anything (standing, upright, on the ground).
BODY_DEFAULTS = {name: 0.0 for name in BODY_FIELDS} | {'Upright': 1.0, 'Grounded': 1.0}
# Larger magnitudes are not a body moving: refused as malformed (VRChat clamps nothing).
MAX_MAGNITUDE = 1e4


def body_vector(values: dict[str, float]) -> list[float]:
    """The held values in BODY_FIELDS order (defaults for those never received)."""
    return [values.get(name, BODY_DEFAULTS[name]) for name in BODY_FIELDS]


class HeldParameters:
    """The last value of every avatar parameter received, written by the OSC thread.

    Values of any parameter are kept (VRChat sends many: gestures, visemes, the avatar's own);
    a value that is not a bool, int or finite float within MAX_MAGNITUDE is refused.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}
        self.avatar = ''
        self.avatar_changes = 0
        self.received = 0
        self.last_value = 0.0  # monotonic time of the newest accepted value

    def handle(self, address: str, *args: object) -> str:
        name = address.removeprefix(PARAMETER_PREFIX)
        if len(args) != 1 or not isinstance(args[0], (bool, int, float)):
            return f'{short(address)}: arguments {short(args)} are not one bool, int or float'
        value = float(args[0])
        if not math.isfinite(value) or abs(value) > MAX_MAGNITUDE:
            return f'{short(address)}: value {value} is not a finite body value'
        with self.lock:
            self.values[name] = value
            self.received += 1
            self.last_value = time.monotonic()
        return ''

    def handle_change(self, address: str, *args: object) -> str:
        if len(args) != 1 or not isinstance(args[0], str):
            return f'{address}: arguments {short(args)} are not one avatar id'
        with self.lock:
            self.avatar = args[0][:200]
            self.avatar_changes += 1
            self.last_value = time.monotonic()
        return ''

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return dict(self.values)

    def routes(self) -> dict:
        """What an OscListener calls for VRChat's avatar output."""
        return {PARAMETER_PREFIX: self.handle, CHANGE_ADDRESS: self.handle_change}
