"""A frame as the networks see it: uint8 RGB frames as their float input, and the small CNN
that reads them (the trunk of the encoder, the policy and each sense network's vision).

Apart from models.py so that what builds on the frame input (the senses, the multimodal
networks) and the models that build on those do not import each other in a circle.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pamiq.vocabulary import FRAME_SHAPE


def observations_to_tensor(
    obs: np.ndarray | torch.Tensor, device: torch.device | str | None = None
) -> torch.Tensor:
    """Convert uint8 HWC RGB frames to the networks' float CHW input.

    Args:
        obs: Frames, (N, 84, 84, 3) or one frame (84, 84, 3), uint8 RGB.
        device: Where the result lives.

    Returns:
        (N, 3, 84, 84) float32 in [0, 255/256]: value / 256, as the original (not / 255).
    """
    obs = torch.as_tensor(obs, device=device)
    if obs.ndim == 3:
        obs = obs.unsqueeze(0)
    if obs.ndim != 4 or tuple(obs.shape[1:]) != FRAME_SHAPE:
        raise ValueError(f'expected (N, 84, 84, 3) or (84, 84, 3) frames, got {tuple(obs.shape)}')
    return obs.permute(0, 3, 1, 2).to(torch.float32) / 256.0


class SmallConvNet(nn.Module):
    """The original's CNN (from large-scale-curiosity): 84×84 → 20 → 9 → 7, then one Linear.

    LeakyReLU(0.2) is TensorFlow's default slope, kept from the original. No activation after the
    final Linear. 1,682,080 parameters for dim_out 512.
    """

    def __init__(self, dim_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=8, stride=4),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, kernel_size=4, stride=2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 64, kernel_size=3, stride=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, dim_out),
        )

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Map (B, 3, 84, 84) frames to (B, dim_out) features."""
        return self.net(obs)
