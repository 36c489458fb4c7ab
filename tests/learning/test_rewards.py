"""Each intrinsic reward rises on a novel input and falls as it becomes familiar; the protocol's
rules (a transition into an episode's first frame earns 0; memory is per stream) hold for all."""

from __future__ import annotations

import copy

from pamiq.learning.presets import model_preset
from pamiq.learning.rewards import REGISTRY, Transitions, build_reward
from pamiq.learning.rewards.e3b import RIDGE, EllipticalMemory
from pamiq.vocabulary import REWARDS
import pytest
import torch

PRESET = model_preset('compact')


def frames(seed: int, count: int) -> torch.Tensor:
    """`count` distinct random stacked inputs (uint8), reproducible by seed."""
    generator = torch.Generator().manual_seed(seed)
    shape = (count, *PRESET.input_shape)
    return torch.randint(0, 256, shape, generator=generator, dtype=torch.uint8)


def scenes(seed: int, count: int, family: str) -> torch.Tensor:
    """Structured stacked inputs of one family: 'dark_blocks' (coarse blocks, values 0-100) or
    'bright_stripes' (vertical stripes, 150-255). A family is what becomes familiar; the other
    is novel."""
    generator = torch.Generator().manual_seed(seed)
    frames_, size = PRESET.input_shape[0], PRESET.input_shape[1]
    if family == 'dark_blocks':
        blocks = torch.randint(0, 100, (count, frames_, 6, 6), generator=generator)
        image = blocks.repeat_interleave(7, -1).repeat_interleave(7, -2)
    else:
        stripes = torch.randint(150, 256, (count, frames_, 1, 14), generator=generator)
        image = stripes.repeat_interleave(3, -1).expand(-1, -1, size, -1)
    return image.to(torch.uint8).contiguous()


def transitions(inputs: torch.Tensor, next_inputs: torch.Tensor, actions=None) -> Transitions:
    count = len(inputs)
    if actions is None:
        actions = torch.zeros((count, 5), dtype=torch.long)
    positions = torch.zeros((count, 2), dtype=torch.float64)
    return Transitions(inputs, actions, next_inputs, torch.zeros_like(actions), positions)


def act(reward, batch: Transitions, streams=None, starts=None) -> torch.Tensor:
    count = len(batch)
    streams = torch.arange(count) if streams is None else streams
    starts = torch.zeros(count, dtype=torch.bool) if starts is None else starts
    return reward.act(batch, streams, starts)


def test_the_registry_builds_every_named_reward():
    assert tuple(REGISTRY) == REWARDS
    for name in REWARDS:
        assert build_reward(name, PRESET, 'discrete').name == name
    with pytest.raises(ValueError, match='reward must be one of'):
        build_reward('curious', PRESET, 'discrete')


@pytest.mark.parametrize('name', ['rnd', 'prediction_error'])
def test_a_lifelong_reward_falls_on_what_it_trains_on_and_stays_high_on_the_new(name):
    torch.manual_seed(0)
    reward = build_reward(name, PRESET, 'discrete')
    familiar = transitions(scenes(1, 64, 'dark_blocks'), scenes(2, 64, 'dark_blocks'))
    novel = transitions(scenes(3, 64, 'bright_stripes'), scenes(4, 64, 'bright_stripes'))
    before = act(reward, familiar).mean()
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        reward.train(familiar, generator)
    after = act(reward, familiar).mean()
    assert after < 0.5 * before, (before, after)
    assert act(reward, novel).mean() > 1.5 * after


@pytest.mark.parametrize('name', ['e3b', 'e3b_rnd', 'place_count'])
def test_an_episodic_bonus_falls_on_a_revisited_frame_and_returns_for_a_new_one(name):
    torch.manual_seed(0)
    reward = build_reward(name, PRESET, 'discrete')
    one = scenes(5, 1, 'dark_blocks')
    seen = [float(act(reward, transitions(one, one))[0]) for _ in range(5)]
    assert seen == sorted(seen, reverse=True) and seen[-1] < 0.8 * seen[0], seen
    if name == 'e3b':  # a unit-length u seen n times before pays u^T (lambda I + n u u^T)^-1 u
        assert seen == pytest.approx([1 / (RIDGE + n) for n in range(5)], rel=0.01)
    twin = copy.deepcopy(reward)  # the same memory, to compare a sixth visit with a new frame
    sixth = float(act(twin, transitions(one, one))[0])
    new = float(act(reward, transitions(one, scenes(6, 1, 'bright_stripes')))[0])
    # An untrained encoder maps unlike frames to nearly parallel features (cosine ~0.99), so
    # the margin is small before the encoder learns; it is still a margin.
    assert new > sixth
    # a new episode forgets: its first frame earns 0 and enters the memory; the next visit
    # pays what the second visit of the first episode did
    start = act(reward, transitions(one, one), starts=torch.tensor([True]))
    assert float(start[0]) == 0.0
    again = float(act(reward, transitions(one, one))[0])
    # (e3b_rnd's lifelong factor moves a little with its running statistics)
    assert again == pytest.approx(seen[1], rel=0.05 if name == 'e3b_rnd' else 1e-4)


