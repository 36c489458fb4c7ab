"""The trainer's core on real Doom frames: data assembly, rounds, and whether curiosity learns."""

from __future__ import annotations

from doom_frames import record
import numpy as np
from pamiq.learning.curiosity import curiosity_reward
from pamiq.learning.learner import Learner, LearnerConfig, Step
from pamiq.learning.models import action_features
from pamiq.learning.ppo import PPOConfig
from pamiq.learning.vision import observations_to_tensor
import pytest
import torch


def small_config(**overrides) -> LearnerConfig:
    values = dict(
        rollout_length=16, batch_size=8, encoder_batches=2, dynamics_batches=2, min_buffer_size=8
    )
    values.update(overrides)
    return LearnerConfig(**values, ppo=PPOConfig(num_minibatches=2, update_epochs=1))


def steps_from(
    observations: np.ndarray, actions: np.ndarray, start: int = 0, version: int = 0
) -> list[Step]:
    return [
        Step(
            start + i,
            observations[i],
            actions[i],
            reward=0.1 * (i % 3),
            value=0.0,
            log_prob=-2.0,
            version=version,
        )
        for i in range(len(actions))
    ]


@pytest.fixture(scope='module')
def maze():
    return record('my_way_home', 120, seed=1)


def test_consecutive_steps_make_transitions_and_one_rollout(maze):
    observations, actions = maze
    learner = Learner(small_config())
    for step in steps_from(observations, actions)[:17]:
        learner.add(step)
    assert len(learner.buffer) == 16  # 17 steps link into 16 transitions
    assert learner.ready()
    # a_{t-1} of a transition is the action before it: zeros at the start, like the original.
    np.testing.assert_array_equal(learner.buffer.previous_actions[0], np.zeros(3))
    np.testing.assert_array_equal(learner.buffer.previous_actions[1], actions[0])
    np.testing.assert_array_equal(learner.buffer.next_observations[0], observations[1])
    # 16 acted steps + the one after (r_T and V(o_T))
    assert len(learner.streams[''].pending[0]) == 17


def test_a_gap_in_step_indices_restarts_the_sequence(maze):
    observations, actions = maze
    learner = Learner(small_config())
    steps = steps_from(observations, actions)
    for step in steps[:10] + steps[11:20]:
        learner.add(step)
    assert learner.gaps == 1
    assert len(learner.buffer) == 9 + 8
    assert not learner.ready()  # neither piece is a whole rollout
    np.testing.assert_array_equal(learner.buffer.previous_actions[9], np.zeros(3))


def test_steps_of_a_too_old_policy_are_not_used_for_ppo(maze):
    observations, actions = maze
    learner = Learner(small_config(max_policy_lag=2))
    learner.version = 5
    for step in steps_from(observations, actions, version=2)[:17]:
        learner.add(step)
    assert learner.stale > 0 and not learner.ready()
    assert len(learner.buffer) == 16  # still good for the encoder and the forward model


def test_a_round_trains_every_model_and_advances_the_version(maze):
    observations, actions = maze
    learner = Learner(small_config())
    for step in steps_from(observations, actions)[:17]:
        learner.add(step)
    before = {
        name: [p.detach().clone() for p in model.parameters()]
        for name, model in learner.models.items()
    }
    losses = learner.train_round()
    assert learner.version == 1 and learner.rounds == 1
    assert {
        'inverse_dynamics/loss',
        'forward_dynamics/loss',
        'ppo/policy_loss',
        'ppo/value_loss',
    } <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    for name, model in learner.models.items():
        changed = any(not torch.equal(a, b) for a, b in zip(before[name], model.parameters()))
        assert changed, f'{name} did not train'
    assert not learner.ready()  # the rollout was consumed


