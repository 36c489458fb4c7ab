"""PPO for one continuing curiosity stream, to read side by side with CleanRL's PPO.

[Original design] PrimitiveAMI trained PPO (from CleanRL's PPO) on each 128-step rollout:
GAE with γ 0.99, λ 0.95, 3 epochs of minibatches of 8, clip 0.1 for policy and value.
[This implementation] the same algorithm as functions: `compute_gae`, `ppo_loss` and
`ppo_update`, top to bottom with the names of CleanRL's continuous-action PPO. `ppo_loss` refuses
anything but 1-D (B,) inputs: the original fed (B,1) advantages against (B,) log-probs, which
broadcast to (B, B) and cancelled the policy gradient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
import math
from typing import NamedTuple

import torch
from torch import nn

from pamiq.learning.config import PPOConfig
from pamiq.learning.models import PolicyValue


class Rollout(NamedTuple):
    """T consecutive steps acted by the behaviour ("old") policy, plus its bootstrap value."""

    obs: torch.Tensor
    """o_t, (T, 3, 84, 84) float"""
    actions: torch.Tensor
    """a_t, (T, 3) float or (T, 5) long"""
    logprobs: torch.Tensor
    """old log π(a_t | o_t), (T,)"""
    values: torch.Tensor
    """old V(o_t), (T,)"""
    rewards: torch.Tensor
    """r_{t+1}, the curiosity reward for reaching o_{t+1}, (T,)"""
    next_value: torch.Tensor
    """V(o_T), the bootstrap value after the last step, () or (1,)"""
    context: torch.Tensor | None = None
    """what the policy saw beside o_t, (T, k), for a policy with a context"""
    state: torch.Tensor | None = None
    """a recurrent policy's state before o_0, (state_size,)"""
    resets: torch.Tensor | None = None
    """a recurrent policy's state started afresh before step t (o_t began an episode), (T,)"""


def _check_1d(**tensors: torch.Tensor) -> None:
    """Raise ValueError unless every tensor is 1-D with the same length, naming the offender."""
    length = None
    for name, tensor in tensors.items():
        if tensor.ndim != 1 or (length is not None and len(tensor) != length):
            expected = '(B,)' if length is None else f'({length},)'
            why = '' if tensor.ndim == 1 else ' ((B, 1) against (B,) would broadcast to (B, B))'
            raise ValueError(f'{name} must have shape {expected}, got {tuple(tensor.shape)}{why}')
        length = len(tensor)


