"""Weights blobs: bit-exact round trip and a precise rejection for every kind of bad blob."""

from __future__ import annotations

import array
import json
import random
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamiq.storage.weights import (
    DEFAULT_MAX_BYTES,
    FORMAT,
    WeightsError,
    load_into,
    pack_weights,
    unpack_weights,
)
import pytest
import safetensors.torch
import torch
from torch import nn


def make_models(seed: int = 0, hidden: int = 3) -> dict[str, nn.Module]:
    torch.manual_seed(seed)
    policy = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))
    # BatchNorm brings buffers, among them the int64 num_batches_tracked.
    encoder = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    head = nn.Linear(2, 2).half()
    return {'policy': policy, 'encoder': encoder, 'head': head}


def trained_models() -> dict[str, nn.Module]:
    models = make_models(seed=1)
    models['encoder'].train()
    with torch.no_grad():
        for _ in range(3):  # moves running stats and num_batches_tracked off their defaults
            models['encoder'](torch.randn(8, 4))
    return models


def snapshot(models: dict[str, nn.Module]) -> dict[str, dict[str, torch.Tensor]]:
    return {n: {k: t.clone() for k, t in m.state_dict().items()} for n, m in models.items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].keys() == b[name].keys(), name
        for key in a[name]:
            assert a[name][key].dtype == b[name][key].dtype, (name, key)
            assert torch.equal(a[name][key], b[name][key]), (name, key)


def tensors_of(blob: bytes) -> dict[str, torch.Tensor]:
    return safetensors.torch.load(blob)


def metadata_of(blob: bytes) -> dict[str, str]:
    (n,) = struct.unpack('<Q', blob[:8])
    return json.loads(blob[8 : 8 + n])['__metadata__']


def craft(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None) -> bytes:
    return safetensors.torch.save(tensors, metadata=metadata)


@pytest.fixture
def source() -> dict[str, nn.Module]:
    return trained_models()


@pytest.fixture
def blob(source) -> bytes:
    return pack_weights(source, 7)


def test_round_trip_is_bit_exact(source, blob):
    target = make_models(seed=2)
    version, state_dicts = unpack_weights(blob, target)
    assert version == 7
    assert state_dicts['encoder']['1.num_batches_tracked'].dtype == torch.int64
    assert int(state_dicts['encoder']['1.num_batches_tracked']) == 3
    assert state_dicts['head']['weight'].dtype == torch.float16
    assert_same_state(state_dicts, snapshot(source))

    load_into(target, state_dicts)
    assert_same_state(snapshot(target), snapshot(source))


def test_blob_layout(blob, source):
    assert metadata_of(blob) == {
        'format': FORMAT,
        'version': '7',
        'models': 'policy,encoder,head',
    }
    assert set(tensors_of(blob)) == {f'{n}/{k}' for n, m in source.items() for k in m.state_dict()}


def test_pack_is_deterministic(source, blob):
    # The safetensors writer keeps metadata in a hash map with a random order per call.
    assert all(pack_weights(source, 7) == blob for _ in range(20))
    assert pack_weights(trained_models(), 7) == blob


@pytest.mark.parametrize('version', [0, 1, 123456, 2**40])
def test_version_round_trip(source, version):
    assert unpack_weights(pack_weights(source, version), make_models())[0] == version


@pytest.mark.parametrize('wrap', [bytearray, memoryview, lambda b: array.array('B', b)])
def test_accepts_buffer_types(blob, source, wrap):
    version, state_dicts = unpack_weights(wrap(blob), make_models())
    assert version == 7
    assert_same_state(state_dicts, snapshot(source))


def test_a_writable_blob_is_read_in_place(blob, source):
    # The agent validates 29 MB blobs beside acting: a copy would hold the GIL for tens of ms.
    data = array.array('B', blob)
    start, size = data.buffer_info()
    _, state_dicts = unpack_weights(data, make_models())
    pointers = [t.data_ptr() for sd in state_dicts.values() for t in sd.values() if t.numel()]
    assert pointers and all(start <= p < start + size for p in pointers)
    assert_same_state(state_dicts, snapshot(source))


