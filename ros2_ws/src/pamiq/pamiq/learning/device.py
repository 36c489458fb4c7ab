"""The one choice of where tensors live: the trainer, offline training and benchmarks use it."""

from __future__ import annotations

import torch

from pamiq.vocabulary import DEVICES


def choose_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else the CPU; 'cpu' and 'cuda' as asked.

    Raises:
        ValueError: Not one of DEVICES, or 'cuda' without a CUDA device.
    """
    if name not in DEVICES:
        raise ValueError(f'device must be one of {", ".join(DEVICES)}, got {name!r}')
    if name == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    if name == 'cuda' and not torch.cuda.is_available():
        raise ValueError("'cuda' was asked for but no CUDA device is available")
    return torch.device(name)