def test_concurrent_updates_train_exactly_what_one_update_at_a_time_does(maze):
    """PPO beside the encoder and forward model: the same weights, round after round (the
    encoder learns in the first, is frozen in the second). Not bit for bit: the update left
    running takes more threads, which rounds sums differently (up to 4.3e-6 seen); any update
    that read another's model would be off by its Adam steps, ~1e-4 (the learning rate) each."""
    observations, actions = maze
    steps = steps_from(observations, actions)
    learners = [
        Learner(small_config(encoder_rounds=1, concurrent_updates=concurrent))
        for concurrent in (False, True)
    ]
    for learner in learners:
        for begin in (0, 17):
            for step in steps[begin : begin + 17]:
                learner.add(step)
            learner.train_round()
    one_at_a_time, concurrent = learners
    assert concurrent.version == 2
    for name, model in one_at_a_time.models.items():
        for a, b in zip(model.parameters(), concurrent.models[name].parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=3e-5, msg=f'{name} differs')


def test_an_error_in_the_concurrent_update_reaches_the_round(maze, monkeypatch):
    observations, actions = maze
    learner = Learner(small_config(concurrent_updates=True))
    for step in steps_from(observations, actions)[:17]:
        learner.add(step)

    def broken(*args):
        raise FloatingPointError('forward model diverged')

    monkeypatch.setattr(learner, 'train_dynamics', broken)
    with pytest.raises(FloatingPointError, match='diverged'):
        learner.train_round()
    assert learner.version == 0  # no round counted, no weights published


def test_the_encoder_is_frozen_after_its_rounds_and_the_rest_keeps_learning(maze):
    observations, actions = maze
    learner = Learner(small_config(encoder_rounds=1))
    steps = steps_from(observations, actions)
    for step in steps[:17]:
        learner.add(step)
    assert 'inverse_dynamics/loss' in learner.train_round()  # round 1 of 1: learns
    frozen = [p.detach().clone() for p in learner.models['encoder'].parameters()]
    dynamics = [p.detach().clone() for p in learner.models['forward_dynamics'].parameters()]
    for step in steps[17:34]:
        learner.add(step)
    losses = learner.train_round()
    assert 'inverse_dynamics/loss' not in losses and 'forward_dynamics/loss' in losses
    assert all(torch.equal(a, b) for a, b in zip(frozen, learner.models['encoder'].parameters()))
    assert any(
        not torch.equal(a, b)
        for a, b in zip(dynamics, learner.models['forward_dynamics'].parameters())
    )


def test_forward_dynamics_loss_falls_on_fixed_doom_frames(maze):
    observations, actions = maze
    torch.manual_seed(0)
    learner = Learner(small_config(dynamics_buffer_size=256, batch_size=32))
    for step in steps_from(observations, actions):
        learner.add(step)
    fixed = learner.batch_tensors(learner.buffer.sample(64))

    def fd_loss() -> float:
        with torch.no_grad():
            return float(learner.dynamics_loss(*fixed))

    before = fd_loss()
    learner.train_model('forward_dynamics', 150, learner.dynamics_loss, lambda: False)
    after = fd_loss()
    assert after < 0.5 * before, (before, after)


def test_curiosity_is_higher_in_a_place_never_trained_on():
    """Train encoder + forward model in one room; the other room surprises it more."""
    familiar_obs, familiar_actions = record('basic', 260, seed=2)
    novel_obs, novel_actions = record('my_way_home', 60, seed=3)
    torch.manual_seed(0)
    learner = Learner(small_config(dynamics_buffer_size=512, batch_size=32))
    for step in steps_from(familiar_obs[:201], familiar_actions[:200]):
        learner.add(step)
    learner.train_model('encoder', 60, learner.encoder_loss, lambda: False)
    learner.train_model('forward_dynamics', 200, learner.dynamics_loss, lambda: False)

    def mean_reward(observations: np.ndarray, actions: np.ndarray) -> float:
        encoder, dynamics = learner.models['encoder'], learner.models['forward_dynamics']
        with torch.no_grad():
            z = encoder.embed(observations_to_tensor(observations, learner.device))
            a = action_features(torch.as_tensor(actions, device=learner.device), 'continuous')
            previous = torch.cat([torch.zeros_like(a[:1]), a[:-1]])
            predicted = dynamics(previous, z[:-1], a)
            return float(curiosity_reward(predicted, z[1:]).mean())

    held_out = mean_reward(familiar_obs[201:], familiar_actions[201:])  # same room, unseen steps
    novel = mean_reward(novel_obs, novel_actions)
    assert novel > 1.5 * held_out, (novel, held_out)