@torch.no_grad()
def compute_gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    next_value: torch.Tensor,
    gamma: float,
    gae_lambda: float,
    dones: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, CleanRL's backward loop.

    δ_t = r_{t+1} + γ·V(o_{t+1})·(1 − done_t) − V(o_t);  A_t = δ_t + γλ·(1 − done_t)·A_{t+1}.
    λ = 1 gives Monte-Carlo returns, λ = 0 one-step TD.

    Args:
        rewards: r_{t+1}, (T,).
        values: V(o_t), (T,).
        next_value: V(o_T), () or (1,).
        gamma: Discount γ.
        gae_lambda: GAE λ.
        dones: 1 where o_{t+1} ends an episode, (T,). Default zeros: the curiosity stream is one
            continuing episode. (CleanRL stores the same flag one step later, as dones[t + 1].)

    Returns:
        (advantages, returns), each (T,); returns = advantages + values.
    """
    _check_1d(rewards=rewards, values=values)
    if dones is None:
        dones = torch.zeros_like(rewards)
    num_steps = len(rewards)
    advantages = torch.zeros_like(rewards)
    lastgaelam = 0.0
    for t in reversed(range(num_steps)):
        nextnonterminal = 1.0 - dones[t]
        nextvalues = next_value.reshape(()) if t == num_steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages, advantages + values


def ppo_loss(
    new_logprob: torch.Tensor,
    old_logprob: torch.Tensor,
    advantages: torch.Tensor,
    new_value: torch.Tensor,
    old_value: torch.Tensor,
    returns: torch.Tensor,
    entropy: torch.Tensor,
    config: PPOConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped PPO objective on one minibatch.

    Args:
        new_logprob: log π_θ(a|o) under the policy being trained, (B,).
        old_logprob: log π_old(a|o) under the behaviour policy, (B,).
        advantages: A, (B,).
        new_value: V_θ(o), (B,).
        old_value: V_old(o), (B,).
        returns: Value targets A + V_old, (B,).
        entropy: H[π_θ(·|o)], (B,).
        config: Coefficients.

    Returns:
        The scalar loss pg_loss − ent_coef·H + vf_coef·v_loss, and its diagnostics.

    Raises:
        ValueError: An input is not 1-D of the common length B.
    """
    _check_1d(
        new_logprob=new_logprob,
        old_logprob=old_logprob,
        advantages=advantages,
        new_value=new_value,
        old_value=old_value,
        returns=returns,
        entropy=entropy,
    )
    logratio = new_logprob - old_logprob
    ratio = logratio.exp()  # π_θ(a|o) / π_old(a|o)

    with torch.no_grad():
        # calculate approx_kl http://joschu.net/blog/kl-approx.html
        old_approx_kl = (-logratio).mean()
        approx_kl = ((ratio - 1) - logratio).mean()
        clipfrac = ((ratio - 1.0).abs() > config.clip_coef).float().mean()

    mb_advantages = advantages
    if config.norm_adv and len(advantages) > 1:  # one sample has no std (SB3 GH #325)
        mb_advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    # Policy loss: the clipped surrogate −min(ρ·A, clip(ρ, 1 ± ε)·A)
    pg_loss1 = -mb_advantages * ratio
    pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - config.clip_coef, 1 + config.clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()

    # Value loss
    if config.clip_vloss:
        v_loss_unclipped = (new_value - returns) ** 2
        v_clipped = old_value + torch.clamp(
            new_value - old_value, -config.clip_coef, config.clip_coef
        )
        v_loss_clipped = (v_clipped - returns) ** 2
        v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
    else:
        v_loss = 0.5 * ((new_value - returns) ** 2).mean()

    entropy_loss = entropy.mean()
    loss = pg_loss - config.ent_coef * entropy_loss + v_loss * config.vf_coef
    stats = {
        'loss': loss.item(),
        'policy_loss': pg_loss.item(),
        'value_loss': v_loss.item(),
        'entropy': entropy_loss.item(),
        'approx_kl': approx_kl.item(),
        'old_approx_kl': old_approx_kl.item(),
        'clipfrac': clipfrac.item(),
    }
    return loss, stats


def explained_variance(y_pred: torch.Tensor, y_true: torch.Tensor) -> float:
    """1 − Var[y − ŷ] / Var[y]: 1 is a perfect value function, ≤ 0 no better than a constant."""
    var_y = y_true.var(unbiased=False)
    if var_y == 0:
        return float('nan')
    return (1 - (y_true - y_pred).var(unbiased=False) / var_y).item()


