"""The safetensors checks that weights blobs and checkpoints share.

Both carry state dicts from a file or another process into live modules, so both check the
same things the same way before anything is loaded: the header's metadata, every key, shape and
dtype against the module that will receive it, and finite values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
import math
import struct

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


# safetensors dtype names -> torch dtypes (those a state dict can hold).
DTYPES = {
    'F64': torch.float64,
    'F32': torch.float32,
    'F16': torch.float16,
    'BF16': torch.bfloat16,
    'I64': torch.int64,
    'I32': torch.int32,
    'I16': torch.int16,
    'I8': torch.int8,
    'U8': torch.uint8,
    'BOOL': torch.bool,
}
HEADER_LIMIT = 100_000_000  # bytes of JSON header; the library's own limit


def load_safetensors(
    data: bytes | bytearray | memoryview, what: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of safetensors bytes; `what` ('blob', 'file') names them.

    The tensors are views of `data` where it is writable (the 29 MB weights array a
    subscription hands over): the agent must not copy it under the GIL while it acts. They
    keep `data` alive and must be copied, not modified (`load_state_dict` copies). Read-only
    input is copied once. Checked as the safetensors library checks: header bounds, known
    dtypes, shapes matching byte lengths, and offsets tiling the data exactly.

    Raises:
        TensorCheckError: The bytes are not safetensors, or their metadata is missing or not a
            map of strings.
    """
    view = memoryview(data).cast('B')
    try:
        entries, metadata, start = _read_header(view)
    except TensorCheckError:
        raise
    except (struct.error, ValueError, TypeError) as exc:
        raise TensorCheckError(f'not a safetensors {what}: {exc}') from exc
    if view.readonly:
        view = memoryview(bytearray(view))  # torch tensors cannot be read-only
    tensors = {}
    for name, (dtype, shape, begin, end) in entries.items():
        offset = start + begin
        if begin == end:
            tensors[name] = torch.empty(shape, dtype=dtype)
        elif offset % dtype.itemsize:  # unaligned for its type: a private, aligned copy
            tensors[name] = torch.frombuffer(bytearray(view[offset : start + end]), dtype=dtype)
        else:
            count = (end - begin) // dtype.itemsize
            tensors[name] = torch.frombuffer(view, dtype=dtype, count=count, offset=offset)
        tensors[name] = tensors[name].view(shape)
    return tensors, metadata


def _read_header(view: memoryview) -> tuple[dict, dict[str, str], int]:
    """(name -> (dtype, shape, begin, end), metadata, first data byte) of a safetensors buffer."""
    (header_len,) = struct.unpack('<Q', view[:8])
    if header_len > HEADER_LIMIT or 8 + header_len > len(view):
        raise ValueError(f'header of {header_len} bytes does not fit in {len(view)}')
    header = json.loads(bytes(view[8 : 8 + header_len]))
    if not isinstance(header, dict):
        raise ValueError('header is not a JSON object')
    metadata = header.pop('__metadata__', None)
    if metadata is None:
        raise TensorCheckError('missing metadata in header')
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise TensorCheckError('malformed metadata in header: expected a map of strings')
    entries = {name: _entry(name, info) for name, info in header.items()}
    size = len(view) - 8 - header_len
    position = 0
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != position:
            raise ValueError(f'tensor {name!r} starts at byte {begin}, expected {position}')
        position = end
    if position != size:
        raise ValueError(f'tensors end at byte {position}, the data has {size}')
    return entries, metadata, 8 + header_len


def _entry(name: str, info: object) -> tuple[torch.dtype, list[int], int, int]:
    if not isinstance(info, dict) or info.get('dtype') not in DTYPES:
        raise ValueError(f'tensor {name!r}: no known dtype in {info!r}')
    dtype = DTYPES[info['dtype']]
    shape, offsets = info.get('shape'), info.get('data_offsets')
    if not _ints(shape) or not _ints(offsets) or len(offsets) != 2:
        raise ValueError(f'tensor {name!r}: malformed shape or data_offsets in {info!r}')
    begin, end = offsets
    if end < begin or end - begin != math.prod(shape) * dtype.itemsize:
        raise ValueError(f'tensor {name!r}: {end - begin} bytes do not hold shape {shape}')
    return dtype, shape, begin, end


def _ints(value: object) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


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