def test_a_round_reports_exactly_the_metrics_the_trainer_publishes(maze):
    observations, actions = maze
    learner = Learner(small_config(encoder_rounds=1))
    steps = steps_from(observations, actions)
    for step in steps[:17]:
        learner.add(step)
    first = learner.train_round()
    assert set(first) == set(learner.metrics())  # every publisher gets a value in round 1
    for step in steps[17:33]:
        learner.add(step)
    second = learner.train_round()
    assert set(second) == set(learner.metrics()) - {'inverse_dynamics/loss'}  # frozen encoder


def test_a_checkpoint_keeps_the_reward_normaliser_and_the_counters(maze, tmp_path):
    observations, actions = maze
    learner = Learner(small_config())
    steps = steps_from(observations, actions)
    for chunk in (steps[:17], steps[17:33]):
        for step in chunk:
            learner.add(step)
        learner.train_round()
    assert learner.normalizer.count > 1  # it has seen two rollouts' rewards
    learner.save_checkpoint(str(tmp_path), keep=2)

    resumed = Learner(small_config())
    assert resumed.load_checkpoint(str(tmp_path), print) is not None
    assert resumed.normalizer.state_dict() == learner.normalizer.state_dict()
    assert resumed.state_dict() == learner.state_dict()
    assert (resumed.version, resumed.rounds) == (2, 2)


def test_an_old_checkpoint_without_normaliser_state_starts_it_afresh(maze, tmp_path):
    from pamiq.storage.checkpoint import save_checkpoint

    learner = Learner(small_config())
    save_checkpoint(str(tmp_path), 3, learner.models, learner.optimizers, {'rounds': 3})
    resumed = Learner(small_config())
    resumed.load_checkpoint(str(tmp_path), print)
    assert (resumed.version, resumed.rounds) == (3, 3)
    assert resumed.normalizer.state_dict() == Learner(small_config()).normalizer.state_dict()


def test_actors_keep_their_own_sequences_and_one_update_holds_both(maze):
    observations, actions = maze
    learner = Learner(small_config())
    first = steps_from(observations[:40], actions[:40])
    second = steps_from(observations[40:80], actions[40:80])  # the same step indices
    for a, b in zip(first[:17], second[:17]):  # interleaved, as two actors' messages arrive
        learner.add(a, 'actor0')
        learner.add(b, 'actor1')
    assert learner.gaps == 0
    assert len(learner.buffer) == 32  # 16 transitions each, none across the two
    pairs = {
        (learner.buffer.observations[i].tobytes(), learner.buffer.next_observations[i].tobytes())
        for i in range(len(learner.buffer))
    }
    for steps in (first, second):
        for t in range(16):
            assert (steps[t].observation.tobytes(), steps[t + 1].observation.tobytes()) in pairs
    # One actor's rollout alone does not start a round both are expected in.
    assert learner.ready(['actor0', 'actor1'])
    assert not Learner(small_config()).ready(['actor0'])
    sizes = []
    learner.models['forward_dynamics'].register_forward_pre_hook(
        lambda _, args: sizes.append(len(args[1]))
    )
    metrics = learner.train_round()
    assert metrics['update/actors'] == 2 and metrics['update/samples'] == 32
    # Two actors, a rollout each: as many samples as two rollouts of one actor would have,
    # in half as many minibatches twice the size.
    assert sizes == [2 * learner.config.batch_size] * learner.config.dynamics_batches


