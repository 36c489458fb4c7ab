"""A policy that knows its episode: `--reward-input` (it sees the intrinsic reward it earned a
step ago, NGU's input) and `--recurrent` (it carries a GRU state through the episode), each the
same in training, on resume and in `pamiq eval`."""

from __future__ import annotations

import numpy as np
from pamiq.learning import engine
from pamiq.learning.models import PolicyValue
from pamiq.learning.plugin_policy import PluginPolicy
from pamiq.learning.presets import model_preset
from pamiq.learning.reward_input import reward_context
from pamiq.learning.train_config import TrainConfig
from pamiq.learning.trained_policy import TrainedPolicy
from pamiq.storage.checkpoint import list_checkpoints
import pytest
import safetensors.torch
import torch

# 2 worlds, 8-step rollouts, 60-tic episodes: several episode starts inside and across updates.
SMALL = dict(envs=2, rollout_length=8, episode_tics=60, checkpoint_every=1, world_processes=0)


class Recording(engine.Trainer):
    """A trainer that keeps every update's rollouts and losses."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs, log=lambda line: None, progress_every=1e9)
        self.seen: list[dict[str, torch.Tensor]] = []
        self.losses: list[dict[str, float]] = []

    def update(self, rollouts: engine.Rollouts, next_value: torch.Tensor) -> None:
        fields = ('contexts', 'rewards', 'starts')
        self.seen.append({name: getattr(rollouts, name).clone() for name in fields})
        super().update(rollouts, next_value)
        self.losses.append(self.last_losses)


def trained(run_dir: str, steps: int, reward: str = 'oracle_count', **memory) -> Recording:
    memory = memory or {'reward_input': True}
    config = TrainConfig(steps=steps, reward=reward, action_space='continuous', **memory, **SMALL)
    trainer = Recording(config, run_dir)
    trainer.run()
    return trainer


@pytest.fixture(scope='module')
def run(tmp_path_factory) -> tuple[str, Recording]:
    torch.set_num_threads(1)
    run_dir = str(tmp_path_factory.mktemp('reward_input') / 'run')
    return run_dir, trained(run_dir, 96)


def test_each_decision_sees_the_reward_of_arriving_at_the_frame_before(run):
    _, trainer = run
    joined = {k: torch.cat([update[k] for update in trainer.seen]) for k in trainer.seen[0]}
    contexts, rewards, starts = joined['contexts'][..., 0], joined['rewards'], joined['starts']
    assert len(rewards) == 48 and bool(starts.any()) and float(rewards.max()) > 0
    # decision t sees r(o_{t-1}) = rewards[t - 2]; 0 on an episode's first frame and at the start
    expected = torch.zeros_like(contexts)
    expected[2:] = rewards[:-2]
    expected[1:][starts[:-1]] = 0.0
    assert torch.equal(contexts, expected)
    # PPO scores each stored action with the very input it was sampled with: ratio 1 at first
    assert all(loss['ppo/first_epoch_max_ratio_error'] < 1e-4 for loss in trainer.losses)


def test_a_resumed_run_carries_the_reward_inputs_across_the_interruption(run, tmp_path):
    run_dir, _ = run
    halves = str(tmp_path / 'halves')
    trained(halves, 48)
    trained(halves, 96)
    newest = lambda d: safetensors.torch.load_file(list_checkpoints(d)[0])
    whole, resumed = newest(run_dir), newest(halves)
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_a_policy_with_a_context_refuses_to_act_without_it():
    policy = PolicyValue('continuous', features=model_preset('compact').trunk(), context=1)
    obs = torch.zeros(2, *model_preset('compact').input_shape)
    with pytest.raises(ValueError, match=r'needs a \(2, 1\) context'):
        policy.get_action_and_value(obs)


def test_the_input_is_finite_and_bounded():
    got = reward_context(torch.tensor([float('nan'), float('inf'), -1e9, 0.5]))
    assert got.shape == (4, 1) and got[:, 0].tolist() == [0.0, 10.0, -10.0, 0.5]


def test_pamiq_eval_acts_with_the_reward_the_policy_earned_and_an_oracle_needs_the_pose(run):
    run_dir, _ = run
    policy = TrainedPolicy(run_dir)
    assert policy.reward_input and policy.needs_pose
    frames = np.random.default_rng(0).integers(0, 255, (4, 84, 84, 3), dtype=np.uint8)
    rewards = [policy.step(f, {'pose': (64.0 * i, 0.0, 0.0)}).reward for i, f in enumerate(frames)]
    assert rewards[0] == 0.0 and rewards[1] == pytest.approx(1.0)  # a new cell pays 1
    policy.reset()
    assert policy.last_reward == 0.0
    assert policy.step(frames[0], {'pose': (0.0, 0.0, 0.0)}).reward == 0.0
    with pytest.raises(ValueError, match='needs the pose'):
        policy.step(frames[1])


def test_an_agent_with_an_episodic_reward_resets_between_steps():
    # The reward's memory is made inside the agent's inference mode; a reset outside it (a new
    # sequence) must still clear it.
    agent = PluginPolicy('compact', 'place_count', 'continuous', seed=0)
    frame = np.zeros((84, 84, 3), np.uint8)
    for _ in range(3):
        agent.step(frame)
    agent.reset()
    assert agent.step(frame).reward == 0.0


# --- the recurrent policy ------------------------------------------------------------------


def recurrent_policy(space: str = 'continuous') -> PolicyValue:
    torch.manual_seed(0)
    return PolicyValue(space, features=model_preset('compact').trunk(), recurrent=True).eval()


@pytest.mark.parametrize('space', ['continuous', 'discrete'])
def test_a_sequence_scores_what_step_by_step_acting_did_resets_included(space):
    policy = recurrent_policy(space)
    n, steps = 3, 6
    obs = torch.randint(
        0, 255, (n, steps, *model_preset('compact').input_shape), dtype=torch.uint8
    )
    obs = model_preset('compact').inputs(obs.flatten(0, 1)).view(n, steps, -1, 42, 42)
    resets = torch.zeros(n, steps, dtype=torch.bool)
    resets[1, 3] = True  # stream 1's o_3 begins an episode
    state = torch.randn(n, policy.state_size)
    acted, log_probs, values = [], [], []
    with torch.no_grad():
        running = state
        for t in range(steps):
            running = torch.where(resets[:, t, None], 0.0, running)
            action, log_prob, value, running = policy.recurrent_step(obs[:, t], running)
            acted.append(action), log_probs.append(log_prob), values.append(value)
        scored = policy.sequence(obs, torch.stack(acted, 1), resets, state)
    assert torch.allclose(scored[0], torch.stack(log_probs, 1), atol=1e-4)
    assert torch.allclose(scored[2], torch.stack(values, 1), atol=1e-5)
    with torch.no_grad():  # the reset cut the past off: stream 1 from step 3 on
        fresh = policy.sequence(
            obs[1:2, 3:], torch.stack(acted, 1)[1:2, 3:], resets[1:2, 3:] & False,
            policy.initial_state(1),
        )  # fmt: skip
    assert torch.allclose(fresh[2], scored[2][1:2, 3:], atol=1e-5)


def test_a_recurrent_policy_refuses_to_act_without_its_state():
    policy = recurrent_policy()
    obs = torch.zeros(2, *model_preset('compact').input_shape)
    with pytest.raises(ValueError, match='recurrent_step'):
        policy.get_action_and_value(obs)
    size = policy.state_size
    with pytest.raises(ValueError, match=rf'needs a \(2, {size}\) state'):
        policy.recurrent_step(obs, torch.zeros(1, size))


@pytest.fixture(scope='module')
def recurrent_run(tmp_path_factory) -> tuple[str, Recording]:
    torch.set_num_threads(1)
    run_dir = str(tmp_path_factory.mktemp('recurrent') / 'run')
    return run_dir, trained(run_dir, 96, 'place_count', recurrent=True)


def test_ppo_rescores_each_rollout_from_the_state_it_began_with(recurrent_run):
    _, trainer = recurrent_run
    assert any(bool(update['starts'].any()) for update in trainer.seen)
    assert all(loss['ppo/first_epoch_max_ratio_error'] < 1e-3 for loss in trainer.losses)


def test_a_resumed_recurrent_run_carries_its_states_across_the_interruption(
    recurrent_run, tmp_path
):
    run_dir, _ = recurrent_run
    halves = str(tmp_path / 'halves')
    trained(halves, 48, 'place_count', recurrent=True)
    trained(halves, 96, 'place_count', recurrent=True)
    newest = lambda d: safetensors.torch.load_file(list_checkpoints(d)[0])
    whole, resumed = newest(run_dir), newest(halves)
    assert any('policy/memory' in k for k in whole)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


def test_pamiq_eval_carries_the_state_through_an_episode_and_starts_it_afresh(recurrent_run):
    run_dir, _ = recurrent_run
    policy = TrainedPolicy(run_dir)
    frames = np.random.default_rng(1).integers(0, 255, (3, 84, 84, 3), dtype=np.uint8)
    for frame in frames:
        policy.step(frame)
    assert float(policy.state.abs().sum()) > 0
    policy.reset()
    assert float(policy.state.abs().sum()) == 0
