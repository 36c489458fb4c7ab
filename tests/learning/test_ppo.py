"""GAE, the PPO loss and the update (pamiq.learning.ppo)."""

from __future__ import annotations

import dataclasses
import math

from pamiq.learning.models import PolicyValue
from pamiq.learning.ppo import (
    EntropyCoefficient,
    PPOConfig,
    Rollout,
    compute_gae,
    ppo_loss,
    ppo_update,
)
import pytest
import torch


def test_gae_three_steps_by_hand():
    rewards = torch.tensor([1.0, 0.0, 2.0])
    values = torch.tensor([0.5, 1.0, 1.5])
    # γ = 0.99, λ = 0.95, so γλ = 0.9405; V(o_3) = 2.
    # t=2: δ = 2 + 0.99·2   − 1.5 = 2.48   A = 2.48
    # t=1: δ = 0 + 0.99·1.5 − 1   = 0.485  A = 0.485 + 0.9405·2.48    = 2.81744
    # t=0: δ = 1 + 0.99·1   − 0.5 = 1.49   A = 1.49  + 0.9405·2.81744 = 4.13980232
    # returns = A + V = [4.63980232, 3.81744, 3.98]
    for next_value in (torch.tensor(2.0), torch.tensor([2.0])):
        advantages, returns = compute_gae(rewards, values, next_value, 0.99, 0.95)
        torch.testing.assert_close(advantages, torch.tensor([4.13980232, 2.81744, 2.48]))
        torch.testing.assert_close(returns, torch.tensor([4.63980232, 3.81744, 3.98]))


@pytest.mark.parametrize('gamma', [0.5, 0.99])
@pytest.mark.parametrize('gae_lambda', [0.0, 0.95, 1.0])
def test_gae_constant_value_trick(gamma, gae_lambda):
    # SB3's tests/test_gae.py: V ≡ 0 and reward 1 only on the last step of each 4-step episode,
    # so A_t = (γλ)^k and, for λ = 1, the return is the Monte-Carlo γ^k (k steps to the end).
    episode, episodes = 4, 3
    rewards = torch.tensor([0.0, 0.0, 0.0, 1.0] * episodes)
    dones = torch.tensor([0.0, 0.0, 0.0, 1.0] * episodes)
    values = torch.zeros_like(rewards)
    advantages, returns = compute_gae(rewards, values, torch.tensor(5.0), gamma, gae_lambda, dones)
    steps_to_end = torch.tensor([episode - 1 - t % episode for t in range(episode * episodes)])
    expected = (gamma * gae_lambda) ** steps_to_end.double()
    torch.testing.assert_close(advantages, expected.float())
    torch.testing.assert_close(returns, expected.float())


def loss_inputs(batch: int = 8) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        'new_logprob': torch.randn(batch),
        'old_logprob': torch.randn(batch),
        'advantages': torch.randn(batch),
        'new_value': torch.randn(batch),
        'old_value': torch.randn(batch),
        'returns': torch.randn(batch),
        'entropy': torch.rand(batch),
    }


@pytest.mark.parametrize('name', ['advantages', 'returns', 'old_value', 'new_value'])
def test_ppo_loss_rejects_column_vectors(name):
    # The original's trajectory tensors were (B, 1) against (B,) log-probs and values.
    inputs = loss_inputs()
    inputs[name] = inputs[name].unsqueeze(-1)
    with pytest.raises(ValueError, match=rf'{name} must have shape \(8,\), got \(8, 1\)'):
        ppo_loss(**inputs, config=PPOConfig())


def test_ppo_loss_rejects_mismatched_lengths():
    inputs = loss_inputs()
    inputs['entropy'] = inputs['entropy'][:5]
    with pytest.raises(ValueError, match='entropy'):
        ppo_loss(**inputs, config=PPOConfig())


def test_broadcast_bug_cancels_the_policy_gradient():
    # Why the shape check exists: with A as (B, 1) and ρ as (B,), −A·ρ is (B, B),
    # [i, j] = −A_i·ρ_j, so ∂loss/∂ρ_j = −mean(A)/B, which is 0 for normalised A.
    torch.manual_seed(0)
    advantages = torch.randn(8)
    advantages = (advantages - advantages.mean()) / advantages.std()

    def surrogate_grad(adv: torch.Tensor) -> torch.Tensor:
        ratio = torch.ones(8, requires_grad=True)
        pg_loss1 = -adv * ratio
        pg_loss2 = -adv * torch.clamp(ratio, 0.9, 1.1)
        torch.max(pg_loss1, pg_loss2).mean().backward()
        return ratio.grad

    correct = surrogate_grad(advantages)
    broadcast = surrogate_grad(advantages.unsqueeze(-1))
    torch.testing.assert_close(correct, -advantages / 8)  # each action pushed by its own A_i
    assert correct.abs().max() > 0.05
    assert broadcast.abs().max() < 1e-7


