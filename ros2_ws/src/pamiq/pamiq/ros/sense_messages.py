"""How hearing and the body sense travel in standard messages (no audio package is a wheel).

- `audio/pcm`: std_msgs/Int16MultiArray, dims [frames, channels] (1600 x 2, interleaved), the
  stamp of its first frame in the first dimension's label, 'frames@<sec>.<nanosec>':
  Int16MultiArray has no header, and a stamp in the message itself stays with it through bags,
  replay and remaps (a companion topic would have to be paired by order).
- `audio/level`: std_msgs/Float32, the chunk's loudness in dBFS; `audio/format`: std_msgs/String,
  JSON (pamiq.media.audio.format_description), latched.
- `body/state`: sensor_msgs/JointState as a named vector: BODY_FIELDS first, then every other
  avatar parameter VRChat sent; `body/twist`: geometry_msgs/TwistStamped (REP 103).
- `agent/hearing`: sensor_msgs/Image 32FC1, the spectrogram the agent heard at a frame, 80 x 50:
  rows 0-39 the left ear's mel bands (low to high), 40-79 the right's, columns oldest first;
  `agent/body`: sensor_msgs/JointState, BODY_FIELDS as the agent felt them. Both carry the
  frame's stamp, which is how the trainer pairs them with the frame's other parts.
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import math
import re

from geometry_msgs.msg import TwistStamped
import numpy as np
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Int16MultiArray, MultiArrayDimension, String

from pamiq.learning.sense_arrays import EXTRA_SENSES, check_sense
from pamiq.media.audio import CHANNELS, CHUNK_FRAMES
from pamiq.ros import topics
from pamiq.ros.messages import STEP_PARTS, step_part
from pamiq.vrchat.avatar import BODY_FIELDS, body_vector

HEARING_ROWS = EXTRA_SENSES['hearing'][0] * EXTRA_SENSES['hearing'][1]
# The parts of a frame beyond observation, action and step, and the topic of each.
SENSE_PARTS = {'hearing': topics.AGENT_HEARING, 'body': topics.AGENT_BODY}
_STAMP_LABEL = re.compile(r'^frames@(\d+)\.(\d{9})$')


def frame_parts(extras: tuple[str, ...]) -> dict[str, str]:
    """Every part of a frame the trainer pairs, and its topic, for these extra senses."""
    return {**STEP_PARTS, **{sense: SENSE_PARTS[sense] for sense in extras}}


def frame_part(part: str, msg, action_space: str) -> object:
    """What the learner keeps of any part of a frame, checked (pamiq.ros.messages.step_part
    for the first three).

    Raises:
        ValueError: The message is malformed.
    """
    if part == 'hearing':
        return hearing_input(msg)
    if part == 'body':
        return body_input(msg)
    return step_part(part, msg, action_space)


def audio_message(stamp_ns: int, pcm: np.ndarray) -> Int16MultiArray:
    frames, channels = pcm.shape
    msg = Int16MultiArray()
    sec, nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.layout.dim = [
        MultiArrayDimension(
            label=f'frames@{sec}.{nanosec:09d}', size=frames, stride=frames * channels
        ),
        MultiArrayDimension(label='channels', size=channels, stride=channels),
    ]
    msg.data = pcm.astype(np.int16, copy=False).ravel().tobytes()
    return msg


def audio_chunk(msg: Int16MultiArray) -> tuple[int, np.ndarray]:
    """(stamp of the first frame in ns, (frames, channels) int16) of an audio/pcm message.

    Raises:
        ValueError: Not the layout audio/pcm documents.
    """
    dims = msg.layout.dim
    if len(dims) != 2 or dims[1].label != 'channels' or dims[1].size != CHANNELS:
        raise ValueError(
            f'audio/pcm layout {[(d.label, d.size) for d in dims]} is not [frames, channels=2]'
        )
    match = _STAMP_LABEL.match(dims[0].label)
    if match is None:
        raise ValueError(f'audio/pcm first dimension {dims[0].label[:40]!r} has no stamp')
    frames = dims[0].size
    data = np.asarray(msg.data, np.int16)
    if frames == 0 or frames > 10 * CHUNK_FRAMES or len(data) != frames * CHANNELS:
        raise ValueError(f'audio/pcm of {len(data)} samples for {frames} frames x {CHANNELS}')
    return int(match.group(1)) * 1_000_000_000 + int(match.group(2)), data.reshape(
        frames, CHANNELS
    )


def format_message(description: Mapping[str, object]) -> String:
    return String(data=json.dumps(dict(description)))


def hearing_message(stamp, spectrogram: np.ndarray) -> Image:
    rows = spectrogram.reshape(HEARING_ROWS, -1).astype(np.float32)
    msg = Image(height=rows.shape[0], width=rows.shape[1], encoding='32FC1')
    msg.header.stamp = stamp
    msg.is_bigendian = 0
    msg.step = rows.shape[1] * 4
    msg.data = rows.tobytes()
    return msg


def hearing_input(msg: Image) -> np.ndarray:
    shape = EXTRA_SENSES['hearing']
    if msg.encoding != '32FC1' or msg.height != HEARING_ROWS or msg.width != shape[2]:
        raise ValueError(
            f'agent/hearing is {msg.encoding} {msg.height}x{msg.width}, '
            f'expected 32FC1 {HEARING_ROWS}x{shape[2]}'
        )
    if msg.step != msg.width * 4 or len(msg.data) != msg.height * msg.step or msg.is_bigendian:
        raise ValueError('agent/hearing: step or data size does not match 32FC1')
    return check_sense('hearing', np.frombuffer(bytes(msg.data), np.float32).reshape(shape))


def body_message(stamp, values: Mapping[str, float]) -> JointState:
    """BODY_FIELDS (defaults for those never received), then the other parameters held."""
    msg = JointState()
    msg.header.stamp = stamp
    others = sorted(set(values) - set(BODY_FIELDS))
    msg.name = [*BODY_FIELDS, *others]
    msg.position = [*body_vector(values), *(float(values[name]) for name in others)]
    return msg


def body_input(msg: JointState) -> np.ndarray:
    """The BODY_FIELDS of a body message, (10,) float32.

    Raises:
        ValueError: A field is missing or not finite.
    """
    if len(msg.name) != len(msg.position):
        raise ValueError(f'body: {len(msg.name)} names but {len(msg.position)} values')
    values = dict(zip(msg.name, msg.position))
    missing = [name for name in BODY_FIELDS if name not in values]
    if missing:
        raise ValueError(f'body lacks {", ".join(missing)}')
    return check_sense('body', np.array([values[name] for name in BODY_FIELDS], np.float32))


def twist_message(stamp, values: Mapping[str, float], frame_id: str = 'avatar') -> TwistStamped:
    """The avatar's velocity in REP 103's frame: x forward, y left, z up; angular.z in rad/s
    counter-clockwise (VRChat's AngularY is degrees/s, positive turning right)."""
    vector = dict(zip(BODY_FIELDS, body_vector(values)))
    msg = TwistStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.twist.linear.x = vector['VelocityZ']
    msg.twist.linear.y = -vector['VelocityX']
    msg.twist.linear.z = vector['VelocityY']
    msg.twist.angular.z = -math.radians(vector['AngularY'])
    return msg
