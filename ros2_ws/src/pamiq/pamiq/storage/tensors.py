"""The safetensors checks that weights blobs and checkpoints share.

Both carry state dicts from a file or another process into live modules, so both check the
same things the same way before anything is loaded: the header's metadata, every key, shape and
dtype against the module that will receive it, and finite values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import struct

import safetensors.torch
import torch

# How many names a mismatch message lists before summarising the rest.
_MAX_LISTED = 5


class TensorCheckError(ValueError):
    """A tensor or a header failed a check; the message says precisely what and where."""


def safetensors_ready(items: Iterable[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors by key, as safetensors can store them.

    safetensors refuses tensors that share memory (tied weights, views of one buffer); a
    private copy stores each key independently and loads back identically.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for key, tensor in items:
        tensor = tensor.detach().to('cpu').contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel() > 0:
            tensor = tensor.clone()
            storage = tensor.untyped_storage().data_ptr()
        seen_storages.add(storage)
        tensors[key] = tensor
    return tensors


def header_metadata(data: bytes) -> dict[str, str]:
    """Returns the ``__metadata__`` map of a safetensors blob the library has already accepted.

    ``safetensors.torch.load`` validates the header but does not return the metadata, so the
    (small, already bounds-checked) JSON header is decoded here once more for it.
    """
    try:
        (header_len,) = struct.unpack('<Q', data[:8])
        header = json.loads(data[8 : 8 + header_len])
    except (struct.error, ValueError) as exc:
        raise TensorCheckError(f'not a safetensors blob: unreadable header: {exc}') from exc
    metadata = header.get('__metadata__') if isinstance(header, dict) else None
    if metadata is None:
        raise TensorCheckError('missing metadata in header')
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TensorCheckError('malformed metadata in header: expected a map of strings')
    return metadata


def load_safetensors(data: bytes, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of safetensors bytes; `what` ('blob', 'file') names them.

    Raises:
        TensorCheckError: The bytes are not safetensors, or their metadata is missing or not a
            map of strings.
    """
    try:
        tensors = safetensors.torch.load(data)
    except Exception as exc:
        # The safetensors bindings raise SafetensorError for malformed input, but a corrupted
        # header can also surface as KeyError/ValueError/AssertionError from the torch side
        # (e.g. a dtype torch cannot map); all of them mean the bytes are unusable.
        raise TensorCheckError(f'not a safetensors {what}: {exc}') from exc
    return tensors, header_metadata(data)


def check_state_dict(
    label: str, prefix: str, got: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Check a received state dict against a module's; returns it in the module's key order.

    Args:
        label: Names the state dict in a key mismatch ("policy: state-dict", "model 'policy'").
        prefix: Precedes each key in the other messages ("policy/", "model/policy/").
        got: The received tensors by state-dict key.
        reference: The receiving module's `state_dict()` (only read).

    Raises:
        TensorCheckError: Keys differ, or a tensor has another shape or dtype or a non-finite
            value.
    """
    missing = [k for k in reference if k not in got]
    unexpected = sorted(k for k in got if k not in reference)
    if missing or unexpected:
        raise TensorCheckError(f'{label} keys mismatch: {diff_text(missing, unexpected)}')
    for key, ref in reference.items():
        tensor = got[key]
        if tensor.shape != ref.shape:
            raise TensorCheckError(
                f'shape mismatch for {prefix}{key}: expected {tuple(ref.shape)}, '
                f'got {tuple(tensor.shape)}'
            )
        if tensor.dtype != ref.dtype:
            raise TensorCheckError(
                f'dtype mismatch for {prefix}{key}: expected {ref.dtype}, got {tensor.dtype}'
            )
        if not all_finite(tensor):
            raise TensorCheckError(f'non-finite values in {prefix}{key}')
    return {key: got[key] for key in reference}


def all_finite(tensor: torch.Tensor) -> bool:
    if not (tensor.is_floating_point() or tensor.is_complex()):
        return True
    if tensor.numel() == 0:
        return True
    try:
        return bool(torch.isfinite(tensor).all())
    except (RuntimeError, NotImplementedError):
        # Exotic dtypes (float8 variants) lack isfinite on CPU; upcasting keeps NaN/inf as is.
        return bool(torch.isfinite(tensor.to(torch.float32)).all())


def diff_text(missing: list[str], unexpected: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f'missing {few(missing)}')
    if unexpected:
        parts.append(f'unexpected {few(unexpected)}')
    return '; '.join(parts)


def few(names: list[str]) -> str:
    listed = ', '.join(repr(n) for n in names[:_MAX_LISTED])
    rest = len(names) - _MAX_LISTED
    return f'[{listed}]' + (f' (+{rest} more)' if rest > 0 else '')
