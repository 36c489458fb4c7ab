"""The one policy protocol: the random and the curiosity policy step, reset and take weights
the same way, so the agent node drives both with one code path."""

from __future__ import annotations

import math

import numpy as np
from pamiq.learning.curiosity_policy import CuriosityPolicy
from pamiq.learning.learner import Learner, LearnerConfig
from pamiq.learning.policy import StepResult
from pamiq.learning.random_policy import RandomPolicy
from pamiq.storage.weights import WeightsError, pack_weights
import pytest

FRAME = np.zeros((84, 84, 3), np.uint8)


@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_both_policies_return_the_same_step_result(action_space):
    for policy in (
        RandomPolicy(action_space, 0),
        CuriosityPolicy('inverse_dynamics', action_space, 0),
    ):
        result = policy.step(FRAME)
        assert isinstance(result, StepResult)
        assert result.action.shape == ((3,) if action_space == 'continuous' else (5,))
        assert math.isfinite(result.log_prob) and result.log_prob < 0
        assert result.version == policy.version == 0
        policy.reset()


def frames(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (84, 84, 3), dtype=np.uint8) for _ in range(count)]


@pytest.mark.parametrize('policy_class', [RandomPolicy, CuriosityPolicy])
def test_decide_then_complete_is_the_same_step_as_step(policy_class):
    def make():
        if policy_class is RandomPolicy:
            return RandomPolicy('continuous', 3)
        return CuriosityPolicy('inverse_dynamics', 'continuous', 3)  # seeds torch's sampling

    whole = make()
    whole_results = [whole.step(frame) for frame in frames(6)]
    halves = make()
    for frame, expected in zip(frames(6), whole_results):
        decision = halves.decide(frame)
        result = halves.complete()
        np.testing.assert_array_equal(decision.action, result.action)
        np.testing.assert_array_equal(result.action, expected.action)
        assert result.reward == pytest.approx(expected.reward)
        assert result.log_prob == pytest.approx(expected.log_prob)
        assert decision.version == result.version == 0
    # The curiosity policy's reward after the first step comes from its own prediction.
    if policy_class is CuriosityPolicy:
        assert whole_results[0].reward == 0.0 and whole_results[1].reward > 0.0
    with pytest.raises(RuntimeError, match='without a decide'):
        halves.complete()


def test_the_random_policy_reports_its_own_log_probability():
    policy = RandomPolicy('discrete', 0)
    assert policy.step(FRAME).log_prob == pytest.approx(-math.log(3 * 3 * 3 * 2 * 2))
    # Continuous: a = tanh(u), u ~ N(0, 1); compare with the density by change of variables.
    policy = RandomPolicy('continuous', 1)
    result = policy.step(FRAME)
    u = np.arctanh(result.action.astype(np.float64))
    expected = np.sum(-0.5 * u**2 - 0.5 * math.log(2 * math.pi) - np.log(1 - result.action**2))
    assert result.log_prob == pytest.approx(expected, rel=1e-4)
    assert result.reward == 0.0 and result.value == 0.0


def test_the_random_policy_refuses_weights_and_has_no_checkpoint(tmp_path):
    policy = RandomPolicy('continuous', 0)
    blob = pack_weights(CuriosityPolicy('inverse_dynamics', 'continuous').models, 3)
    with pytest.raises(WeightsError, match='uses no weights'):
        policy.load_weights(blob)
    assert policy.load_checkpoint(str(tmp_path), print) is None


def test_the_curiosity_policy_loads_weights_checkpoints_and_its_own_state(tmp_path):
    learner = Learner(LearnerConfig())
    learner.version = 4
    learner.save_checkpoint(str(tmp_path), keep=1)
    policy = CuriosityPolicy('inverse_dynamics', 'continuous', seed=1)
    assert policy.load_checkpoint(str(tmp_path), print).endswith('00000004.safetensors')
    assert policy.version == 4
    assert policy.load_weights(pack_weights(learner.models, 9)) == 9
    state = policy.state_dict()
    assert state['version'] == 9
    other = CuriosityPolicy('inverse_dynamics', 'continuous', seed=2)
    other.load_state_dict(state)
    assert other.version == 9
    assert other.step(FRAME).value == pytest.approx(policy.step(FRAME).value)
