"""The curiosity reward and its optional normalisation.

The reward is the forward model's error in embedding space: the agent is drawn to transitions
its model of the world cannot yet predict (PrimitiveAMI, after large-scale-curiosity).
"""

from __future__ import annotations

import math

import torch


@torch.no_grad()  # a reward is a target for PPO, never a path for gradients
def curiosity_reward(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """r_{t+1} = (1/D) Σ_d (ẑ_{t+1,d} − z_{t+1,d})², the original's unscaled reward.

    Args:
        predicted: ẑ_{t+1} = f(a_{t−1}, z_t, a_t), (B, D) or (D,).
        target: z_{t+1} = φ(o_{t+1}), same shape.

    Returns:
        (B,) rewards, or a 0-d tensor for 1-D inputs.
    """
    return (predicted - target).pow(2).mean(dim=-1)


class RewardNormalizer:
    """Divide rewards by the running std of their discounted sum (large-scale-curiosity).

    As LSC's RewardForwardFilter + RunningMeanStd (and CleanRL's RND PPO): the
    discounted sum R_t = γ·R_{t−1} + r_t never resets (curiosity is non-episodic), its variance is
    tracked over everything seen so far, and rewards (not returns) are divided by its std. This
    keeps the scale of advantages and value targets steady as the curiosity reward decays. The
    original dropped it; the trainer turns it on by a named flag.
    """

    def __init__(self, gamma: float = 0.99) -> None:
        self.gamma = gamma
        self.rewems = 0.0  # R_{t−1}, LSC's name
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4  # RunningMeanStd's prior

    def normalize(self, rewards: torch.Tensor) -> torch.Tensor:
        """Update the running statistics with a rollout's rewards (T,) and return r / std (T,)."""
        returns = []
        for reward in rewards.tolist():
            self.rewems = self.gamma * self.rewems + reward
            returns.append(self.rewems)
        if returns:
            batch = torch.tensor(returns, dtype=torch.float64)
            batch_mean, batch_var, n = (
                batch.mean().item(),
                batch.var(unbiased=False).item(),
                len(returns),
            )
            # Chan et al.'s parallel update of (mean, var, count), as baselines' RunningMeanStd.
            delta, total = batch_mean - self.mean, self.count + n
            m2 = self.var * self.count + batch_var * n + delta**2 * self.count * n / total
            self.mean, self.var, self.count = self.mean + delta * n / total, m2 / total, total
        return rewards / (
            math.sqrt(self.var) + 1e-8
        )  # 1e-8: a never-surprised agent divides by ~0

    def state_dict(self) -> dict[str, float]:
        """Plain floats, for checkpoints."""
        return {
            'gamma': self.gamma,
            'rewems': self.rewems,
            'mean': self.mean,
            'var': self.var,
            'count': self.count,
        }

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore what `state_dict` returned."""
        for key in ('gamma', 'rewems', 'mean', 'var', 'count'):
            setattr(self, key, float(state[key]))
