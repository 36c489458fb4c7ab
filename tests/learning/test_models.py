"""Shapes, sizes and distributions of the networks (pamiq.learning.models, .vision)."""

from __future__ import annotations

import numpy as np
from pamiq.learning.models import (
    VAE,
    ForwardDynamics,
    InverseDynamics,
    PolicyValue,
    SmallDeconvNet,
    action_feature_dim,
    action_features,
    build_models,
    squashed_normal_entropy,
)
from pamiq.learning.vision import SmallConvNet, observations_to_tensor
from pamiq.vocabulary import DISCRETE_ACTION_CHOICES
import pytest
import torch
from torch.distributions import Normal

B = 4


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def obs() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(B, 3, 84, 84)


def random_actions(action_space: str, batch: int = B) -> torch.Tensor:
    if action_space == 'continuous':
        return torch.rand(batch, 3) * 2 - 1
    return torch.stack([torch.randint(n, (batch,)) for n in DISCRETE_ACTION_CHOICES], dim=-1)


def test_parameter_counts_match_the_original():
    # Spec §4.1, §4.3-4.6 and §4.9 (verified by running the original's components).
    assert count(SmallConvNet(512)) == 1_682_080
    assert count(SmallConvNet(1024)) == 3_288_224
    assert count(ForwardDynamics(3)) == 2_657_280
    assert count(InverseDynamics(3).predictor) == 790_534
    assert count(SmallDeconvNet(512)) == 578_455
    assert count(PolicyValue('continuous')) == 2_210_983
    assert count(PolicyValue('discrete')) == 2_207_392 + 6_656 + 513


def test_observations_to_tensor_scales_by_256_and_moves_channels_first():
    frames = np.random.default_rng(0).integers(0, 256, (2, 84, 84, 3), dtype=np.uint8)
    out = observations_to_tensor(frames)
    assert out.shape == (2, 3, 84, 84) and out.dtype == torch.float32
    assert out[1, 2, 5, 7] == frames[1, 5, 7, 2] / 256.0
    torch.testing.assert_close(out, torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 256)
    assert observations_to_tensor(torch.from_numpy(frames[0])).shape == (1, 3, 84, 84)
    assert observations_to_tensor(np.full((84, 84, 3), 255, np.uint8)).max() == 255 / 256
    with pytest.raises(ValueError, match='84, 84, 3'):
        observations_to_tensor(np.zeros((3, 84, 84), np.uint8))


def test_action_features():
    continuous = torch.tensor([[0.5, -0.25, 1.0]])
    assert torch.equal(action_features(continuous, 'continuous'), continuous)
    discrete = torch.tensor([[2, 0, 1, 1, 0], [0, 1, 2, 0, 1]])
    expected = torch.tensor(
        [
            [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1, 0],
            [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 1],
        ],
        dtype=torch.float32,
    )
    assert torch.equal(action_features(discrete, 'discrete'), expected)
    assert action_feature_dim('continuous') == 3
    assert action_feature_dim('discrete') == 13
    with pytest.raises(ValueError, match='action_space'):
        action_feature_dim('joystick')


def test_encoders_and_forward_dynamics_shapes(obs):
    inverse = InverseDynamics(3)
    assert SmallConvNet(512)(obs).shape == (B, 512)
    assert inverse.embed(obs).shape == (B, 512)
    prev, action = random_actions('continuous'), random_actions('continuous')
    assert inverse.loss(prev, obs, action, obs).shape == ()

    vae = VAE()
    assert vae.embed(obs).shape == (B, 512)
    assert torch.equal(vae.embed(obs), vae.distribution(obs).loc)  # μ, no sampling
    assert vae.decoder(torch.randn(B, 512)).shape == (B, 3, 84, 84)
    assert all(x.shape == () for x in vae.loss(obs))

    dynamics = ForwardDynamics(13)
    features = action_features(random_actions('discrete'), 'discrete')
    assert dynamics(features, torch.randn(B, 512), features).shape == (B, 512)
    assert dynamics.loss(features, torch.randn(B, 512), features, torch.randn(B, 512)).shape == ()


def test_vae_loss_is_finite_and_decreases(obs):
    torch.manual_seed(0)
    vae = VAE()
    optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        total, reconstruction, kl = vae.loss(obs)
        assert torch.isfinite(total) and torch.isfinite(reconstruction) and torch.isfinite(kl)
        torch.testing.assert_close(total, reconstruction + 0.01 * kl)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        losses.append(total.item())
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_get_action_and_value_shapes_and_ranges(action_space, obs):
    policy = PolicyValue(action_space)
    action, log_prob, entropy, value = policy.get_action_and_value(obs)
    for x in (log_prob, entropy, value):
        assert x.shape == (B,)
        assert torch.isfinite(x).all()
    assert policy.get_value(obs).shape == (B,)
    if action_space == 'continuous':
        assert action.shape == (B, 3) and action.dtype == torch.float32
        assert (action.abs() < 1).all()
    else:
        assert action.shape == (B, 5) and action.dtype == torch.int64
        assert ((action >= 0) & (action < torch.tensor(DISCRETE_ACTION_CHOICES))).all()


