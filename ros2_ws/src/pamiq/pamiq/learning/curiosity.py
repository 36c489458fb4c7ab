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


REWEMS = 'rewems'  # LSC's name for the discounted sum R_t, as checkpoints store it


class RewardNormalizer:
    """Divide rewards by the running std of their discounted sum (large-scale-curiosity).

    As LSC's RewardForwardFilter + RunningMeanStd (and CleanRL's RND PPO): the
    discounted sum R_t = γ·R_{t−1} + r_t never resets (curiosity is non-episodic), its variance is
    tracked over everything seen so far, and rewards (not returns) are divided by its std. This
    keeps the scale of advantages and value targets steady as the curiosity reward decays. The
    original dropped it; the trainer turns it on by a named flag. With several actors each
    stream keeps its own R_t (LSC's filter holds one per environment) and the statistics are
    shared.
    """

    def __init__(self, gamma: float = 0.99) -> None:
        self.gamma = gamma
        self.rewems: dict[str, float] = {}  # R_{t−1} of each stream, LSC's name
        self.mean, self.var, self.count = 0.0, 1.0, 1e-4  # RunningMeanStd's prior

    def normalize(self, rewards: torch.Tensor, stream: str = '') -> torch.Tensor:
        """Update the running statistics with a rollout's rewards (T,) from `stream` and
        return r / std (T,)."""
        returns = []
        rewems = self.rewems.get(stream, 0.0)
        for reward in rewards.tolist():
            rewems = self.gamma * rewems + reward
            returns.append(rewems)
        self.rewems[stream] = rewems
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
        """Plain floats, for checkpoints; each stream's R_t under 'rewems:<stream>'."""
        state = {'gamma': self.gamma, 'mean': self.mean, 'var': self.var, 'count': self.count}
        state.update({f'{REWEMS}:{stream}': value for stream, value in self.rewems.items()})
        return state

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Restore what `state_dict` returned (a plain 'rewems', written before streams had
        names, belongs to the unnamed stream)."""
        for key in ('gamma', 'mean', 'var', 'count'):
            setattr(self, key, float(state[key]))
        self.rewems = {
            key.partition(':')[2]: float(value)
            for key, value in state.items()
            if key == REWEMS or key.startswith(REWEMS + ':')
        }
