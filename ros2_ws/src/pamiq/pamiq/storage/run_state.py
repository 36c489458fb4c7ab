"""A training run's state besides its models: tensors and JSON in one safetensors file.

``<run_dir>/state/state-<version:08d>.safetensors``, written atomically (temporary file, fsync,
rename) beside the checkpoint of the same version; the JSON rides in the metadata under
``state``. Read back with safetensors and json only: nothing executes code.
"""

from __future__ import annotations

import json
import os
import secrets

import safetensors.torch
import torch

SUBDIR = 'state'


def run_state_path(run_dir: str, version: int) -> str:
    return os.path.join(run_dir, SUBDIR, f'state-{version:08d}.safetensors')


def save_run_state(
    run_dir: str, version: int, tensors: dict[str, torch.Tensor], state: dict
) -> str:
    """Atomically write `tensors` and the JSON-able `state`; returns the path."""
    final = run_state_path(run_dir, version)
    os.makedirs(os.path.dirname(final), exist_ok=True)
    temp = f'{final}.{secrets.token_hex(4)}.tmp'
    data = safetensors.torch.save(
        {name: t.detach().cpu().contiguous() for name, t in tensors.items()},
        metadata={'state': json.dumps(state)},
    )
    try:
        with open(temp, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, final)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return final


def load_run_state(run_dir: str, version: int) -> tuple[dict[str, torch.Tensor], dict] | None:
    """(tensors, state) of `version`, or None when there is no such file.

    Raises:
        ValueError: The file exists but cannot be read.
    """
    path = run_state_path(run_dir, version)
    if not os.path.exists(path):
        return None
    try:
        with open(path, 'rb') as stream:
            data = stream.read()
        tensors = safetensors.torch.load(data)
        with safetensors.safe_open(path, 'pt') as handle:
            metadata = handle.metadata() or {}
        return tensors, json.loads(metadata['state'])
    except (OSError, ValueError, KeyError, safetensors.SafetensorError) as error:
        raise ValueError(f'run state {path} is unusable: {error}') from error