@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_log_prob_of_a_stored_action_is_reproduced_exactly(action_space, obs):
    torch.manual_seed(1)
    policy = PolicyValue(action_space)
    with torch.no_grad():
        action, log_prob, entropy, value = policy.get_action_and_value(obs)
        _, again, entropy_again, value_again = policy.get_action_and_value(obs, action)
    assert torch.equal(again, log_prob)
    assert torch.equal(entropy_again, entropy)
    assert torch.equal(value_again, value)


def test_squashed_entropy_is_the_entropy_of_the_action_taken():
    torch.manual_seed(2)
    loc = torch.tensor([0.0, 0.0, 0.0, 1.5, -2.0])
    scale = torch.tensor([0.1, 0.9, 3.0, 0.5, 2.0])
    base = Normal(loc, scale)
    u = base.sample((200_000,)).double()  # float32's tanh rounds to ±1 beyond |u| ≈ 9
    monte_carlo = base.entropy() + torch.log(1.0 - torch.tanh(u).pow(2)).mean(0).float()
    assert torch.allclose(squashed_normal_entropy(base), monte_carlo, atol=0.01)


def test_squashed_entropy_peaks_at_a_finite_width():
    # The bonus on the Gaussian's own entropy rewards σ → ∞ (bang-bang axes); the action's entropy
    # rises to a maximum below log 2 (the uniform on (−1, 1)) and falls beyond it.
    widths = torch.linspace(0.05, 10.0, 400)
    entropy = squashed_normal_entropy(Normal(torch.zeros_like(widths), widths))
    best = widths[entropy.argmax()].item()
    assert 0.5 < best < 1.5
    assert entropy.max().item() < np.log(2.0)
    assert entropy[-1] < entropy.max() - 1.0
    assert (Normal(0.0, widths).entropy().diff() > 0).all()


def test_continuous_log_prob_survives_saturated_actions(obs):
    # A large mean saturates tanh: a rounds to ±1 in float32, which the clamp keeps scoreable.
    policy = PolicyValue('continuous')
    with torch.no_grad():
        policy.actor_mean.bias.fill_(20.0)
        action, log_prob, _, _ = policy.get_action_and_value(obs)
        _, again, _, _ = policy.get_action_and_value(obs, torch.ones(B, 3))
    assert (action < 1).all() and torch.isfinite(log_prob).all()
    assert torch.equal(again, log_prob)


def test_continuous_log_prob_matches_change_of_variables():
    # log π(a) = Σ_d [log N(u_d; μ, σ) − log(1 − a_d²)] with u = atanh(a), checked by hand.
    policy = PolicyValue('continuous')
    obs = torch.rand(1, 3, 84, 84)
    action = torch.tensor([[0.3, -0.6, 0.9]])
    with torch.no_grad():
        hidden = policy.trunk(obs)
        mean = policy.actor_mean(hidden)
        std = torch.nn.functional.softplus(policy.actor_std(hidden)) + 1e-7
        _, log_prob, _, _ = policy.get_action_and_value(obs, action)
    u = torch.atanh(action)
    normal = -((u - mean) ** 2) / (2 * std**2) - torch.log(std) - 0.5 * np.log(2 * np.pi)
    expected = (normal - torch.log(1 - action**2 + 1e-6)).sum(-1)
    torch.testing.assert_close(log_prob, expected)


def test_orthogonal_init_flag():
    torch.manual_seed(0)
    policy = PolicyValue('continuous')
    weight = policy.trunk[1].weight  # a square 512×512 Linear: W Wᵀ = 2·I for gain √2
    torch.testing.assert_close(weight @ weight.T, 2 * torch.eye(512), atol=1e-4, rtol=0)
    assert policy.actor_mean.weight.norm(dim=1).max() < 0.011  # gain 0.01 rows
    assert (policy.critic.bias == 0).all()
    default = PolicyValue('continuous', orthogonal_init=False)
    assert (default.critic.bias != 0).any()


@pytest.mark.parametrize('encoder', ['inverse_dynamics', 'vae'])
@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_build_models_runs_one_agent_step(encoder, action_space, obs):
    models = build_models(encoder, action_space)
    assert set(models) == {'encoder', 'forward_dynamics', 'policy'}
    assert isinstance(models['encoder'], InverseDynamics if encoder == 'inverse_dynamics' else VAE)
    with torch.no_grad():
        embed = models['encoder'].embed(obs)  # z_t
        action, log_prob, _, value = models['policy'].get_action_and_value(obs)  # a_t
        features = action_features(action, action_space)
        predicted = models['forward_dynamics'](torch.zeros_like(features), embed, features)
    assert embed.shape == predicted.shape == (B, 512)
    assert features.shape == (B, action_feature_dim(action_space))
    assert log_prob.shape == value.shape == (B,)


def test_build_models_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"encoder must be one of .* got 'rnd'"):
        build_models('rnd', 'continuous')
    with pytest.raises(ValueError, match='action_space'):
        build_models('vae', 'joystick')