def test_episodic_memory_is_per_stream():
    torch.manual_seed(0)
    reward = build_reward('e3b', PRESET, 'discrete')
    one = frames(8, 1)
    for _ in range(5):
        act(reward, transitions(one, one), streams=torch.tensor([0]))
    tired = float(act(reward, transitions(one, one), streams=torch.tensor([0]))[0])
    fresh = float(act(reward, transitions(one, one), streams=torch.tensor([1]))[0])
    assert tired == pytest.approx(1 / (RIDGE + 5), rel=0.01)
    assert fresh == pytest.approx(1 / RIDGE, rel=0.01)


def test_the_elliptical_bonus_is_a_count_along_each_direction():
    memory = EllipticalMemory(4, ridge=RIDGE)
    stream = torch.tensor([0])
    east, north = torch.eye(4)[:1], torch.eye(4)[1:2]
    paid = [float(memory.bonus_and_add(east, stream)) for _ in range(50)]
    assert paid == pytest.approx([1 / (RIDGE + n) for n in range(50)], rel=1e-5)
    assert float(memory.bonus_and_add(north, stream)) == pytest.approx(1 / RIDGE, rel=1e-5)
    halfway = (east + north) / 2**0.5  # half along the well-known east, half along north
    assert float(memory.bonus_and_add(halfway, stream)) == pytest.approx(
        0.5 / (RIDGE + 50) + 0.5 / (RIDGE + 1), rel=1e-5
    )


def test_a_horizon_clears_the_episodic_memory_where_there_are_no_episodes():
    torch.manual_seed(0)
    reward = build_reward('e3b', PRESET, 'discrete', horizon=4)
    one = frames(9, 1)
    bonuses = [float(act(reward, transitions(one, one))[0]) for _ in range(6)]
    assert bonuses[4] == pytest.approx(bonuses[0])  # the 5th step starts a fresh window
    assert bonuses[:5] == pytest.approx([1 / (RIDGE + n) for n in (0, 1, 2, 3, 0)], rel=0.01)


def test_the_oracles_count_cells_within_the_episode_or_over_the_run():
    batch = transitions(frames(10, 1), frames(10, 1))
    batch.positions[:] = torch.tensor([[100.0, 200.0]], dtype=torch.float64)
    # after the start (which counts the cell and earns 0) the episodic count is at 2, the
    # lifelong one at 4
    for name, after_start in (('oracle_count', 2**-0.5), ('oracle_lifelong_count', 4**-0.5)):
        reward = build_reward(name, PRESET, 'discrete')
        assert [float(act(reward, batch)[0]) for _ in range(2)] == pytest.approx([1, 2**-0.5])
        assert float(act(reward, batch, starts=torch.tensor([True]))[0]) == 0.0
        assert float(act(reward, batch)[0]) == pytest.approx(after_start)


def test_zero_is_zero():
    reward = build_reward('zero', PRESET, 'discrete')
    assert torch.equal(act(reward, transitions(frames(11, 3), frames(12, 3))), torch.zeros(3))


@pytest.mark.parametrize('name', ['e3b', 'e3b_rnd', 'place_count', 'oracle_count'])
def test_a_rewards_state_round_trips(name):
    torch.manual_seed(0)
    reward = build_reward(name, PRESET, 'discrete')
    batch = transitions(frames(13, 2), frames(14, 2))
    act(reward, batch)
    tensors, values = reward.state_dict()
    copy = build_reward(name, PRESET, 'discrete')
    for key, model in reward.models.items():
        copy.models[key].load_state_dict(model.state_dict())
    copy.load_state_dict(tensors, values)
    assert torch.equal(act(reward, batch), act(copy, batch))
