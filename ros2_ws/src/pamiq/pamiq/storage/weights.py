"""Model weights as one safetensors blob, sent from the trainer process to the agent process.

The trainer packs the state dicts of several models into a single safetensors blob (carried as
the bytes of a ``std_msgs/UInt8MultiArray``). The agent validates the blob completely against its
own modules before loading anything, so a truncated, corrupted or mismatched blob is rejected with
a precise reason and the old weights stay in place. Only safetensors is used: the bytes come from
another process and must never be able to execute code (no pickle, no ``torch.load``).
"""

from __future__ import annotations

from collections.abc import Mapping
import json
import struct

import safetensors.torch
import torch
from torch import nn

from pamiq.storage.errors import WeightsError
from pamiq.storage.tensors import (
    TensorCheckError,
    check_state_dict,
    diff_text,
    load_safetensors,
    safetensors_ready,
)

FORMAT = 'pamiq-weights/1'
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def pack_weights(models: Mapping[str, nn.Module], version: int) -> bytes:
    """Serializes the state dicts of several models into one safetensors blob.

    Args:
        models: Model name to module. Names must be non-empty and contain neither ',' (the
            metadata separator) nor '/' (the tensor key separator).
        version: Non-negative weights version, e.g. the trainer's update counter.

    Returns:
        The safetensors bytes: tensors keyed ``'<model>/<state_dict key>'`` plus the metadata
        ``format``, ``version`` and ``models``. Equal inputs give equal bytes.

    Raises:
        ValueError: If a model name or the version cannot be represented.
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f'version must be a non-negative int, got {version!r}')
    for name in models:
        if not name or ',' in name or '/' in name:
            raise ValueError(f"invalid model name {name!r}: must be non-empty, without ',' or '/'")
    tensors = safetensors_ready(
        (f'{name}/{key}', tensor)
        for name, module in models.items()
        for key, tensor in module.state_dict().items()
    )
    metadata = {'format': FORMAT, 'version': str(version), 'models': ','.join(models)}
    return _canonical_header(safetensors.torch.save(tensors, metadata=metadata))


def unpack_weights(
    blob: bytes | bytearray | memoryview,
    expected: Mapping[str, nn.Module],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[int, dict[str, dict[str, torch.Tensor]]]:
    """Parses and fully validates a weights blob against the modules it is meant for.

    The expected modules are only read (state-dict keys, shapes and dtypes), never modified.

    Args:
        blob: Bytes produced by :func:`pack_weights`.
        expected: Model name to the module the weights will be loaded into.
        max_bytes: Largest accepted blob, checked before anything is parsed.

    Returns:
        The weights version and, per model name, a state dict of CPU tensors ready for
        :func:`load_into`: views of a writable blob (no copy of 29 MB while the agent acts),
        which they keep alive; copy them, never modify them.

    Raises:
        WeightsError: If the blob is empty, oversized, not safetensors, has wrong or missing
            metadata, a different model set, different state-dict keys, a tensor of another
            shape or dtype, or non-finite values.
    """
    try:
        view = memoryview(blob)
    except TypeError as exc:
        raise WeightsError(f'not a bytes-like blob: {type(blob).__name__}') from exc
    size = view.nbytes
    if size == 0:
        raise WeightsError('empty blob')
    if size > max_bytes:
        raise WeightsError(f'oversized: {size} bytes > limit {max_bytes}')
    try:
        tensors, metadata = load_safetensors(view, 'blob')
    except TensorCheckError as exc:
        raise WeightsError(str(exc)) from exc

    fmt = metadata.get('format')
    if fmt is None:
        raise WeightsError(f"missing 'format' in metadata (expected {FORMAT!r})")
    if fmt != FORMAT:
        raise WeightsError(f'format mismatch: expected {FORMAT!r}, got {fmt!r}')
    version = _parse_version(metadata.get('version'))

    models_field = metadata.get('models')
    if models_field is None:
        raise WeightsError("missing 'models' in metadata")
    names = models_field.split(',') if models_field else []
    if len(set(names)) != len(names):
        raise WeightsError(f'duplicate model names in metadata: {models_field!r}')
    missing = [n for n in expected if n not in names]
    unexpected = [n for n in names if n not in expected]
    if missing or unexpected:
        raise WeightsError(f'model set mismatch: {diff_text(missing, unexpected)}')

    state_dicts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in names}
    for full_key, tensor in tensors.items():
        name, sep, key = full_key.partition('/')
        if not sep or name not in state_dicts:
            raise WeightsError(f'tensor {full_key!r} belongs to no model listed in the metadata')
        state_dicts[name][key] = tensor

    for name, module in expected.items():
        # state_dict() returns detached references: reading shapes and dtypes leaves the module
        # untouched.
        try:
            state_dicts[name] = check_state_dict(
                f'{name}: state-dict', f'{name}/', state_dicts[name], module.state_dict()
            )
        except TensorCheckError as exc:
            raise WeightsError(str(exc)) from exc
    return version, state_dicts


def load_into(
    models: Mapping[str, nn.Module], state_dicts: Mapping[str, Mapping[str, torch.Tensor]]
) -> None:
    """Loads validated state dicts into their modules (strict, onto each module's device).

    Args:
        models: Model name to module, the same names as ``state_dicts``.
        state_dicts: Output of :func:`unpack_weights`.

    Raises:
        WeightsError: If the two name sets differ (checked before any module is touched).
    """
    missing = [n for n in models if n not in state_dicts]
    unexpected = [n for n in state_dicts if n not in models]
    if missing or unexpected:
        raise WeightsError(f'model set mismatch: {diff_text(missing, unexpected)}')
    for name, module in models.items():
        # load_state_dict copies into the existing parameters, so tensors move to the module's
        # device and keep the module's parameter identities (optimizers stay valid).
        module.load_state_dict(state_dicts[name], strict=True)


def _canonical_header(data: bytes) -> bytes:
    """Rewrites a safetensors header with its metadata keys in sorted order.

    The safetensors writer keeps metadata in a Rust HashMap, so its key order (and hence the
    bytes) changes from call to call; a canonical header makes equal weights give equal blobs.
    Data offsets are relative to the end of the header, so the tensor bytes are reused as is.
    """
    (header_len,) = struct.unpack('<Q', data[:8])
    header = json.loads(data[8 : 8 + header_len])
    header['__metadata__'] = dict(sorted(header['__metadata__'].items()))
    # Metadata first, as the writer puts it, then the tensors in the writer's order.
    header = {'__metadata__': header.pop('__metadata__'), **header}
    text = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode()
    # The format pads the header with spaces to a multiple of 8 so tensor data stays aligned.
    text += b' ' * (-len(text) % 8)
    return struct.pack('<Q', len(text)) + text + data[8 + header_len :]


def _parse_version(text: str | None) -> int:
    if text is None:
        raise WeightsError("missing 'version' in metadata")
    # int() alone would accept ' 7', '+7' and '7_0'; the writer only ever emits plain digits.
    stripped = text[1:] if text.startswith('-') else text
    if not stripped.isascii() or not stripped.isdigit():
        raise WeightsError(f'version is not an integer: {text!r}')
    version = int(text)
    if version < 0:
        raise WeightsError(f'negative version: {version}')
    return version
