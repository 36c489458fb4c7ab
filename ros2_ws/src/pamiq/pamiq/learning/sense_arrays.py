"""One step's input of each sense besides vision, as numpy arrays: shapes, checks, absence.

No torch and no ROS, so the nodes that only publish senses (the Doom world, audio and body)
check what they send without loading the learning stack.

- hearing: the stereo log-mel spectrogram of the last second, (2, 40, 50) float32 dB
  (pamiq.learning.hearing);
- body: the avatar parameters of pamiq.vrchat.avatar.BODY_FIELDS, (10,) float32 in VRChat's units.
"""

from __future__ import annotations

import numpy as np

from pamiq.learning.hearing import FLOOR_DB, HEARING_SHAPE
from pamiq.vocabulary import DEFAULT_SENSES
from pamiq.vrchat.avatar import BODY_DEFAULTS, BODY_FIELDS, BODY_SCALES

# The senses besides vision, and the shape and dtype of one step's input of each.
EXTRA_SENSES = {'hearing': HEARING_SHAPE, 'body': (len(BODY_FIELDS),)}
BODY_SCALE = np.array([BODY_SCALES.get(name, 1.0) for name in BODY_FIELDS], np.float32)


def extra_senses(senses: tuple[str, ...]) -> tuple[str, ...]:
    """The senses that come with a step besides its frame."""
    return tuple(sense for sense in senses if sense in EXTRA_SENSES)


def is_multimodal(senses: tuple[str, ...]) -> bool:
    return tuple(senses) != DEFAULT_SENSES


def absent(sense: str) -> np.ndarray:
    """What a missing sense gives: silence, or a body standing still."""
    if sense == 'hearing':
        return np.full(HEARING_SHAPE, FLOOR_DB, np.float32)
    return np.array([BODY_DEFAULTS[name] for name in BODY_FIELDS], np.float32)


def check_sense(sense: str, value: np.ndarray) -> np.ndarray:
    """One step's input of a sense as float32, checked.

    Raises:
        ValueError: Wrong shape or non-finite values.
    """
    value = np.asarray(value, np.float32)
    if value.shape != EXTRA_SENSES[sense]:
        raise ValueError(f'{sense} input of shape {value.shape}, expected {EXTRA_SENSES[sense]}')
    if not np.isfinite(value).all():
        raise ValueError(f'{sense} input has non-finite values')
    return value
