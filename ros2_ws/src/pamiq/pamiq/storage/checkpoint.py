"""Trainer checkpoints: models, optimizers and counters in one safetensors file per checkpoint.

Files are ``<run_dir>/checkpoints/checkpoint-<version:08d>.safetensors``. Tensors are stored as
``model/<name>/<state_dict key>`` and ``optim/<name>/<param index>/<state key>``; everything else
(optimizer param groups, non-tensor optimizer state, the caller's counters and the version) is
JSON in the safetensors metadata under ``manifest``. Only safetensors and JSON are read back, so
a damaged or foreign file can never execute code (no pickle, no ``torch.load``).

Saving is atomic (temporary file, fsync, rename, directory fsync), so a crash or a full disk
never leaves a half-written checkpoint under a final name. Loading validates a file completely
before touching any module and falls back to older checkpoints when the newest is unusable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import json
import os
import re
import secrets
from typing import Any

import safetensors.torch
import torch
from torch import nn

from pamiq.run_dir import CHECKPOINTS
from pamiq.storage.tensors import (
    TensorCheckError,
    all_finite,
    check_state_dict,
    diff_text,
    load_safetensors,
    safetensors_ready,
)

FORMAT = 'pamiq-checkpoint/1'
SUBDIR = CHECKPOINTS

_NAME = re.compile(r'^checkpoint-(\d{8,})\.safetensors$')
# Marks, inside the JSON manifest, an optimizer state entry whose value is a stored tensor.
_TENSOR_REF = '__safetensors__'
# Marks a tuple (e.g. Adam's betas) so it comes back as a tuple, not a list.
_TUPLE = '__tuple__'
# Marks a small tensor inside param_groups (e.g. a tensor learning rate).
_INLINE_TENSOR = '__tensor__'


class CheckpointError(OSError):
    """A checkpoint could not be written; the message names the file and the cause."""


class UnusableCheckpoint(ValueError):
    """A given checkpoint file cannot be used; the message names the file and the reason."""


class _Unusable(Exception):
    """Internal: why a checkpoint file cannot be used."""


def checkpoint_path(run_dir: str, version: int) -> str:
    """Returns the file name of the checkpoint for ``version`` in ``run_dir``."""
    return os.path.join(run_dir, SUBDIR, f'checkpoint-{version:08d}.safetensors')


def save_checkpoint(
    run_dir: str,
    version: int,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    counters: Mapping[str, int | float | str],
    keep: int = 5,
) -> str:
    """Atomically writes a checkpoint, then deletes the oldest ones beyond ``keep``.

    Args:
        run_dir: Run directory; checkpoints go to its ``checkpoints`` subdirectory.
        version: Non-negative checkpoint version (the trainer's update counter).
        models: Model name to module.
        optimizers: Optimizer name to optimizer.
        counters: Counters to restore on resume: str to int, float or str, or to a flat dict of
            those (a part's own state, such as the reward normaliser's).
        keep: How many checkpoints to keep, at least 1.

    Returns:
        The path of the written checkpoint.

    Raises:
        CheckpointError: If the file cannot be written (existing checkpoints are untouched and
            no temporary file is left behind).
        ValueError: If an argument cannot be represented (bad name, version, keep or counter).
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f'version must be a non-negative int, got {version!r}')
    if keep < 1:
        raise ValueError(f'keep must be at least 1, got {keep}')
    for kind, names in (('model', models), ('optimizer', optimizers)):
        for name in names:
            if not name or '/' in name:
                raise ValueError(f"invalid {kind} name {name!r}: must be non-empty, without '/'")
    data = _serialize(version, models, optimizers, counters)

    directory = os.path.join(run_dir, SUBDIR)
    final = checkpoint_path(run_dir, version)
    temp = os.path.join(directory, f'.checkpoint-{version:08d}-{secrets.token_hex(4)}.tmp')
    fd = -1
    try:
        os.makedirs(directory, exist_ok=True)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        view = memoryview(data)
        while view:
            # os.write may write less than asked (signals, large buffers): loop until done.
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(temp, final)
    except OSError as exc:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.remove(temp)
        except OSError:
            pass  # never created, or already renamed
        error = CheckpointError(f'cannot write checkpoint to {final}: {_describe(exc)}')
        error.errno = exc.errno
        raise error from exc
    _fsync_directory(directory)

    # Pruning is housekeeping: the new checkpoint is already safe, and a file that cannot be
    # removed now is retried after the next save, so failures here are not reported.
    for old in list_checkpoints(run_dir)[keep:]:
        try:
            os.remove(old)
        except OSError:
            pass
    return final