def test_ppo_loss_by_hand():
    # One sample, ρ = e^0.5 ≈ 1.6487 > 1 + ε: A = 2 takes the clipped branch: −2·1.1 = −2.2.
    # Value: unclipped (3 − 1)² = 4; clipped V = 0 + 0.1 → (0.1 − 1)² = 0.81; 0.5·max = 2.
    config = PPOConfig(norm_adv=False, ent_coef=0.1, vf_coef=0.5)
    loss, stats = ppo_loss(
        new_logprob=torch.tensor([0.5]),
        old_logprob=torch.tensor([0.0]),
        advantages=torch.tensor([2.0]),
        new_value=torch.tensor([3.0]),
        old_value=torch.tensor([0.0]),
        returns=torch.tensor([1.0]),
        entropy=torch.tensor([1.5]),
        config=config,
    )
    assert stats['policy_loss'] == pytest.approx(-2.2)
    assert stats['value_loss'] == pytest.approx(2.0)
    assert stats['clipfrac'] == 1.0
    assert stats['old_approx_kl'] == pytest.approx(-0.5)
    assert stats['approx_kl'] == pytest.approx(torch.tensor(0.5).exp().item() - 1 - 0.5)
    assert loss.item() == pytest.approx(-2.2 - 0.1 * 1.5 + 0.5 * 2.0)


def make_rollout(policy: PolicyValue, steps: int = 16, rewards=None) -> Rollout:
    """Act `steps` random frames with `policy` itself, as the agent does."""
    obs = torch.rand(steps, 3, 84, 84)
    with torch.no_grad():
        actions, logprobs, _, values = policy.get_action_and_value(obs)
        next_value = policy.get_value(torch.rand(1, 3, 84, 84))
    if rewards is None:
        rewards = torch.rand(steps)
    return Rollout(
        obs,
        actions,
        logprobs,
        values,
        rewards(actions) if callable(rewards) else rewards,
        next_value,
    )


@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_ratio_is_one_on_the_first_minibatch(action_space):
    torch.manual_seed(0)
    policy = PolicyValue(action_space)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    config = PPOConfig(update_epochs=1)
    stats = ppo_update(
        policy, optimizer, [make_rollout(policy)], config, torch.Generator().manual_seed(0)
    )
    assert stats['first_epoch_max_ratio_error'] < 1e-5
    for key in (
        'loss',
        'policy_loss',
        'value_loss',
        'entropy',
        'approx_kl',
        'old_approx_kl',
        'clipfrac',
    ):
        assert torch.isfinite(torch.tensor(stats[key])), key
    assert 0.0 <= stats['clipfrac'] <= 1.0
    assert stats['explained_variance'] <= 1.0


def test_ppo_update_moves_the_mean_action_toward_advantaged_actions():
    # γ = 0 and V ≈ 0 make A_t ≈ r_t = −‖a_t − 0.5‖², so PPO should pull tanh(mean) toward +0.5.
    torch.manual_seed(0)
    policy = PolicyValue('continuous')
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3, eps=1e-5)
    config = PPOConfig(gamma=0.0, update_epochs=2, clip_coef=0.2)
    probe = torch.rand(8, 3, 84, 84)

    def distance_to_target() -> float:
        with torch.no_grad():
            return (torch.tanh(policy.actor_mean(policy.trunk(probe))) - 0.5).abs().mean().item()

    before = distance_to_target()
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        rollout = make_rollout(policy, 32, lambda a: -((a - 0.5) ** 2).sum(-1))
        stats = ppo_update(policy, optimizer, [rollout], config, generator)
        assert torch.isfinite(torch.tensor([stats['approx_kl'], stats['clipfrac']])).all()
    assert distance_to_target() < before - 0.1


def test_gradients_are_clipped_to_max_grad_norm():
    torch.manual_seed(0)
    policy = PolicyValue('discrete')
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    norms = []

    def record_norm(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group['params']]
        norms.append(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])).item())

    optimizer.register_step_pre_hook(record_norm)
    config = dataclasses.replace(
        PPOConfig(), max_grad_norm=0.01, update_epochs=1, num_minibatches=2
    )
    stats = ppo_update(policy, optimizer, [make_rollout(policy, 16, torch.randn(16) * 10)], config)
    assert len(norms) == 2  # 16 steps in 2 minibatches
    assert max(norms) <= 0.01 * (1 + 1e-4)
    assert stats['grad_norm'] > 0.01  # the unclipped norm: clipping really acted


