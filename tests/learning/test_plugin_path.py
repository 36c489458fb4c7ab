"""The live graph's plug-in path without ROS: the agent's PluginPolicy acts, the trainer's
PluginLearner pairs its steps into rollouts and trains them with pamiq train's update, and the
weights go back to the agent."""

from __future__ import annotations

import dataclasses

import numpy as np
from pamiq.learning.config import LearnerConfig
from pamiq.learning.learner import Step
from pamiq.learning.plugin_learner import PluginLearner
from pamiq.learning.plugin_policy import PluginPolicy
from pamiq.storage.weights import pack_weights
import pytest
import torch

CONFIG = LearnerConfig(
    model='compact', reward='e3b', action_space='discrete', rollout_length=8, device='cpu'
)


def frame(index: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    return rng.integers(0, 256, (84, 84, 3), dtype=np.uint8)


def act(policy: PluginPolicy, learner: PluginLearner, steps: range, actor: str) -> list:
    results = []
    for index in steps:
        result = policy.step(frame(index))
        learner.add(
            Step(index, frame(index), result.action, result.reward, result.value,
                 result.log_prob, result.version),
            actor,
        )  # fmt: skip
        results.append(result)
    return results


@pytest.mark.parametrize('reward', ['e3b', 'place_count'])
def test_steps_become_rollouts_and_a_round_trains_them_and_the_agent_takes_the_weights(reward):
    torch.set_num_threads(1)
    learner = PluginLearner(dataclasses.replace(CONFIG, reward=reward), seed=3)
    agents = {name: PluginPolicy('compact', reward, 'discrete', seed=3) for name in ('a', 'b')}
    assert not learner.ready()
    for name, agent in agents.items():
        results = act(agent, learner, range(9), name)
        assert results[0].reward == 0.0 and all(r.reward > 0 for r in results[1:])
    assert learner.ready({'a', 'b'})
    before = {k: v.clone() for k, v in learner.models['policy'].state_dict().items()}
    losses = learner.train_round()
    assert losses['update/actors'] == 2 and losses['update/samples'] == 16
    assert set(losses) <= set(learner.metrics()) and f'{reward}/loss' in losses
    assert learner.version == 1 and not learner.ready()
    after = learner.models['policy'].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # the agent's initial weights were the learner's (the same seed), the new ones go over
    version = agents['a'].load_weights(pack_weights(learner.models, learner.version))
    assert version == 1 and agents['a'].version == 1
    for key, value in agents['a'].models['policy'].state_dict().items():
        assert torch.equal(value, after[key])


def test_a_gap_in_the_steps_starts_the_sequence_and_its_stack_afresh():
    learner = PluginLearner(CONFIG, seed=0)
    agent = PluginPolicy('compact', 'e3b', 'discrete', seed=0)
    act(agent, learner, range(5), '')
    act(agent, learner, range(7, 12), '')  # a gap: 5 and 6 never arrived
    assert learner.gaps == 1 and not learner.ready()
    stack = learner.streams[''].last_record.inputs
    assert stack.shape == (4, 42, 42)


def test_a_checkpoint_round_trips_the_models_and_the_counters(tmp_path):
    learner = PluginLearner(CONFIG, seed=1)
    agent = PluginPolicy('compact', 'e3b', 'discrete', seed=1)
    act(agent, learner, range(9), '')
    learner.train_round()
    path = learner.save_checkpoint(str(tmp_path), keep=2)
    other = PluginLearner(CONFIG, seed=2)
    assert other.load_checkpoint(str(tmp_path), print) == path
    assert other.version == learner.version == 1 and other.samples == 9
    for key, value in learner.models['e3b'].state_dict().items():
        assert torch.equal(value, other.models['e3b'].state_dict()[key])
    started = PluginPolicy('compact', 'e3b', 'discrete', seed=5)
    assert started.load_checkpoint(str(tmp_path), print) == path and started.version == 1


@pytest.mark.parametrize('reward', ['oracle_count', 'oracle_lifelong_count'])
def test_the_oracles_are_refused_where_there_is_no_true_pose(reward):
    with pytest.raises(ValueError, match='true pose'):
        PluginPolicy('compact', reward, 'discrete')
    with pytest.raises(ValueError, match='true pose'):
        PluginLearner(LearnerConfig(model='compact', reward=reward, device='cpu'))


def test_more_senses_than_vision_are_refused_with_their_alternative():
    config = LearnerConfig(model='compact', reward='rnd', senses='vision,hearing', device='cpu')
    with pytest.raises(ValueError, match='model original and reward prediction_error'):
        PluginLearner(config)


def test_a_recurrent_agents_states_reach_the_trainer_which_rescores_exactly_what_it_did():
    # memory_horizon 5 inside 8-step rollouts: the agent starts its state afresh mid-rollout,
    # which the trainer reads from the zero state the step carries.
    from pamiq.ros.messages import step_fields, step_message

    torch.set_num_threads(1)
    config = dataclasses.replace(CONFIG, reward='place_count', recurrent=True, memory_horizon=5)
    learner = PluginLearner(config, seed=4)
    agent = PluginPolicy(
        'compact', 'place_count', 'discrete', seed=4, memory_horizon=5, recurrent=True
    )
    fresh_states = 0
    for index in range(17):
        result = agent.step(frame(index))
        fresh_states += not result.policy_state.any()
        # through agent/step's message, as the trainer node reads it
        fields = step_fields(
            step_message(None, index, result.reward, result.value, result.log_prob,
                         result.version, None, result.policy_state)
        )  # fmt: skip
        step = Step.from_fields(fields, frame(index), result.action)
        assert np.array_equal(step.policy_state, result.policy_state)
        learner.add(step, 'a')
    assert fresh_states == 4  # steps 0, 5, 10, 15
    losses = learner.train_round()
    assert losses['update/samples'] == 16
    # ~1e-7 re-run from the agent's states; without the mid-rollout restarts ~1e-3
    assert losses['ppo/first_epoch_max_ratio_error'] < 1e-5


def test_a_recurrent_trainer_refuses_steps_without_a_state():
    learner = PluginLearner(dataclasses.replace(CONFIG, recurrent=True), seed=0)
    step = Step(0, frame(0), np.zeros(5, np.int64), 0.0, 0.0, 0.0, 0)
    with pytest.raises(ValueError, match='is the agent recurrent too'):
        learner.add(step, 'a')
