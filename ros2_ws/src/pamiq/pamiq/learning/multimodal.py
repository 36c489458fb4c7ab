"""One embedding from several senses: a network per sense, fused by concatenation. No ROS.

[Design] Each sense has its own small network: vision the original's CNN (512), hearing a
small CNN over the log-mel spectrogram (128), the body an MLP over the avatar parameters
(64). Their outputs are layer-normalised per sense and scaled so that every sense carries the
same weight in a squared distance, then concatenated: that is the fused embedding z_t the
inverse-dynamics head learns, the forward model predicts, and whose prediction error is the
curiosity reward. The reward over z is then the mean of the senses' own errors, so each
sense's share is read off the same prediction (`per_sense_rewards`). The policy has its own
trunk built the same way (the original kept the policy's CNN apart from the encoder's).

[Why hearing and the body also reconstruct themselves] Inverse dynamics keeps what the
agent's actions change; most sounds (a monster's growl, music in a VRChat world) are not
caused by the agent, so its loss alone would leave the hearing block blind to them. Beside it,
each sense other than vision reconstructs its own input from its block (a linear decoder,
`SenseFeatures.auxiliary_loss`), so its block says what was heard or felt, and a sound never
heard before lands where the forward model has never predicted.
With vision alone the models are exactly the original's (pamiq.learning.models).
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from pamiq.learning.sense_arrays import EXTRA_SENSES
from pamiq.learning.senses import SenseBatch
from pamiq.learning.vision import SmallConvNet
from pamiq.vocabulary import EMBEDDING_DIM

EMBEDDING_DIMS = {'vision': EMBEDDING_DIM, 'hearing': 128, 'body': 64}


class HearingNet(nn.Module):
    """(B, 2, 40, 50) log-mel -> (B, dim): three strided 3x3 convolutions and a Linear."""

    def __init__(self, dim_out: int = EMBEDDING_DIMS['hearing']) -> None:
        super().__init__()
        channels, bands, frames = EXTRA_SENSES['hearing']
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 32, kernel_size=3, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.net(torch.zeros(1, channels, bands, frames)).shape[1]
        self.out = nn.Linear(flat, dim_out)

    def forward(self, hearing: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(hearing))


class BodyNet(nn.Module):
    """(B, 10) avatar parameters -> (B, dim)."""

    def __init__(self, dim_out: int = EMBEDDING_DIMS['body'], hidden: int = 64) -> None:
        super().__init__()
        (fields,) = EXTRA_SENSES['body']
        self.net = nn.Sequential(
            nn.Linear(fields, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, dim_out)
        )

    def forward(self, body: torch.Tensor) -> torch.Tensor:
        return self.net(body)


def sense_net(sense: str) -> nn.Module:
    if sense == 'vision':
        return SmallConvNet(EMBEDDING_DIMS['vision'])
    return HearingNet() if sense == 'hearing' else BodyNet()


def block_scales(senses: tuple[str, ...]) -> list[float]:
    """Per sense, the factor on its layer-normalised block: sqrt(D / (S * d_s)), so a squared
    distance over the fused embedding is the mean of the senses' own mean squared distances."""
    total = sum(EMBEDDING_DIMS[s] for s in senses)
    return [math.sqrt(total / (len(senses) * EMBEDDING_DIMS[s])) for s in senses]


class SenseFeatures(nn.Module):
    """A SenseBatch -> the fused embedding (B, sum of the senses' dims)."""

    def __init__(self, senses: tuple[str, ...]) -> None:
        super().__init__()
        if not senses:
            raise ValueError('at least one sense is needed')
        self.senses = tuple(senses)
        self.nets = nn.ModuleDict({sense: sense_net(sense) for sense in self.senses})
        self.dims = [EMBEDDING_DIMS[s] for s in self.senses]
        self.dim = sum(self.dims)
        self.scales = block_scales(self.senses)
        self.decoders = nn.ModuleDict(
            {
                sense: nn.Linear(EMBEDDING_DIMS[sense], math.prod(EXTRA_SENSES[sense]))
                for sense in self.senses
                if sense in EXTRA_SENSES
            }
        )

    def block(self, batch: SenseBatch, sense: str) -> torch.Tensor:
        """One sense's layer-normalised features (before the fusion's scale)."""
        dim = EMBEDDING_DIMS[sense]
        return F.layer_norm(self.nets[sense](getattr(batch, sense)), (dim,))

    def forward(self, batch: SenseBatch) -> torch.Tensor:
        blocks = [self.block(batch, s) * scale for s, scale in zip(self.senses, self.scales)]
        return torch.cat(blocks, dim=-1)

    def auxiliary_loss(self, batch: SenseBatch) -> torch.Tensor:
        """Mean over the senses besides vision of MSE(decoder(block), the sense's input)."""
        losses = [
            F.mse_loss(decoder(self.block(batch, sense)), getattr(batch, sense).flatten(1))
            for sense, decoder in self.decoders.items()
        ]
        return torch.stack(losses).mean() if losses else torch.zeros(())


@torch.no_grad()
def per_sense_rewards(
    predicted: torch.Tensor, target: torch.Tensor, senses: tuple[str, ...]
) -> dict[str, torch.Tensor]:
    """Each sense's share of the curiosity reward: its block's mean squared error, in its own
    layer-normalised units. Their mean is curiosity_reward(predicted, target).

    Args:
        predicted: ẑ_{t+1}, (B, D) fused embeddings.
        target: z_{t+1}, (B, D).

    Returns:
        sense -> (B,) rewards.
    """
    rewards, start = {}, 0
    for sense, scale in zip(senses, block_scales(senses)):
        end = start + EMBEDDING_DIMS[sense]
        error = (predicted[..., start:end] - target[..., start:end]).pow(2).mean(dim=-1)
        rewards[sense] = error / scale**2
        start = end
    return rewards
