"""Vision model presets: what a network sees of the 84x84 RGB observation, and its trunk.

`original`: the original's input and CNN (84x84 RGB, one frame, SmallConvNet, 1.7 M
parameters). `compact`: the exploration literature's (ICM, E3B on ViZDoom): 42x42 grayscale,
the last 4 frames stacked, four 3x3 stride-2 convolutions of 32 channels (288 features). The
observation on `agent/observation` and in bags stays 84x84 RGB for both: the preset downsamples
(`view`) and stacks (`frames`) itself.

Why ReLU and channels-last in `compact` (ICM has ELU): measured in bench/train_engine.py's
model table on this 2-core machine, a training step over 256 samples cost 0.42 ms per sample
with ELU in the default layout, 0.35 with ReLU and 0.25 with ReLU channels-last (one thread).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from pamiq.learning.vision import SmallConvNet
from pamiq.vocabulary import FRAME_SHAPE, MODEL_PRESETS

COMPACT_SIZE = 42
COMPACT_FRAMES = 4
COMPACT_CHANNELS = (16, 32, 32, 32)


class CompactTrunk(nn.Module):
    """(B, frames, 42, 42) float in [0, 1] -> (B, 288): 42 -> 21 -> 11 -> 6 -> 3."""

    def __init__(self, frames: int = COMPACT_FRAMES, channels=COMPACT_CHANNELS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = frames
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.ReLU()]
            previous = width
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.dim = previous * 3 * 3
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.contiguous(memory_format=torch.channels_last))


class OriginalTrunk(SmallConvNet):
    """The original's SmallConvNet with 512 features, with the `dim` the presets expose."""

    def __init__(self, frames: int = 1) -> None:
        super().__init__(512)
        self.dim = 512


@dataclass(frozen=True)
class ModelPreset:
    """How observations become network input, and the trunk that reads it."""

    name: str
    frames: int  # observations stacked into one input, the newest last
    view_shape: tuple[int, int, int]  # (channels, height, width) of one observation's view

    def view(self, observations: np.ndarray) -> torch.Tensor:
        """(N, 84, 84, 3) uint8 RGB observations -> (N, C, H, W) uint8 views (the part of a
        stacked input one observation contributes). Cheap enough for every step."""
        obs = np.asarray(observations)
        if obs.ndim != 4 or tuple(obs.shape[1:]) != FRAME_SHAPE or obs.dtype != np.uint8:
            raise ValueError(
                f'expected (N, 84, 84, 3) uint8 observations, got {obs.dtype} {obs.shape}'
            )
        if self.name == 'original':
            return torch.from_numpy(obs).permute(0, 3, 1, 2).contiguous()
        size = self.view_shape[1:]
        # OpenCV's BT.601 luma, then INTER_AREA: the area filter a 2x shrink wants (thin walls
        # do not alias away); ~10 us a frame.
        views = [
            cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA)
            for frame in obs
        ]
        return torch.from_numpy(np.stack(views)[:, None])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        channels, height, width = self.view_shape
        return (self.frames * channels, height, width)

    def inputs(self, stacked: torch.Tensor, device=None) -> torch.Tensor:
        """(N, frames*C, H, W) uint8 stacked views -> the networks' float input. The original
        divides by 256, as it always has; compact by 255."""
        scale = 256.0 if self.name == 'original' else 255.0
        return torch.as_tensor(stacked, device=device).to(torch.float32) / scale

    @property
    def hidden(self) -> int:
        """The policy's width after the trunk (PolicyValue's `hidden`)."""
        return 512 if self.name == 'original' else 256

    def trunk(self) -> nn.Module:
        """A fresh feature extractor for one network (each network has its own)."""
        if self.name == 'original':
            return OriginalTrunk()
        return CompactTrunk(self.frames)


PRESETS = {
    'original': ModelPreset('original', 1, (3, 84, 84)),
    'compact': ModelPreset('compact', COMPACT_FRAMES, (1, COMPACT_SIZE, COMPACT_SIZE)),
}
assert tuple(PRESETS) == MODEL_PRESETS


def model_preset(name: str) -> ModelPreset:
    """The preset called `name`.

    Raises:
        ValueError: No such preset.
    """
    if name not in PRESETS:
        raise ValueError(f'model must be one of {", ".join(PRESETS)}, got {name!r}')
    return PRESETS[name]