def test_target_kl_stops_the_epochs_early():
    torch.manual_seed(0)
    policy = PolicyValue('discrete')
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    steps = []
    optimizer.register_step_pre_hook(lambda *_: steps.append(1))
    # approx_kl ≥ 0 always exceeds it
    config = PPOConfig(target_kl=-1.0, update_epochs=3, num_minibatches=2)
    ppo_update(policy, optimizer, [make_rollout(policy, 16)], config)
    assert len(steps) == 2  # one epoch of two minibatches


def test_several_rollouts_get_their_own_advantages_and_larger_minibatches(monkeypatch):
    """Two actors' rollouts: GAE never runs across them, and the minibatch grows with them."""
    torch.manual_seed(0)
    policy = PolicyValue('continuous')
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    first = make_rollout(policy, 16, torch.zeros(16))
    second = make_rollout(policy, 16, torch.ones(16) * 5)
    config = PPOConfig(update_epochs=1, num_minibatches=2, norm_adv=False)
    seen = []
    original = ppo_loss

    def spy(new_logprob, old_logprob, advantages, *rest):
        seen.append(advantages.detach().clone())
        return original(new_logprob, old_logprob, advantages, *rest)

    monkeypatch.setattr('pamiq.learning.ppo.ppo_loss', spy)
    ppo_update(policy, optimizer, [first, second], config, torch.Generator().manual_seed(0))
    assert [len(a) for a in seen] == [16, 16]  # 32 steps / 2 minibatches
    expected = torch.cat(
        [
            compute_gae(r.rewards, r.values, r.next_value, config.gamma, config.gae_lambda)[0]
            for r in (first, second)
        ]
    )
    assert torch.allclose(torch.sort(torch.cat(seen)).values, torch.sort(expected).values)
    # One GAE over the joined steps would carry the second rollout's rewards into the first's
    # advantages: the per-rollout ones differ from that.
    joined = compute_gae(
        torch.cat([first.rewards, second.rewards]),
        torch.cat([first.values, second.values]),
        second.next_value,
        config.gamma,
        config.gae_lambda,
    )[0]
    assert not torch.allclose(expected[:16], joined[:16])


def test_an_update_without_rollouts_is_refused():
    policy = PolicyValue('continuous')
    optimizer = torch.optim.Adam(policy.parameters())
    with pytest.raises(ValueError, match='at least one rollout'):
        ppo_update(policy, optimizer, [], PPOConfig())


def test_a_stop_request_ends_the_update_at_the_next_minibatch():
    torch.manual_seed(0)
    policy = PolicyValue('continuous')
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    steps = []
    optimizer.register_step_pre_hook(lambda *_: steps.append(1))
    config = PPOConfig(update_epochs=3, num_minibatches=4)
    ppo_update(
        policy, optimizer, [make_rollout(policy, 16)], config, should_stop=lambda: bool(steps)
    )
    assert len(steps) == 1  # of 12: a trainer asked to stop does not finish the update


def test_the_entropy_coefficient_rises_below_its_target_and_never_drops_under_its_start():
    fixed = EntropyCoefficient(PPOConfig(ent_coef=0.001))
    fixed.adapt(-3.0)
    assert fixed.value == 0.001

    held = EntropyCoefficient(PPOConfig(ent_coef=0.001, target_entropy=1.0))
    held.adapt(2.0)  # above the target: the configured coefficient is the floor
    assert held.value == 0.001
    held.adapt(0.0)  # one nat below: the bonus grows
    assert held.value == pytest.approx(0.001 * math.exp(EntropyCoefficient.ADAPT_RATE))
    held.adapt(1.5)  # half a nat above: it comes back down, to the floor at most
    assert held.value == pytest.approx(0.001 * math.exp(EntropyCoefficient.ADAPT_RATE / 2))
    for _ in range(10_000):
        held.adapt(-5.0)
    assert held.value == EntropyCoefficient.MAX
    held.adapt(float('nan'))  # an update that reported no entropy leaves it alone
    assert held.value == EntropyCoefficient.MAX

    copy = EntropyCoefficient(PPOConfig(ent_coef=0.5, target_entropy=1.0))
    copy.load_state_dict(held.state_dict())
    assert copy.value == held.value
