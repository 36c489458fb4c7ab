"""How pamiq puts its records into standard messages (no custom interface package exists).

`agent/step` is a sensor_msgs/JointState used as a named vector, so rqt_plot and rosbag2 read it
without a custom type: name = STEP_FIELDS, position = their values, stamp = the observation's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sensor_msgs.msg import JointState

from pamiq.ros import topics
from pamiq.ros.image_conversion import image_to_numpy
from pamiq.vocabulary import FRAME_SHAPE, STATE_FIELD_PREFIX
from pamiq.vrchat import controller

STEP_FIELDS = ('step', 'reward', 'value', 'log_prob', 'policy_version')
# The three messages of one frame, as the pairing (pamiq.learning.pairing) names its parts.
STEP_PARTS = {'observation': topics.OBSERVATION, 'action': topics.ACTION, 'step': topics.STEP}


def stamp_ns(msg) -> int:
    """A header stamp as integer nanoseconds (the pairing key of a frame's messages)."""
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def step_part(part: str, msg, action_space: str) -> object:
    """What the learner keeps of one of a frame's messages, checked.

    'observation' -> (84, 84, 3) uint8 RGB; 'action' -> action_vector; 'step' -> step_fields.

    Raises:
        ValueError: The message is malformed (ImageConversionError is one).
    """
    if part == 'observation':
        observation = image_to_numpy(msg, 'rgb8')
        if observation.shape != FRAME_SHAPE:
            raise ValueError(f'observation of shape {observation.shape}, expected {FRAME_SHAPE}')
        return observation
    if part == 'action':
        return action_vector(msg.name, msg.position, action_space)
    return step_fields(msg)


def step_message(
    stamp,
    step: int,
    reward: float,
    value: float,
    log_prob: float,
    version: int,
    sense_rewards: dict[str, float] | None = None,
    policy_state: np.ndarray | None = None,
) -> JointState:
    """agent/step; with several senses also reward_<sense>: each sense's share of r_t; from a
    recurrent policy also state_<i>: its state before o_t, which the trainer re-runs from."""
    msg = JointState()
    msg.header.stamp = stamp
    shares = sense_rewards or {}
    state = () if policy_state is None else policy_state
    msg.name = [
        *STEP_FIELDS,
        *(f'reward_{sense}' for sense in shares),
        *(f'{STATE_FIELD_PREFIX}{i}' for i in range(len(state))),
    ]
    msg.position = [
        *(float(v) for v in (step, reward, value, log_prob, version)),
        *(float(share) for share in shares.values()),
        *(float(x) for x in state),
    ]
    return msg


def step_fields(msg: JointState) -> dict[str, float]:
    """Read an agent/step message; raises ValueError when a field is missing."""
    fields = dict(zip(msg.name, msg.position))
    missing = [name for name in STEP_FIELDS if name not in fields]
    if missing:
        raise ValueError(f'agent/step lacks {", ".join(missing)}')
    return fields


# The frame_id of an `action` that answers no frame: a pausing agent's neutral command.
NEUTRAL_FRAME_ID = 'neutral'


def is_neutral_command(msg: JointState) -> bool:
    """Whether an `action` is a pausing agent's release of every input (it answers no frame)."""
    return msg.header.frame_id == NEUTRAL_FRAME_ID


def action_message(
    stamp, names: Sequence[str], values: Sequence[float], frame_id: str = ''
) -> JointState:
    """An `action` message: VRChat input names and values, stamped with the frame's stamp."""
    msg = JointState()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.name = list(names)
    msg.position = [float(v) for v in values]
    return msg


def action_vector(names: Sequence[str], values: Sequence[float], action_space: str) -> np.ndarray:
    """The agent's action as the learner stores it: (3,) float32 axes or (5,) int64 indices."""
    lookup = dict(zip(names, values))
    if action_space == 'continuous':
        missing = [n for n in controller.CONTINUOUS_ACTION_NAMES if n not in lookup]
        if missing:
            raise ValueError(f'continuous action lacks {", ".join(missing)}')
        return np.array([lookup[n] for n in controller.CONTINUOUS_ACTION_NAMES], np.float32)
    return np.array(controller.buttons_to_discrete(lookup), np.int64)


def action_names_values(action: np.ndarray, action_space: str) -> tuple[list[str], list[float]]:
    """Inverse of action_vector: VRChat input names and values for the `action` message."""
    if action_space == 'continuous':
        return list(controller.CONTINUOUS_ACTION_NAMES), [float(v) for v in action]
    buttons = controller.discrete_to_buttons([int(i) for i in action])
    return list(buttons), [float(v) for v in buttons.values()]
