"""Checkpoints: exact resume, rotation, atomic writes and fallback past damaged files."""

from __future__ import annotations

import errno
import json
import os
import struct

from pamiq.storage.checkpoint import (
    FORMAT,
    CheckpointError,
    checkpoint_path,
    list_checkpoints,
    load_latest_checkpoint,
    save_checkpoint,
)
import pytest
import safetensors.torch
import torch
from torch import nn

COUNTERS = {'steps': 1234, 'reward_mean': 0.25, 'encoder': 'mlp'}


def make_models(seed: int = 0, hidden: int = 3) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    return {
        'policy': nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2)),
        'encoder': nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)),
    }


def make_optimizers(models: dict[str, nn.Module]) -> dict[str, torch.optim.Optimizer]:
    return {name: torch.optim.Adam(m.parameters(), lr=1e-2) for name, m in models.items()}


def train(models, optimizers, steps: int = 2, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(8, 4, generator=generator)
        loss = models['policy'](x).square().mean() + models['encoder'](x).square().mean()
        for optimizer in optimizers.values():
            optimizer.zero_grad()
        loss.backward()
        for optimizer in optimizers.values():
            optimizer.step()


def trained(seed: int = 0, hidden: int = 3):
    models = make_models(seed, hidden)
    optimizers = make_optimizers(models)
    train(models, optimizers, seed=seed)
    return models, optimizers


def snapshot(models: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {n: {k: t.clone() for k, t in m.state_dict().items()} for n, m in models.items()}


def assert_same_models(a: dict[str, nn.Module], b: dict[str, nn.Module]) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert sa.keys() == sb.keys()
    for name in sa:
        assert sa[name].keys() == sb[name].keys()
        for key in sa[name]:
            assert sa[name][key].dtype == sb[name][key].dtype, (name, key)
            assert torch.equal(sa[name][key], sb[name][key]), (name, key)


def assert_same_optimizers(a, b) -> None:
    assert a.keys() == b.keys()
    for name in a:
        sa, sb = a[name].state_dict(), b[name].state_dict()
        assert sa['param_groups'] == sb['param_groups'], name
        assert sa['state'].keys() == sb['state'].keys()
        for index in sa['state']:
            ea, eb = sa['state'][index], sb['state'][index]
            assert ea.keys() == eb.keys() == {'step', 'exp_avg', 'exp_avg_sq'}
            for key in ea:
                assert ea[key].dtype == eb[key].dtype, (name, index, key)
                assert torch.equal(ea[key], eb[key]), (name, index, key)


class Log(list):
    def __call__(self, line: str) -> None:
        self.append(line)


def save(run_dir, version, models=None, optimizers=None, keep=5) -> str:
    if models is None:
        models, optimizers = trained(seed=version)
    return save_checkpoint(str(run_dir), version, models, optimizers, COUNTERS, keep=keep)


def header(path: str) -> tuple[int, dict]:
    with open(path, 'rb') as f:
        data = f.read()
    (n,) = struct.unpack('<Q', data[:8])
    return n, json.loads(data[8 : 8 + n])


def overwrite(path: str, offset: int, data: bytes) -> None:
    with open(path, 'r+b') as f:
        f.seek(offset)
        f.write(data)


def poison(path: str, key: str) -> None:
    """Writes a float32 NaN over the first element of a stored tensor, as bit rot would."""
    n, entries = header(path)
    begin = entries[key]['data_offsets'][0]
    overwrite(path, 8 + n + begin, struct.pack('<f', float('nan')))


def test_save_then_resume_restores_everything(tmp_path):
    models, optimizers = trained()
    path = save(tmp_path, 42, models, optimizers)
    assert path == str(tmp_path / 'checkpoints' / 'checkpoint-00000042.safetensors')
    assert path == checkpoint_path(str(tmp_path), 42)

    fresh = make_models(seed=9)
    fresh_optimizers = make_optimizers(fresh)
    log = Log()
    resumed = load_latest_checkpoint(str(tmp_path), fresh, fresh_optimizers, log)
    assert resumed == {'version': 42, 'counters': COUNTERS, 'path': path}
    assert log == []
    assert_same_models(fresh, models)
    assert_same_optimizers(fresh_optimizers, optimizers)
    assert isinstance(fresh_optimizers['policy'].param_groups[0]['betas'], tuple)

    # The resumed optimizers continue exactly like the originals.
    train(models, optimizers, steps=1, seed=5)
    train(fresh, fresh_optimizers, steps=1, seed=5)
    assert_same_models(fresh, models)


def test_file_layout(tmp_path):
    models, optimizers = trained()
    path = save(tmp_path, 3, models, optimizers)
    _, entries = header(path)
    metadata = entries.pop('__metadata__')
    assert metadata['format'] == FORMAT
    manifest = json.loads(metadata['manifest'])
    assert manifest['version'] == 3
    assert manifest['counters'] == COUNTERS
    assert 'model/policy/0.weight' in entries
    assert 'model/encoder/1.num_batches_tracked' in entries
    assert {'optim/policy/0/step', 'optim/policy/0/exp_avg', 'optim/policy/3/exp_avg_sq'} <= set(
        entries
    )
    assert manifest['optimizers']['policy']['param_groups'][0]['lr'] == 1e-2
    # Only safetensors + JSON: the file loads with the plain safetensors reader.
    assert set(safetensors.torch.load_file(path)) == set(entries)


def test_models_only_resume_ignores_optimizers_and_other_models(tmp_path):
    models, optimizers = trained()
    save(tmp_path, 1, models, optimizers)
    policy_only = {'policy': make_models(seed=7)['policy']}
    resumed = load_latest_checkpoint(str(tmp_path), policy_only, None, Log())
    assert resumed is not None and resumed['version'] == 1
    assert_same_models(policy_only, {'policy': models['policy']})


def test_model_without_tensors_round_trips(tmp_path):
    models = {'act': nn.ReLU(), 'policy': nn.Linear(2, 2)}
    save_checkpoint(str(tmp_path), 0, models, {}, {})
    fresh = {'act': nn.ReLU(), 'policy': nn.Linear(2, 2)}
    assert load_latest_checkpoint(str(tmp_path), fresh, {}, Log())['version'] == 0
    assert_same_models(fresh, models)


def test_keep_only_the_newest(tmp_path):
    models, optimizers = trained()
    (tmp_path / 'checkpoints').mkdir()
    foreign = ['notes.txt', 'checkpoint-x.safetensors', 'checkpoint-1.safetensors']
    for name in foreign:
        (tmp_path / 'checkpoints' / name).write_text('not mine')
    for version in range(1, 6):
        save(tmp_path, version, models, optimizers, keep=3)
    assert list_checkpoints(str(tmp_path)) == [
        checkpoint_path(str(tmp_path), v) for v in (5, 4, 3)
    ]
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == sorted(
        foreign + [f'checkpoint-0000000{v}.safetensors' for v in (3, 4, 5)]
    )


def test_list_orders_by_version_not_name(tmp_path):
    models, optimizers = trained()
    for version in (9, 100_000_000, 10):
        save(tmp_path, version, models, optimizers)
    assert [os.path.basename(p) for p in list_checkpoints(str(tmp_path))] == [
        'checkpoint-100000000.safetensors',
        'checkpoint-00000010.safetensors',
        'checkpoint-00000009.safetensors',
    ]
    assert list_checkpoints(str(tmp_path / 'missing')) == []


def test_no_temp_file_after_save(tmp_path):
    save(tmp_path, 1)
    save(tmp_path, 2)
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == [
        'checkpoint-00000001.safetensors',
        'checkpoint-00000002.safetensors',
    ]


def _damage_truncate(path: str) -> str:
    os.truncate(path, os.path.getsize(path) // 2)
    return 'not a safetensors file'


def _damage_header(path: str) -> str:
    overwrite(path, 8, b'#' * 32)
    return 'not a safetensors file'


def _damage_model_tensor(path: str) -> str:
    poison(path, 'model/policy/0.weight')
    return 'non-finite values in model/policy/0.weight'


def _damage_optimizer_tensor(path: str) -> str:
    poison(path, 'optim/encoder/0/exp_avg')
    return 'non-finite values in optim/encoder/0/exp_avg'


def _damage_empty(path: str) -> str:
    os.truncate(path, 0)
    return 'empty file'


@pytest.mark.parametrize(
    'damage',
    [
        _damage_truncate,
        _damage_header,
        _damage_model_tensor,
        _damage_optimizer_tensor,
        _damage_empty,
    ],
)
def test_damaged_newest_falls_back_to_previous(tmp_path, damage):
    previous_models, previous_optimizers = trained(seed=1)
    save(tmp_path, 1, previous_models, previous_optimizers)
    newest = save(tmp_path, 2)
    reason = damage(newest)

    fresh = make_models(seed=9)
    fresh_optimizers = make_optimizers(fresh)
    log = Log()
    resumed = load_latest_checkpoint(str(tmp_path), fresh, fresh_optimizers, log)
    assert resumed is not None and resumed['version'] == 1
    assert len(log) == 1
    assert log[0].startswith(f'checkpoint {newest} is unusable (')
    assert reason in log[0]
    assert log[0].endswith('; trying the previous one')
    assert_same_models(fresh, previous_models)
    assert_same_optimizers(fresh_optimizers, previous_optimizers)


def test_none_usable_returns_none_and_touches_nothing(tmp_path):
    first, second = save(tmp_path, 1), save(tmp_path, 2)
    _damage_truncate(first)
    _damage_model_tensor(second)
    fresh = make_models(seed=9)
    fresh_optimizers = make_optimizers(fresh)
    log = Log()
    assert load_latest_checkpoint(str(tmp_path), fresh, fresh_optimizers, log) is None
    assert len(log) == 3
    assert second in log[0] and 'non-finite values' in log[0]
    assert first in log[1] and 'not a safetensors file' in log[1]
    assert 'no usable checkpoint' in log[2]
    assert_same_models(fresh, make_models(seed=9))  # still the untouched initial weights
    assert all(not o.state for o in fresh_optimizers.values())


def test_no_checkpoints_returns_none(tmp_path):
    log = Log()
    assert load_latest_checkpoint(str(tmp_path), make_models(), None, log) is None
    assert log == []


def test_other_architecture_is_rejected_naming_the_key(tmp_path):
    save(tmp_path, 1, *trained(hidden=5))
    fresh = make_models(hidden=3)
    log = Log()
    assert load_latest_checkpoint(str(tmp_path), fresh, make_optimizers(fresh), log) is None
    assert 'shape mismatch for model/policy/0.weight: expected (3, 4), got (5, 4)' in log[0]


def test_missing_key_and_missing_optimizer_are_rejected(tmp_path):
    models, _ = trained()
    models['policy'].add_module('3', nn.Linear(2, 2))
    save_checkpoint(str(tmp_path), 1, models, {}, COUNTERS)
    fresh = make_models()
    log = Log()
    assert load_latest_checkpoint(str(tmp_path), fresh, None, log) is None
    assert "model 'policy' keys mismatch: unexpected ['3.bias', '3.weight']" in log[0]

    save_checkpoint(str(tmp_path), 2, make_models(), {}, COUNTERS)
    log.clear()
    resumed = load_latest_checkpoint(str(tmp_path), fresh, make_optimizers(fresh), log)
    assert resumed is None
    assert "no state for optimizer 'policy'" in log[0]


def test_reordered_optimizer_parameters_are_rejected(tmp_path):
    models, optimizers = trained()
    save(tmp_path, 1, models, optimizers)
    fresh = make_models()
    reordered = {
        'policy': torch.optim.Adam(list(fresh['policy'].parameters())[::-1]),
        'encoder': torch.optim.Adam(fresh['encoder'].parameters()),
    }
    log = Log()
    assert load_latest_checkpoint(str(tmp_path), fresh, reordered, log) is None
    assert "optimizer 'policy' parameter 0" in log[0]


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize('failing', ['write', 'fsync', 'replace'])
def test_disk_full_keeps_previous_checkpoints(tmp_path, monkeypatch, failing):
    first, second = save(tmp_path, 1), save(tmp_path, 2)
    contents = {p: open(p, 'rb').read() for p in (first, second)}
    models, optimizers = trained()
    monkeypatch.setattr(os, failing, _enospc)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(str(tmp_path), 3, models, optimizers, COUNTERS, keep=1)
    monkeypatch.undo()

    message = str(info.value)
    assert 'No space left on device' in message
    assert message.startswith(f'cannot write checkpoint to {checkpoint_path(str(tmp_path), 3)}')
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    # Nothing pruned, nothing half-written, no temp file.
    assert sorted(os.listdir(tmp_path / 'checkpoints')) == sorted(
        os.path.basename(p) for p in contents
    )
    for path, data in contents.items():
        with open(path, 'rb') as f:
            assert f.read() == data
    assert load_latest_checkpoint(str(tmp_path), make_models(), None, Log())['version'] == 2


def test_errno_only_oserror_still_reads_well(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC)

    monkeypatch.setattr(os, 'write', fail)
    with pytest.raises(CheckpointError, match='No space left on device'):
        save(tmp_path, 1)


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def short_write(fd, data):
        calls.append(1)
        return real_write(fd, bytes(data[:1000]))

    models, optimizers = trained()
    monkeypatch.setattr(os, 'write', short_write)
    path = save(tmp_path, 1, models, optimizers)
    monkeypatch.undo()
    assert len(calls) > 1
    fresh = make_models(seed=3)
    assert load_latest_checkpoint(str(tmp_path), fresh, None, Log())['path'] == path
    assert_same_models(fresh, models)


@pytest.mark.parametrize(
    'kwargs, match',
    [
        ({'version': -1}, 'non-negative'),
        ({'keep': 0}, 'keep must be at least 1'),
        ({'models': {'a/b': nn.Linear(1, 1)}}, 'invalid model name'),
        ({'counters': {'bad': [1, 2]}}, "counter 'bad'"),
    ],
)
def test_save_rejects_bad_arguments(tmp_path, kwargs, match):
    arguments = {
        'run_dir': str(tmp_path),
        'version': 1,
        'models': make_models(),
        'optimizers': {},
        'counters': {},
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        save_checkpoint(**arguments)
    assert not (tmp_path / 'checkpoints').exists() or not os.listdir(tmp_path / 'checkpoints')