def test_a_read_only_blob_leaves_its_bytes_untouched(blob):
    _, state_dicts = unpack_weights(blob, make_models())
    copy = bytes(blob)
    for state in state_dicts.values():
        for tensor in state.values():
            tensor.zero_()
    assert blob == copy


def test_pack_handles_tied_and_non_contiguous_tensors():
    shared = nn.Linear(3, 3)
    tied = nn.Sequential(shared, shared)  # both keys point at the same parameters
    odd = nn.Linear(3, 3)
    odd.weight = nn.Parameter(torch.randn(3, 3).t())  # non-contiguous
    models = {'tied': tied, 'odd': odd}
    _, state_dicts = unpack_weights(pack_weights(models, 0), models)
    assert_same_state(state_dicts, snapshot(models))


@pytest.mark.parametrize('name', ['', 'a,b', 'a/b'])
def test_pack_rejects_unrepresentable_names(name):
    with pytest.raises(ValueError, match='invalid model name'):
        pack_weights({name: nn.Linear(1, 1)}, 0)


def test_pack_rejects_negative_version(source):
    with pytest.raises(ValueError, match='non-negative'):
        pack_weights(source, -1)


def _without(blob: bytes, key: str) -> dict[str, torch.Tensor]:
    tensors = tensors_of(blob)
    del tensors[key]
    return tensors


