"""`place_count`: a soft count of the frames seen at a place, places learned from time."""

from __future__ import annotations

from pamiq.learning.presets import model_preset
from pamiq.learning.rewards import Transitions, build_reward
from pamiq.learning.rewards.place_count import POSITIVE_WITHIN, PlaceMemory, positive_pairs
from pamiq.learning.update import StreamRollouts
import pytest
import torch
import torch.nn.functional as F

PRESET = model_preset('compact')


def test_the_soft_count_pays_one_over_the_root_of_the_visits():
    memory = PlaceMemory(4, capacity=8)
    stream = torch.tensor([0])
    east, north = torch.eye(4)[:1], torch.eye(4)[1:2]
    counts = [float(memory.count_and_add(east, stream)) for _ in range(5)]
    # a frame at cosine 1 counts as sigmoid((1 - SAME) / SOFT) = 0.98 of a visit
    assert counts == pytest.approx([0, 1, 2, 3, 4], abs=0.1)
    assert float(memory.count_and_add(north, stream)) == pytest.approx(0, abs=1e-3)
    # the ring keeps the newest `capacity` frames
    for _ in range(8):
        memory.count_and_add(north, stream)
    assert float(memory.count_and_add(east, stream)) == pytest.approx(0, abs=1e-3)


def test_the_memory_is_per_stream_and_cleared_on_forget():
    memory = PlaceMemory(4)
    east = torch.eye(4)[:1]
    for _ in range(3):
        memory.count_and_add(east, torch.tensor([0]))
    assert float(memory.count_and_add(east, torch.tensor([1]))) == pytest.approx(0, abs=1e-3)
    memory.clear(torch.tensor([0]))
    assert float(memory.count_and_add(east, torch.tensor([0]))) == pytest.approx(0, abs=1e-3)


def rollouts(steps: int, streams: int, starts: torch.Tensor) -> StreamRollouts:
    zeros = torch.zeros(steps, streams)
    inputs = torch.zeros((steps, streams, *PRESET.input_shape), dtype=torch.uint8)
    return StreamRollouts(
        names=[str(s) for s in range(streams)],
        inputs=inputs,
        next_inputs=inputs,
        actions=torch.zeros(steps, streams, 3),
        previous_actions=torch.zeros(steps, streams, 3),
        logprobs=zeros,
        values=zeros,
        rewards=zeros,
        starts=starts,
        next_values=torch.zeros(streams),
    )


def test_an_updates_transitions_know_their_stream_episode_and_step():
    starts = torch.zeros(6, 2, dtype=torch.bool)
    starts[2, 1] = True  # stream 1's o_3 begins an episode: its t = 2 is left out
    batch = rollouts(6, 2, starts).transitions()
    assert len(batch) == 11
    assert batch.times.tolist() == [0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 5]
    stream_0 = batch.segments[::2][:3].tolist() + batch.segments[[4, 5, 7, 9]].tolist()
    assert len(set(stream_0)) == 1
    stream_1 = batch.segments[[1, 3, 6, 8, 10]].tolist()
    assert stream_1[0] == stream_1[1] != stream_1[2] == stream_1[3] == stream_1[4]
    assert not set(stream_1) & set(stream_0)


def test_positive_pairs_stay_within_an_episode_and_a_few_steps():
    starts = torch.zeros(32, 4, dtype=torch.bool)
    starts[10, 2] = True
    batch = rollouts(32, 4, starts).transitions()
    anchors, partners = positive_pairs(batch.segments, batch.times, torch.Generator())
    assert len(anchors) > len(batch) // 2
    assert torch.equal(batch.segments[anchors], batch.segments[partners])
    apart = (batch.times[anchors] - batch.times[partners]).abs()
    assert int(apart.min()) >= 1 and int(apart.max()) <= POSITIVE_WITHIN


def test_training_pulls_one_episodes_frames_together_and_pushes_others_apart():
    """Two streams, each showing its own kind of scene: after training, frames of one stream
    are closer to each other than to the other stream's."""
    torch.manual_seed(0)
    reward = build_reward('place_count', PRESET, 'continuous')
    generator = torch.Generator().manual_seed(0)
    steps = 32

    def scene(kind: int) -> torch.Tensor:
        noise = torch.randint(0, 40, (steps, *PRESET.input_shape), generator=generator)
        base = torch.zeros(PRESET.input_shape)
        base[..., :21] = 200 if kind else 0
        base[..., 21:] = 0 if kind else 200
        return (base + noise).clamp(0, 255).to(torch.uint8)

    @torch.no_grad()
    def similarity() -> tuple[float, float]:
        model = reward.models['place_count']
        a = model(PRESET.inputs(scene(0)[:8]))
        b = model(PRESET.inputs(scene(1)[:8]))
        within = (a @ a.T).mean()
        across = (a @ b.T).mean()
        return float(within), float(across)

    for _ in range(40):
        batch = rollouts(steps, 2, torch.zeros(steps, 2, dtype=torch.bool))
        batch.next_inputs = torch.stack([scene(0), scene(1)], 1)
        losses = reward.train(batch.transitions(), generator)
    within, across = similarity()
    assert within > across + 0.5, (within, across)
    assert losses['place_count/loss'] == pytest.approx(losses['place_count/loss'])  # finite


def test_training_without_time_is_refused():
    reward = build_reward('place_count', PRESET, 'continuous')
    inputs = torch.zeros((4, *PRESET.input_shape), dtype=torch.uint8)
    batch = Transitions(inputs, torch.zeros(4, 3), inputs, torch.zeros(4, 3))
    with pytest.raises(ValueError, match='segments and times'):
        reward.train(batch, torch.Generator())


def test_the_features_are_unit_vectors():
    reward = build_reward('place_count', PRESET, 'continuous')
    inputs = torch.randint(0, 256, (3, *PRESET.input_shape), dtype=torch.uint8)
    features = reward.models['place_count'](PRESET.inputs(inputs))
    assert torch.allclose(features.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert F.normalize(features, dim=-1).shape == (3, 64)
