"""The curiosity reward and the reward normaliser (pamiq.learning.curiosity)."""

from __future__ import annotations

import json

import numpy as np
from pamiq.learning.curiosity import RewardNormalizer, curiosity_reward
import torch


def test_curiosity_reward_is_the_mean_squared_error_per_row():
    predicted = torch.tensor([[1.0, 2.0], [0.0, 0.0]], requires_grad=True)  # ẑ
    target = torch.tensor([[0.0, 0.0], [0.0, 2.0]])  # z
    reward = curiosity_reward(predicted, target)
    # Row 0: (1² + 2²) / 2 = 2.5; row 1: (0² + 2²) / 2 = 2.0
    assert torch.equal(reward, torch.tensor([2.5, 2.0]))
    assert not reward.requires_grad
    assert curiosity_reward(torch.zeros(512), torch.full((512,), 3.0)).shape == ()
    assert curiosity_reward(torch.zeros(512), torch.full((512,), 3.0)) == 9.0


def running_var(returns: np.ndarray) -> float:
    """Variance of everything seen, with RunningMeanStd's prior (mean 0, var 1, count 1e-4)."""
    prior = 1e-4
    mean = returns.sum() / (prior + len(returns))
    m2 = prior * (1.0 + mean**2) + ((returns - mean) ** 2).sum()
    return m2 / (prior + len(returns))


def test_reward_normalizer_divides_by_the_running_std_of_discounted_returns():
    rng = np.random.default_rng(0)
    first, second = rng.random(16), rng.random(8) * 3
    normalizer = RewardNormalizer(gamma=0.9)
    normalizer.normalize(torch.tensor(first, dtype=torch.float32))
    out = normalizer.normalize(torch.tensor(second, dtype=torch.float32))

    rewards = np.concatenate([first, second])
    returns = np.zeros_like(rewards)
    rewems = 0.0  # never reset between rollouts: the stream is non-episodic
    for t, reward in enumerate(rewards):
        rewems = 0.9 * rewems + reward
        returns[t] = rewems
    expected = second / np.sqrt(running_var(returns))
    assert out.dtype == torch.float32 and out.shape == (8,)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5)


def test_reward_normalizer_state_dict_round_trips():
    rng = np.random.default_rng(1)
    normalizer = RewardNormalizer()
    normalizer.normalize(torch.tensor(rng.random(32), dtype=torch.float32))
    state = json.loads(json.dumps(normalizer.state_dict()))  # plain floats
    restored = RewardNormalizer(gamma=0.5)
    restored.load_state_dict(state)
    assert restored.state_dict() == normalizer.state_dict()
    batch = torch.tensor(rng.random(8), dtype=torch.float32)
    assert torch.equal(restored.normalize(batch), normalizer.normalize(batch))
