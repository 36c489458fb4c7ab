"""The agent's inputs beyond vision, as the networks read them. No ROS.

A step's observation is always the 84x84 frame o_t (it paces acting, and carries the stamp the
trainer pairs by); with more senses a step also has what was heard and felt at that frame:

- hearing: the stereo log-mel spectrogram of the last second, (2, 40, 50) float32 dB
  (pamiq.learning.hearing);
- body: the avatar parameters of pamiq.vrchat.avatar.BODY_FIELDS, (10,) float32 in VRChat's units.

`SenseBatch` carries a batch of them through the models; it indexes like a tensor, so PPO's
minibatching (`b_obs[mb_inds]`) works on it unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from pamiq.learning.sense_arrays import BODY_SCALE, absent, extra_senses, is_multimodal
from pamiq.learning.vision import observations_to_tensor
from pamiq.vocabulary import FRAME_SHAPE


@dataclass(frozen=True)
class SenseBatch:
    """A batch of multimodal observations as tensors (absent senses are None).

    vision: o, (B, 3, 84, 84) float in [0, 1); hearing: (B, 2, 40, 50) dB / 50 + 1, about
    [-1, 1.5]; body: (B, 10) scaled to about [-1, 1].
    """

    vision: torch.Tensor
    hearing: torch.Tensor | None = None
    body: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.vision)

    def __getitem__(self, index) -> SenseBatch:
        return SenseBatch(*(None if t is None else t[index] for t in self.tensors()))

    def tensors(self) -> tuple[torch.Tensor | None, ...]:
        return (self.vision, self.hearing, self.body)

    def to(self, device) -> SenseBatch:
        return SenseBatch(*(None if t is None else t.to(device) for t in self.tensors()))

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        """torch.cat of SenseBatches (PPO joins the rollouts of several actors) joins each
        sense's tensors; nothing else is defined on a batch."""
        if func is not torch.cat:
            return NotImplemented
        parts = zip(*(batch.tensors() for batch in args[0]))
        return SenseBatch(
            *(None if p[0] is None else torch.cat(p, **(kwargs or {})) for p in parts)
        )


def sense_batch(vision: torch.Tensor, extras: Mapping[str, np.ndarray], device=None) -> SenseBatch:
    """A SenseBatch from the vision tensor and (N, ...) arrays of the other senses."""
    hearing = extras.get('hearing')
    body = extras.get('body')
    return SenseBatch(
        vision,
        None if hearing is None else torch.as_tensor(hearing, device=device) / 50.0 + 1.0,
        None
        if body is None
        else torch.clamp(torch.as_tensor(body, device=device) / torch.as_tensor(BODY_SCALE,
                                                                               device=device),
                         -3.0, 3.0),
    )  # fmt: skip


def model_inputs(
    observations: np.ndarray,
    extras: Mapping[str, np.ndarray],
    senses: tuple[str, ...],
    device=None,
) -> torch.Tensor | SenseBatch:
    """What the networks read for (N, 84, 84, 3) frames and (N, ...) arrays of the other
    senses: the frame tensor alone with vision alone (the original's input), else a SenseBatch."""
    vision = observations_to_tensor(observations, device)
    if not is_multimodal(senses):
        return vision
    return sense_batch(vision, {s: extras[s] for s in extra_senses(senses)}, device)


def dummy_inputs(senses: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One step of zeros/absent inputs: a frame and the other senses (for warm-ups)."""
    return np.zeros(FRAME_SHAPE, np.uint8), {s: absent(s) for s in extra_senses(senses)}