def ppo_update(
    policy: PolicyValue,
    optimizer: torch.optim.Optimizer,
    rollouts: Sequence[Rollout],
    config: PPOConfig,
    generator: torch.Generator | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, float]:
    """Train the policy on rollouts: GAE per rollout, then update_epochs of shuffled minibatches.

    Each rollout is one actor's consecutive steps with its own bootstrap value, so advantages
    never run from one actor's stream into another's; the update then draws minibatches from all
    of them together. The batch is every rollout's steps (B = Σ T) and a minibatch is B divided
    by `num_minibatches` (CleanRL's rule), so more actors give larger minibatches and the same
    number of gradient steps per update. A recurrent policy's minibatches are whole rollouts
    instead (the same number of them, each re-run from its initial state: CleanRL's LSTM PPO).

    Args:
        policy: The actor-critic that acted the rollouts (or a close successor).
        optimizer: Its optimizer.
        rollouts: Each T steps with the behaviour policy's log-probs and values.
        config: Hyperparameters.
        generator: Seeds the minibatch shuffling (CPU).
        should_stop: Checked before each minibatch; True ends the update there.

    Returns:
        Diagnostics averaged over minibatches, plus explained_variance, grad_norm (before
        clipping) and first_epoch_max_ratio_error: max |ρ − 1| on the first minibatch, ~0 when
        the policy is still the behaviour policy.
    """
    if not rollouts:
        raise ValueError('ppo_update needs at least one rollout')
    gae = [
        compute_gae(r.rewards, r.values, r.next_value, config.gamma, config.gae_lambda)
        for r in rollouts
    ]
    # Batched by unit: a step (feed-forward) or a whole rollout (recurrent: (S, T, ...)).
    recurrent = rollouts[0].state is not None
    join = torch.stack if recurrent else torch.cat
    b_advantages = join([advantages for advantages, _ in gae])
    b_returns = join([returns for _, returns in gae])
    b_obs = join([r.obs for r in rollouts])
    b_actions = join([r.actions for r in rollouts])
    b_logprobs = join([r.logprobs for r in rollouts])
    b_values = join([r.values for r in rollouts])
    b_context = None if rollouts[0].context is None else join([r.context for r in rollouts])
    batch_size = len(b_obs)
    minibatch_size = max(1, batch_size // config.num_minibatches)

    def evaluate(units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log π(a), entropy, V) of the minibatch's steps, flat."""
        context = None if b_context is None else b_context[units]
        if recurrent:
            states = torch.stack([rollouts[i].state for i in units.tolist()])
            resets = torch.stack([rollouts[i].resets for i in units.tolist()])
            scored = policy.sequence(b_obs[units], b_actions[units], resets, states, context)
            return tuple(x.flatten() for x in scored)
        _, log_prob, entropy, value = policy.get_action_and_value(
            b_obs[units], b_actions[units], context
        )
        return log_prob, entropy, value

    stats: defaultdict[str, list[float]] = defaultdict(list)
    first_epoch_max_ratio_error = float('nan')
    for epoch in range(config.update_epochs):
        b_inds = torch.randperm(batch_size, generator=generator)
        for start in range(0, batch_size, minibatch_size):
            if should_stop():
                break
            mb_inds = b_inds[start : start + minibatch_size]
            newlogprob, entropy, newvalue = evaluate(mb_inds)
            mb_logprobs = b_logprobs[mb_inds].flatten()
            if epoch == 0 and start == 0:
                with torch.no_grad():
                    ratio_error = (newlogprob - mb_logprobs).exp().sub(1).abs().max()
                first_epoch_max_ratio_error = ratio_error.item()
            loss, mb_stats = ppo_loss(
                newlogprob,
                mb_logprobs,
                b_advantages[mb_inds].flatten(),
                newvalue,
                b_values[mb_inds].flatten(),
                b_returns[mb_inds].flatten(),
                entropy,
                config,
            )

            optimizer.zero_grad()
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
            optimizer.step()

            for key, value in mb_stats.items():
                stats[key].append(value)
            stats['grad_norm'].append(grad_norm.item())

        if should_stop() or (
            config.target_kl is not None and mb_stats['approx_kl'] > config.target_kl
        ):
            break

    result = {key: sum(values) / len(values) for key, values in stats.items()}
    result['explained_variance'] = explained_variance(b_values, b_returns)
    result['first_epoch_max_ratio_error'] = first_epoch_max_ratio_error
    return result


class EntropyCoefficient:
    """PPO's entropy coefficient: fixed, or raised while the entropy is below a target.

    With `config.target_entropy` set, after each update log(ent_coef) moves up by ADAPT_RATE per
    nat the update's mean entropy was below the target, and back down when above, but never
    below the configured ent_coef nor above MAX: a floor under the policy's entropy that costs
    nothing while the policy stays above it. Why: with a fixed 0.001 the policies' entropy fell
    from 1.94 to -0.9 nats by 2.5e5 steps and to -2.9 by 5e5, and e3b's then ran in circles
    (training seed 0: 23.1 cells at 2.5e5, 11.1 at 5e5); with a fixed 0.01 they stayed near
    uniform and explored no better than random.
    """

    ADAPT_RATE = 0.1
    MAX = 0.1

    def __init__(self, config: PPOConfig) -> None:
        self.target = config.target_entropy
        self.floor = self.value = config.ent_coef

    def adapt(self, entropy: float) -> None:
        """After an update whose mean entropy was `entropy`."""
        if self.target is None or not math.isfinite(entropy):
            return
        log_value = math.log(self.value) + self.ADAPT_RATE * (self.target - entropy)
        self.value = min(self.MAX, max(self.floor, math.exp(log_value)))

    def state_dict(self) -> dict[str, float]:
        return {'ent_coef': self.value}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.value = float(state['ent_coef'])