def _replaced(blob: bytes, key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    tensors = tensors_of(blob)
    tensors[key] = value
    return tensors


def _poisoned(blob: bytes, key: str, value: float) -> dict[str, torch.Tensor]:
    tensors = tensors_of(blob)
    tensors[key] = tensors[key].clone()
    tensors[key].view(-1)[1] = value
    return tensors


META = {'format': FORMAT, 'version': '7', 'models': 'policy,encoder,head'}

# name -> (make a bad blob from a valid one, words the message must contain)
REJECTIONS = {
    'empty': (lambda b: b'', ['empty blob']),
    'random bytes': (lambda b: random.Random(3).randbytes(600), ['not a safetensors blob']),
    'no metadata': (lambda b: craft(tensors_of(b), None), ['missing metadata']),
    'no format': (
        lambda b: craft(tensors_of(b), {k: v for k, v in META.items() if k != 'format'}),
        ["missing 'format'"],
    ),
    'wrong format': (
        lambda b: craft(tensors_of(b), {**META, 'format': 'other-weights/9'}),
        ['format mismatch', FORMAT, 'other-weights/9'],
    ),
    'missing version': (
        lambda b: craft(tensors_of(b), {k: v for k, v in META.items() if k != 'version'}),
        ["missing 'version'"],
    ),
    'negative version': (
        lambda b: craft(tensors_of(b), {**META, 'version': '-3'}),
        ['negative version: -3'],
    ),
    'non-integer version': (
        lambda b: craft(tensors_of(b), {**META, 'version': '1.5'}),
        ['version is not an integer', '1.5'],
    ),
    'missing model': (
        lambda b: pack_weights({k: v for k, v in trained_models().items() if k != 'head'}, 7),
        ['model set mismatch', 'missing', "'head'"],
    ),
    'extra model': (
        lambda b: pack_weights({**trained_models(), 'critic': nn.Linear(2, 1)}, 7),
        ['model set mismatch', 'unexpected', "'critic'"],
    ),
    'stray tensor': (
        lambda b: craft(_replaced(b, 'critic/weight', torch.zeros(1)), META),
        ["'critic/weight'", 'no model'],
    ),
    'missing key': (
        lambda b: craft(_without(b, 'policy/2.bias'), META),
        ['policy', 'keys mismatch', 'missing', "'2.bias'"],
    ),
    'extra key': (
        lambda b: craft(_replaced(b, 'policy/9.weight', torch.zeros(2)), META),
        ['policy', 'keys mismatch', 'unexpected', "'9.weight'"],
    ),
    'wrong shape': (
        lambda b: pack_weights(make_models(hidden=5), 7),
        ['shape mismatch for policy/0.weight', 'expected (3, 4)', 'got (5, 4)'],
    ),
    'wrong dtype': (
        lambda b: craft(_replaced(b, 'encoder/0.bias', torch.zeros(4, dtype=torch.float64)), META),
        ['dtype mismatch for encoder/0.bias', 'expected torch.float32', 'got torch.float64'],
    ),
    'NaN': (
        lambda b: craft(_poisoned(b, 'policy/0.weight', float('nan')), META),
        ['non-finite values in policy/0.weight'],
    ),
    'inf': (
        lambda b: craft(_poisoned(b, 'encoder/1.running_var', float('inf')), META),
        ['non-finite values in encoder/1.running_var'],
    ),
    '-inf in float16': (
        lambda b: craft(_poisoned(b, 'head/weight', float('-inf')), META),
        ['non-finite values in head/weight'],
    ),
}


@pytest.mark.parametrize('case', list(REJECTIONS))
def test_rejections_name_the_problem(blob, case):
    make_bad, words = REJECTIONS[case]
    expected = make_models(seed=4)
    before = snapshot(expected)
    with pytest.raises(WeightsError) as info:
        unpack_weights(make_bad(blob), expected)
    for word in words:
        assert word in str(info.value), (case, str(info.value))
    assert_same_state(snapshot(expected), before)  # a rejected blob changes nothing


def test_oversized_is_rejected_before_parsing(blob):
    with pytest.raises(
        WeightsError, match=rf'oversized: {len(blob)} bytes > limit {len(blob) - 1}'
    ):
        unpack_weights(blob, make_models(), max_bytes=len(blob) - 1)
    assert unpack_weights(blob, make_models(), max_bytes=len(blob))[0] == 7
    assert DEFAULT_MAX_BYTES == 256 * 1024 * 1024


def test_truncated_blob_is_rejected(blob):
    (header_len,) = struct.unpack('<Q', blob[:8])
    cuts = [1, 4, 7, 8, 9, 8 + header_len // 2, 8 + header_len - 1, 8 + header_len]
    cuts += [8 + header_len + 5, (len(blob) + 8 + header_len) // 2, len(blob) - 1]
    expected = make_models()
    before = snapshot(expected)
    for cut in cuts:
        with pytest.raises(WeightsError, match='not a safetensors blob'):
            unpack_weights(blob[:cut], expected)
    assert_same_state(snapshot(expected), before)


def test_not_bytes_like_is_rejected():
    with pytest.raises(WeightsError, match='not a bytes-like blob'):
        unpack_weights([1, 2, 3], make_models())  # type: ignore[arg-type]


def test_load_into_checks_model_names(blob):
    _, state_dicts = unpack_weights(blob, make_models())
    target = make_models(seed=5)
    del target['head']
    before = snapshot(target)
    with pytest.raises(WeightsError, match="unexpected \\['head'\\]"):
        load_into(target, state_dicts)
    assert_same_state(snapshot(target), before)


@st.composite
def damage(draw, size: int, header_end: int):
    # Half the flips land in the header, where damage is most varied (lengths, offsets, JSON).
    position = st.one_of(st.integers(0, header_end - 1), st.integers(0, size - 1))
    flips = draw(st.lists(st.tuples(position, st.integers(1, 255)), min_size=0, max_size=4))
    cut = draw(st.one_of(st.none(), st.integers(0, size)))
    return flips, cut


_VALID = pack_weights(trained_models(), 7)
_HEADER_END = 8 + struct.unpack('<Q', _VALID[:8])[0]
_REFERENCE = unpack_weights(_VALID, make_models())[1]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damage(len(_VALID), _HEADER_END))
def test_damaged_blob_gives_weights_error_or_valid_weights(change):
    flips, cut = change
    data = bytearray(_VALID)
    for position, xor in flips:
        data[position] ^= xor
    if cut is not None:
        data = data[:cut]
    expected = make_models()
    try:
        version, state_dicts = unpack_weights(bytes(data), expected)
    except WeightsError:
        return
    # Accepted despite the damage (e.g. a flipped mantissa bit): what was accepted is what the
    # models expect, finite, and loadable; damage confined to the tensors keeps the version.
    assert isinstance(version, int) and version >= 0
    for model, state in state_dicts.items():
        for key, tensor in state.items():
            reference = _REFERENCE[model][key]
            assert (tensor.shape, tensor.dtype) == (reference.shape, reference.dtype), key
            assert torch.isfinite(tensor).all(), key
    if cut is None and all(position >= _HEADER_END for position, _ in flips):
        assert version == 7
    load_into(expected, state_dicts)