def list_checkpoints(run_dir: str) -> list[str]:
    """Returns the checkpoint paths in ``run_dir``, newest (highest version) first."""
    directory = os.path.join(run_dir, SUBDIR)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for name in names:
        match = _NAME.match(name)
        # Only canonical names (as written by save_checkpoint) count, so a version cannot
        # appear twice under differently padded names.
        if match and name == os.path.basename(checkpoint_path('', int(match.group(1)))):
            found.append((int(match.group(1)), os.path.join(directory, name)))
    return [path for _, path in sorted(found, reverse=True)]


def load_latest_checkpoint(
    run_dir: str,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer] | None = None,
    log: Callable[[str], None] = print,
) -> dict | None:
    """Resumes from the newest valid checkpoint, falling back to older ones.

    Each file is read and validated completely before any module is touched: parse, format,
    every requested model's keys, shapes, dtypes and finite values, and, when ``optimizers`` is
    given, their saved state. Models and optimizers the caller does not pass are ignored, so the
    agent can load just its models from a trainer checkpoint.

    Args:
        run_dir: Run directory given to :func:`save_checkpoint`.
        models: Model name to module to load into (strictly).
        optimizers: Optimizer name to optimizer to restore, or None to skip optimizer state.
            Their parameters must be in the same order as when saved.
        log: Receives one line per unusable checkpoint and when none is usable.

    Returns:
        ``{'version': int, 'counters': dict, 'path': str}`` of the loaded checkpoint, or None
        when there is no usable checkpoint (nothing is modified then).
    """
    paths = list_checkpoints(run_dir)
    for path in paths:
        try:
            plan = _read_and_validate(path, models, optimizers or {})
        except _Unusable as reason:
            log(f'checkpoint {path} is unusable ({reason}); trying the previous one')
            continue
        version, counters, model_states, optim_states = plan
        for name, module in models.items():
            module.load_state_dict(model_states[name], strict=True)
        for name, optimizer in (optimizers or {}).items():
            optimizer.load_state_dict(optim_states[name])
            match_parameter_layouts(optimizer)
        return {'version': version, 'counters': counters, 'path': path}
    if paths:
        log(f'no usable checkpoint in {os.path.join(run_dir, SUBDIR)}; starting from scratch')
    return None


def read_checkpoint_counters(path: str) -> dict:
    """The counters a checkpoint file was saved with (what a trained run says it is).

    Raises:
        UnusableCheckpoint: The file cannot be read as a pamiq checkpoint.
    """
    try:
        with safetensors.safe_open(path, 'pt') as handle:
            metadata = handle.metadata() or {}
        if metadata.get('format') != FORMAT:
            raise ValueError(f'format {metadata.get("format")!r}, not {FORMAT!r}')
        return dict(json.loads(metadata['manifest'])['counters'])
    except (OSError, ValueError, KeyError, safetensors.SafetensorError) as error:
        raise UnusableCheckpoint(f'checkpoint {path} is unusable ({error})') from None