def test_a_round_waits_for_every_active_actor_until_enough_rollouts_wait(maze):
    observations, actions = maze
    learner = Learner(small_config())
    steps = steps_from(observations, actions)
    for step in steps[:17]:
        learner.add(step, 'fast')
    assert learner.ready() and learner.ready(['fast'])
    assert not learner.ready(['fast', 'slow'])  # the slow actor's rollout is still coming
    for step in steps[17:34]:
        learner.add(step, 'fast')
    assert learner.ready(['fast', 'slow'])  # two rollouts wait: the slow one holds no longer
    sizes = []
    learner.models['forward_dynamics'].register_forward_pre_hook(
        lambda _, args: sizes.append(len(args[1]))
    )
    assert learner.train_round()['update/actors'] == 1
    # One actor's two rollouts: twice its per-rollout minibatches, of the usual size.
    assert sizes == [learner.config.batch_size] * 2 * learner.config.dynamics_batches


def test_each_frame_is_embedded_once_per_encoder(maze):
    observations, actions = maze
    learner = Learner(small_config(encoder_rounds=2))
    steps = steps_from(observations, actions)
    encoder = learner.models['encoder']
    calls = []
    embed = encoder.embed

    def counted(obs):  # embeddings made without a gradient: not the encoder's own training
        if not torch.is_grad_enabled():
            calls.append(len(obs))
        return embed(obs)

    encoder.embed = counted

    def distinct(frames):
        return len({step.observation.tobytes() for step in frames})

    rounds = [steps[:17], steps[17:34], steps[34:51], steps[51:68]]
    for added in rounds:
        for step in added:
            learner.add(step)
        learner.train_round()
    # While the encoder learns (rounds 1 and 2) the forward model's round starts by embedding
    # the whole buffer with the encoder just trained, each distinct frame once (a step's
    # observation is the previous transition's next observation); frozen after round 2, later
    # rounds embed only the transitions added since. Never an embedding per minibatch.
    assert calls == [
        distinct(steps[:17]),
        distinct(steps[:34]),
        distinct(steps[33:51]),
        distinct(steps[50:68]),
    ]
    cached = np.flatnonzero(learner.buffer.embedded[: len(learner.buffer)])
    assert len(cached) == len(learner.buffer)
    with torch.no_grad():
        fresh = embed(observations_to_tensor(learner.buffer.observations[cached], learner.device))
    # On CUDA, cuDNN's convolutions run in TF32 by default (10-bit mantissa): a frame embedded in
    # another batch differs by up to ~1e-3 there (1.2e-3 seen on an H200).
    atol = 1e-5 if learner.device.type == 'cpu' else 5e-3
    np.testing.assert_allclose(learner.buffer.embeddings[cached], fresh.cpu().numpy(), atol=atol)


def test_a_slot_overwritten_while_it_was_embedded_is_not_cached():
    from pamiq.learning.learner import DynamicsBuffer

    buffer = DynamicsBuffer(2, (3,), np.float32)
    frame = np.zeros((84, 84, 3), np.uint8)
    for _ in range(2):
        buffer.add(np.zeros(3), frame, np.zeros(3), frame)
    index, generations, _, _ = buffer.unembedded()
    buffer.add(np.zeros(3), frame + 1, np.zeros(3), frame + 1)  # replaces one of the two
    z = np.ones((2, 512), np.float32)
    buffer.store_embeddings(index, generations, z, z)
    assert buffer.embedded.sum() == 1
    assert buffer.unembedded()[0].tolist() == [i for i in (0, 1) if not buffer.embedded[i]]


def test_distinct_rows_finds_repeats_of_every_part_together():
    from pamiq.learning.learner import distinct_rows

    images = np.zeros((5, 84, 84, 3), np.uint8)
    images[1, 0, 0, 0] = images[3, 0, 0, 0] = 7  # rows 1 and 3 look alike, as do 0, 2, 4
    body = np.zeros((5, 4), np.float32)
    body[4, 2] = 0.5  # ... but row 4 felt something else
    first, inverse = distinct_rows(images, {'body': body})
    assert first.tolist() == [0, 1, 4]
    assert inverse.tolist() == [0, 1, 0, 1, 2]
    np.testing.assert_array_equal(images[first][inverse], images)
    np.testing.assert_array_equal(body[first][inverse], body)
    assert distinct_rows(images, {})[0].tolist() == [0, 1]