def match_parameter_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give each loaded state tensor its parameter's memory layout (the files store them
    contiguous): fused Adam walks a parameter and its moments as one flat buffer, so a
    channels-last weight with contiguous moments would update the wrong elements."""
    for group in optimizer.param_groups:
        for param in group['params']:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape:
                    strided = torch.empty_like(param, dtype=value.dtype)
                    strided.copy_(value)
                    state[key] = strided


def read_checkpoint_models(
    path: str, models: Mapping[str, nn.Module]
) -> tuple[int, dict[str, dict[str, torch.Tensor]]]:
    """Reads one checkpoint file's models, validated against ``models`` (which stay untouched).

    For evaluating a chosen checkpoint rather than the newest: the result is what an acting
    policy loads (CuriosityPolicy.load_state_dict's ``{'version', 'models'}``).

    Returns:
        The checkpoint's version and a state dict per requested model.

    Raises:
        UnusableCheckpoint: The file cannot be read or does not fit ``models``.
    """
    try:
        version, _, model_states, _ = _read_and_validate(path, models, {})
    except _Unusable as reason:
        raise UnusableCheckpoint(f'checkpoint {path} is unusable ({reason})') from None
    return version, model_states


def _serialize(
    version: int,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
    counters: Mapping[str, int | float | str],
) -> bytes:
    items: list[tuple[str, torch.Tensor]] = []
    add = lambda key, tensor: items.append((key, tensor))

    for name, module in models.items():
        for key, tensor in module.state_dict().items():
            add(f'model/{name}/{key}', tensor)

    optim_manifest = {}
    for name, optimizer in optimizers.items():
        state_dict = optimizer.state_dict()
        state = {}
        for index, entries in state_dict['state'].items():
            encoded = {}
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    tensor_key = f'optim/{name}/{index}/{key}'
                    add(tensor_key, value)
                    encoded[key] = {_TENSOR_REF: tensor_key}
                else:
                    encoded[key] = _encode(value, f'optimizer {name!r} state {index}/{key}')
            state[str(index)] = encoded
        optim_manifest[name] = {
            'param_groups': [
                _encode(group, f'optimizer {name!r} param group {i}')
                for i, group in enumerate(state_dict['param_groups'])
            ],
            'state': state,
            # Lets the loader check that the parameters are the same, in the same order.
            'param_shapes': [
                list(p.shape) for group in optimizer.param_groups for p in group['params']
            ],
        }

    plain = (int, float, str)
    for key, value in counters.items():
        # One level of nesting holds a part's own state (the reward normaliser's statistics).
        nested = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, plain) for k, v in value.items()
        )
        if not isinstance(key, str) or not (isinstance(value, plain) or nested):
            raise ValueError(
                f'counter {key!r} must map a str to an int, float or str, or a dict of them'
            )
    manifest = {
        'version': version,
        'counters': dict(counters),
        'models': list(models),
        'optimizers': optim_manifest,
    }
    metadata = {'format': FORMAT, 'manifest': json.dumps(manifest)}
    return safetensors.torch.save(safetensors_ready(items), metadata=metadata)


def _read_and_validate(
    path: str,
    models: Mapping[str, nn.Module],
    optimizers: Mapping[str, torch.optim.Optimizer],
) -> tuple[int, dict, dict[str, dict[str, torch.Tensor]], dict[str, dict]]:
    """Reads a checkpoint and checks everything needed to load it; touches no module."""
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as exc:
        raise _Unusable(f'cannot read: {_describe(exc)}') from exc
    if not data:
        raise _Unusable('empty file')
    try:
        tensors, metadata = load_safetensors(data, 'file')
    except TensorCheckError as exc:
        raise _Unusable(str(exc)) from exc
    fmt = metadata.get('format')
    if fmt != FORMAT:
        raise _Unusable(f'format mismatch: expected {FORMAT!r}, got {fmt!r}')
    try:
        manifest = json.loads(metadata['manifest'])
    except (KeyError, ValueError) as exc:
        raise _Unusable(f'missing or malformed manifest: {exc!r}') from exc
    if not isinstance(manifest, dict):
        raise _Unusable('malformed manifest: not a JSON object')

    version = manifest.get('version')
    match = _NAME.match(os.path.basename(path))
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _Unusable(f'bad version in manifest: {version!r}')
    if match and int(match.group(1)) != version:
        raise _Unusable(f'manifest version {version} does not match the file name')
    counters = manifest.get('counters')
    if not isinstance(counters, dict):
        raise _Unusable('malformed manifest: counters are not a JSON object')

    saved_models = manifest.get('models')
    if not isinstance(saved_models, list):
        raise _Unusable('malformed manifest: models are not a JSON list')
    model_states = {}
    for name, module in models.items():
        # The manifest, not the tensors, says which models exist: a model without parameters
        # or buffers has no tensors at all.
        if name not in saved_models:
            raise _Unusable(f'no model {name!r}')
        prefix = f'model/{name}/'
        got = {k[len(prefix) :]: t for k, t in tensors.items() if k.startswith(prefix)}
        try:
            model_states[name] = check_state_dict(
                f'model {name!r}', prefix, got, module.state_dict()
            )
        except TensorCheckError as exc:
            raise _Unusable(str(exc)) from exc

    saved_optimizers = manifest.get('optimizers')
    if not isinstance(saved_optimizers, dict):
        raise _Unusable('malformed manifest: optimizers are not a JSON object')
    optim_states = {}
    for name, optimizer in optimizers.items():
        saved = saved_optimizers.get(name)
        if not isinstance(saved, dict):
            raise _Unusable(f'no state for optimizer {name!r}')
        try:
            optim_states[name] = _optimizer_state(name, saved, optimizer, tensors)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            # A hand-edited or foreign manifest with the right keys but wrong JSON types.
            raise _Unusable(f'malformed state for optimizer {name!r}: {exc!r}') from exc
    return version, counters, model_states, optim_states


def _optimizer_state(
    name: str,
    saved: dict,
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
) -> dict:
    """Rebuilds an optimizer state dict from the manifest and the stored tensors."""
    groups = [_decode(group) for group in saved['param_groups']]
    current = optimizer.param_groups
    sizes_saved = [len(group['params']) for group in groups]
    sizes_now = [len(group['params']) for group in current]
    if sizes_saved != sizes_now:
        raise _Unusable(
            f'optimizer {name!r} parameter groups differ: sizes {sizes_saved} saved, '
            f'{sizes_now} now'
        )
    shapes_now = [list(p.shape) for group in current for p in group['params']]
    for index, (was, now) in enumerate(zip(saved['param_shapes'], shapes_now)):
        if list(was) != now:
            raise _Unusable(
                f'optimizer {name!r} parameter {index}: expected shape {tuple(now)}, '
                f'got {tuple(was)}'
            )
    if len(saved['param_shapes']) != len(shapes_now):
        raise _Unusable(f'optimizer {name!r} parameter count differs')

    prefix = f'optim/{name}/'
    referenced = set()
    state: dict[int, dict[str, Any]] = {}
    for index_text, entries in saved['state'].items():
        index = int(index_text)
        if not 0 <= index < len(shapes_now):
            raise _Unusable(f'optimizer {name!r} has state for unknown parameter {index}')
        restored = {}
        for key, value in entries.items():
            if isinstance(value, dict) and _TENSOR_REF in value:
                tensor_key = value[_TENSOR_REF]
                if tensor_key not in tensors:
                    raise _Unusable(f'missing tensor {tensor_key}')
                tensor = tensors[tensor_key]
                if not all_finite(tensor):
                    raise _Unusable(f'non-finite values in {tensor_key}')
                referenced.add(tensor_key)
                restored[key] = tensor
            else:
                restored[key] = _decode(value)
        state[index] = restored
    unexpected = [k for k in tensors if k.startswith(prefix) and k not in referenced]
    if unexpected:
        raise _Unusable(f'optimizer {name!r}: {diff_text([], unexpected)} tensors')
    return {'state': state, 'param_groups': groups}


def _encode(value: Any, where: str) -> Any:
    """Turns an optimizer value into JSON, keeping tuples and small tensors recoverable."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {_TUPLE: [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _encode(v, where) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return {_INLINE_TENSOR: value.detach().cpu().tolist(), 'dtype': str(value.dtype)[6:]}
    raise ValueError(f'cannot store {where}: {type(value).__name__} is not JSON-serialisable')


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if _TUPLE in value:
            return tuple(_decode(v) for v in value[_TUPLE])
        if _INLINE_TENSOR in value:
            dtype = getattr(torch, value['dtype'])
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f'unknown dtype {value["dtype"]!r}')
            return torch.tensor(value[_INLINE_TENSOR], dtype=dtype)
        return {k: _decode(v) for k, v in value.items()}
    return value


def _fsync_directory(directory: str) -> None:
    """Makes the rename durable; best effort, as some file systems cannot fsync directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _describe(exc: OSError) -> str:
    """The system's wording of an OSError ('No space left on device'), whatever its shape."""
    if exc.strerror:
        return exc.strerror
    code = exc.errno
    if code is None and exc.args and isinstance(exc.args[0], int):
        code = exc.args[0]  # OSError(errno.ENOSPC) with no text leaves .errno unset
    return os.strerror(code) if code is not None else str(exc) or type(exc).__name__
