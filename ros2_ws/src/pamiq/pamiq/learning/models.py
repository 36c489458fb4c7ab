"""The networks of curiosity-PPO: encoder, forward dynamics and policy/value, in plain PyTorch.

[Original design] PrimitiveAMI: a frame o_t is embedded as z_t = φ(o_t) by an
inverse-dynamics encoder (or a VAE's mean); a forward model predicts ẑ_{t+1} = f(a_{t−1}, z_t, a_t)
and its error is the curiosity reward; a separate CNN trunk feeds the PPO policy and value heads.
[This implementation] the same layers and sizes, one class per network, each with its own loss,
so the trainer calls `loss(...)` and the agent calls `embed(...)`/`forward(...)`. Two deliberate
differences in the policy: no double tanh on the Gaussian mean, and CleanRL's orthogonal init.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal, kl_divergence
import torch.nn.functional as F

from pamiq.learning.vision import SmallConvNet
from pamiq.vocabulary import (
    ACTION_SPACES,
    CONTINUOUS_ACTION_DIM,
    DEFAULT_SENSES,
    DISCRETE_ACTION_CHOICES,
    EMBEDDING_DIM,
    ENCODERS,
    MODEL_NAMES,
    OBSERVATION_SHAPE,
    OBSERVATION_SIZE,
)

# The original's Adam(lr=1e-4, betas=(0.9, 0.999)) for every model.
LEARNING_RATES = {'encoder': 1e-4, 'forward_dynamics': 1e-4, 'policy': 1e-4}

MIN_STD = 1e-7  # the original's min_stddev: σ = softplus(s) + 1e-7 keeps σ > 0
TANH_BOUND = 1.0 - 1e-6  # |a| ≤ this, so atanh(a) is finite and log(1 − a²) is defined
# Gauss–Hermite nodes and weights for E_{u~N(μ,σ)}[g(u)] ≈ Σ_k w_k g(μ + σ√2 x_k) / √π: the
# squashed entropy's correction term, deterministic (no draw from the RNG) and differentiable;
# 32 nodes are within 0.003 nats of the integral up to σ = 3.
_HERMITE_NODES, _HERMITE_WEIGHTS = (
    torch.tensor(v, dtype=torch.float32) for v in np.polynomial.hermite.hermgauss(32)
)


def squashed_normal_entropy(base: Normal) -> torch.Tensor:
    """H[tanh(u)] for u ~ N(μ, σ) per dimension: H[u] + E[log(1 − tanh(u)²)].

    The Gaussian's own entropy grows without bound with σ, while the action a = tanh(u) only
    saturates at ±1: an entropy bonus on H[u] pays for ever wider, bang-bang axes. H[a] is
    bounded (at most log 2 per axis, the uniform on (−1, 1)), so the bonus cannot outgrow the
    reward. log(1 − tanh(u)²) = 2 (log 2 − u − softplus(−2u)), stable for large |u|.
    """
    nodes = _HERMITE_NODES.to(base.loc)
    weights = _HERMITE_WEIGHTS.to(base.loc) / math.sqrt(math.pi)
    u = base.loc.unsqueeze(-1) + base.scale.unsqueeze(-1) * math.sqrt(2.0) * nodes
    log_jacobian = 2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))
    return base.entropy() + (log_jacobian * weights).sum(-1)


def action_feature_dim(action_space: str) -> int:
    """Width of `action_features`: 3 axes, or 3+3+3+2+2 = 13 one-hot slots."""
    if action_space == 'continuous':
        return CONTINUOUS_ACTION_DIM
    if action_space == 'discrete':
        return sum(DISCRETE_ACTION_CHOICES)
    raise ValueError(f'action_space must be one of {ACTION_SPACES}, got {action_space!r}')


def action_features(action: torch.Tensor, action_space: str) -> torch.Tensor:
    """Actions as the float vectors the dynamics models read.

    Args:
        action: (B, 3) float axes, or (B, 5) long category indices.
        action_space: 'continuous' or 'discrete'.

    Returns:
        (B, 3) float32 (the axes themselves), or (B, 13) float32 concatenated one-hots.
    """
    action_feature_dim(action_space)  # validates the name
    if action_space == 'continuous':
        return action.to(torch.float32)
    one_hots = [F.one_hot(action[..., k].long(), n) for k, n in enumerate(DISCRETE_ACTION_CHOICES)]
    return torch.cat(one_hots, dim=-1).to(torch.float32)


class InverseDynamics(nn.Module):
    """Encoder φ trained by predicting the actions around a transition (the default embedding).

    From (z_t, z_{t+1}) it predicts (â_{t−1}, â_t); only this loss trains φ.

    The embedding is layer-normalised (the original's SmallConvNet `do_layernorm` option, there
    switched off): nothing else bounds an inverse-dynamics feature's scale, so without it the
    embedding grows while φ trains, and with it the forward model's loss and the curiosity
    reward drift upwards for reasons that have nothing to do with novelty.
    """

    def __init__(
        self,
        action_dim: int,
        normalize_embedding: bool = True,
        features: nn.Module | None = None,
    ) -> None:
        super().__init__()
        # Several senses' features (pamiq.learning.multimodal) normalise each sense themselves.
        self.normalize_embedding = normalize_embedding and features is None
        self.encoder = SmallConvNet(EMBEDDING_DIM) if features is None else features
        dim = EMBEDDING_DIM if features is None else features.dim
        self.predictor = nn.Sequential(
            nn.Linear(2 * dim, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 2 * action_dim),  # linear output: (â_{t−1}, â_t)
        )

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """z = φ(o): (B, 3, 84, 84) → (B, 512), zero mean and unit variance over the 512."""
        z = self.encoder(obs)
        return F.layer_norm(z, (EMBEDDING_DIM,)) if self.normalize_embedding else z

    def loss(
        self,
        prev_action_feat: torch.Tensor,
        obs: torch.Tensor,
        action_feat: torch.Tensor,
        next_obs: torch.Tensor,
    ) -> torch.Tensor:
        """MSE(â_{t−1}, a_{t−1}) + MSE(â_t, a_t), each mean-reduced.

        Args:
            prev_action_feat: a_{t−1} features, (B, action_dim).
            obs: o_t, (B, 3, 84, 84).
            action_feat: a_t features, (B, action_dim).
            next_obs: o_{t+1}, (B, 3, 84, 84).

        Returns:
            Scalar loss.
        """
        z, next_z = self.embed(obs), self.embed(next_obs)
        prev_pred, pred = self.predictor(torch.cat([z, next_z], dim=-1)).chunk(2, dim=-1)
        loss = F.mse_loss(prev_pred, prev_action_feat) + F.mse_loss(pred, action_feat)
        if hasattr(self.encoder, 'auxiliary_loss'):  # senses besides vision reconstruct themselves
            loss = loss + self.encoder.auxiliary_loss(obs)
        return loss


class SmallDeconvNet(nn.Module):
    """The original's VAE decoder: 512 → 6×6 → 12 → 24 → 96, centre-cropped to 84×84.

    6×6 is the smallest start from which the three transposed convolutions reach ≥ 84. The
    learnable positional bias (init 0) is added after the crop; no output activation.
    """

    def __init__(self, dim_in: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.fc = nn.Linear(dim_in, 6 * 6)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(1, 128, kernel_size=4, stride=2, padding=1),  # 6 → 12
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(128, 64, kernel_size=8, stride=2, padding=3),  # 12 → 24
            nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(64, 3, kernel_size=8, stride=4, padding=2),  # 24 → 96
        )
        self.positional_bias = nn.Parameter(torch.zeros(OBSERVATION_SHAPE))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Map (B, 512) latents to (B, 3, 84, 84) frames."""
        x = self.net(self.fc(z).view(-1, 1, 6, 6))
        size = OBSERVATION_SIZE
        top, left = (x.shape[-2] - size) // 2, (x.shape[-1] - size) // 2
        return x[..., top : top + size, left : left + size] + self.positional_bias


class VAE(nn.Module):
    """Variational autoencoder whose mean μ is the embedding (the original's `vae` experiments)."""

    def __init__(self, kl_coef: float = 0.01) -> None:
        super().__init__()
        self.kl_coef = kl_coef  # the configs' 0.01 (the class default was 1.0)
        self.encoder = SmallConvNet(2 * EMBEDDING_DIM)  # → (μ, s)
        self.decoder = SmallDeconvNet(EMBEDDING_DIM)

    def distribution(self, obs: torch.Tensor) -> Normal:
        """q(z | o) = N(μ, σ) with σ = softplus(s) + 1e-7; batch shape (B, 512)."""
        mu, s = self.encoder(obs).chunk(2, dim=-1)
        return Normal(mu, F.softplus(s) + MIN_STD)

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        """z = μ(o), no sampling: (B, 3, 84, 84) → (B, 512)."""
        return self.distribution(obs).loc

    def loss(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction MSE + kl_coef · mean KL(N(μ, σ) ‖ N(0, 1)).

        Args:
            obs: o, (B, 3, 84, 84).

        Returns:
            Scalars (total, reconstruction, kl).
        """
        q = self.distribution(obs)
        reconstruction = F.mse_loss(self.decoder(q.rsample()), obs)
        kl = kl_divergence(q, Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))).mean()
        return reconstruction + self.kl_coef * kl, reconstruction, kl


class ForwardDynamics(nn.Module):
    """The original's "ResNet FD": ẑ_{t+1} = f(a_{t−1}, z_t, a_t) (from large-scale-curiosity).

    Every Linear reads c(x) = concat(a_{t−1}, x, a_t), so the actions reach every depth.
    2,657,280 parameters for action_dim 3.
    """

    def __init__(
        self, action_dim: int, embed_dim: int = EMBEDDING_DIM, hidden: int = 512, depth: int = 4
    ) -> None:
        super().__init__()
        width = hidden + 2 * action_dim
        self.fc_in = nn.Linear(embed_dim + 2 * action_dim, hidden)
        self.blocks = nn.ModuleList(
            nn.ModuleList([nn.Linear(width, hidden), nn.Linear(width, hidden)])
            for _ in range(depth)
        )
        self.fc_out = nn.Linear(width, embed_dim)

    def forward(
        self, prev_action_feat: torch.Tensor, embed: torch.Tensor, action_feat: torch.Tensor
    ) -> torch.Tensor:
        """Predict ẑ_{t+1}.

        Args:
            prev_action_feat: a_{t−1} features, (B, action_dim).
            embed: z_t, (B, 512).
            action_feat: a_t features, (B, action_dim).

        Returns:
            ẑ_{t+1}, (B, 512).
        """

        def c(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([prev_action_feat, x, action_feat], dim=-1)

        x = self.fc_in(c(embed))
        for first, second in self.blocks:
            y = F.leaky_relu(first(c(x)), 0.01)
            x = x + second(c(y))
        return self.fc_out(c(x))

    def loss(
        self,
        prev_action_feat: torch.Tensor,
        embed: torch.Tensor,
        action_feat: torch.Tensor,
        next_embed: torch.Tensor,
    ) -> torch.Tensor:
        """MSE(ẑ_{t+1}, z_{t+1}) over batch and dims; pass embeddings computed without gradient."""
        return F.mse_loss(self(prev_action_feat, embed, action_feat), next_embed)


def layer_init(layer: nn.Module, std: float = math.sqrt(2), bias_const: float = 0.0) -> nn.Module:
    """CleanRL's `layer_init`: orthogonal weights with gain `std`, constant bias."""
    weight = torch.empty(layer.weight.shape)  # orthogonal_ needs a contiguous layout
    nn.init.orthogonal_(weight, std)
    with torch.no_grad():
        layer.weight.copy_(weight)
    if layer.bias is not None:
        nn.init.constant_(layer.bias, bias_const)
    return layer


class PolicyValue(nn.Module):
    """PPO actor-critic on its own CNN trunk (separate from the curiosity encoder).

    Continuous: a = tanh(u), u ~ N(mean, std), 3 axes in (−1, 1). The original used torchrl's
    TanhNormal with tanh_loc=True, i.e. u ~ N(tanh(mean), std) (a double tanh); here
    the base Normal's loc is the mean itself. Discrete: one Categorical per (3, 3, 3, 2, 2) button.
    `hidden`: the width of the two layers after the trunk (512 as the original; the compact
    preset's 288 features get 256). `context`: numbers the policy sees beside the frames (NGU's
    previous intrinsic reward: pamiq.learning.reward_input), joined to the trunk's features.
    `recurrent`: a GRU cell after the trunk carries a state from step to step (what the episode
    has shown so far), and the heads read its state; such a policy acts with `recurrent_step`
    and is trained on whole sequences with `sequence`.
    """

    def __init__(
        self,
        action_space: str,
        orthogonal_init: bool = True,
        features: nn.Module | None = None,
        hidden: int = 512,
        context: int = 0,
        recurrent: bool = False,
    ) -> None:
        super().__init__()
        action_feature_dim(action_space)  # validates the name
        self.action_space = action_space
        self.context = context
        self.trunk = nn.Sequential(  # as large-scale-curiosity's policy trunk
            SmallConvNet(512) if features is None else features,
            nn.Linear((512 if features is None else features.dim) + context, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
        )
        self.state_size = hidden if recurrent else 0
        self.memory = nn.GRUCell(hidden, hidden) if recurrent else None
        self.critic = nn.Linear(hidden, 1)
        if action_space == 'continuous':
            self.actor_mean = nn.Linear(hidden, CONTINUOUS_ACTION_DIM)
            self.actor_std = nn.Linear(hidden, CONTINUOUS_ACTION_DIM)  # σ = softplus(·) + 1e-7
            heads = [self.actor_mean, self.actor_std]
        else:
            self.actor_logits = nn.ModuleList(
                nn.Linear(hidden, n, bias=False) for n in DISCRETE_ACTION_CHOICES
            )
            heads = list(self.actor_logits)
        if orthogonal_init:
            # PPO implementation detail "orthogonal initialization of weights and constant
            # initialization of biases" (CleanRL): gain √2 in the trunk, 0.01 on the policy heads
            # (a near-uniform initial policy), 1.0 on the value head. The original kept
            # PyTorch's defaults.
            for layer in self.trunk.modules():
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    layer_init(layer)
            for head in heads:
                layer_init(head, std=0.01)
            layer_init(self.critic, std=1.0)
            if self.memory is not None:  # CleanRL's LSTM agent: orthogonal, gain 1, zero bias
                for name, parameter in self.memory.named_parameters():
                    if 'weight' in name:
                        nn.init.orthogonal_(parameter, 1.0)
                    else:
                        nn.init.constant_(parameter, 0.0)

    def hidden(self, obs: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        features = self.trunk[0](obs)
        if self.context:
            if context is None or context.shape != (len(obs), self.context):
                got = None if context is None else tuple(context.shape)
                wanted = (len(obs), self.context)
                raise ValueError(f'this policy needs a {wanted} context beside o, got {got}')
            features = torch.cat([features, context.to(features.dtype)], 1)
        return self.trunk[1:](features)

    def get_value(
        self,
        obs: torch.Tensor,
        context: torch.Tensor | None = None,
        state: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """V(o): (B, 3, 84, 84) → (B,); a recurrent policy's from the `state` before o."""
        hidden = self.hidden(obs, context)
        if self.memory is not None:
            hidden = self.memory(hidden, self.checked_state(state, len(obs)))
        return self.critic(hidden).squeeze(-1)

    def initial_state(self, batch: int) -> torch.Tensor:
        """The state at an episode's start: zeros, (batch, state_size)."""
        return torch.zeros(batch, self.state_size, device=self.critic.weight.device)

    def checked_state(self, state: torch.Tensor | None, batch: int) -> torch.Tensor:
        if state is None or state.shape != (batch, self.state_size):
            got = None if state is None else tuple(state.shape)
            raise ValueError(
                f'a recurrent policy needs a ({batch}, {self.state_size}) state, got {got}'
            )
        return state

    def recurrent_step(
        self,
        obs: torch.Tensor,
        state: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of a recurrent policy: (a sampled, log π(a), V, the state after o)."""
        state = self.memory(self.hidden(obs, context), self.checked_state(state, len(obs)))
        action, log_prob, _, value = self.heads(state)
        return action, log_prob, value, state

    def sequence(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        resets: torch.Tensor,
        state: torch.Tensor,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Score N sequences of T steps as a recurrent policy acted them: log π(a_t), the
        entropy and V(o_t), each (N, T).

        Args:
            obs: (N, T, *input) o_t; actions: (N, T, ...) a_t.
            resets: (N, T) bool, the state starts afresh before step t (o_t begins an episode).
            state: (N, state_size), the state before step 0.
            context: (N, T, k) for a policy with a context.
        """
        n, steps = resets.shape
        flat_context = None if context is None else context.flatten(0, 1)
        features = self.hidden(obs.flatten(0, 1), flat_context).view(n, steps, -1)
        state = self.checked_state(state, n)
        states = []
        for t in range(steps):
            state = self.memory(features[:, t], torch.where(resets[:, t, None], 0.0, state))
            states.append(state)
        _, log_prob, entropy, value = self.heads(
            torch.stack(states, 1).flatten(0, 1), actions.flatten(0, 1)
        )
        return log_prob.view(n, steps), entropy.view(n, steps), value.view(n, steps)

    def get_action_and_value(
        self,
        obs: torch.Tensor,
        action: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample a ~ π(·|o) (or score the given a) and evaluate V(o).

        Args:
            obs: o, (B, 3, 84, 84).
            action: Actions to score instead of sampling: (B, 3) float or (B, 5) long.
            context: (B, `context`) float, for a policy built with a context.

        Returns:
            action (B, 3) float in (−1, 1) or (B, 5) long; log π(a|o) (B,); entropy (B,);
            V(o) (B,).
        """
        if self.memory is not None:
            raise ValueError(
                'a recurrent policy acts with recurrent_step and learns with sequence'
            )
        return self.heads(self.hidden(obs, context), action)

    def heads(
        self, hidden: torch.Tensor, action: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The actor and critic on the last hidden layer: as get_action_and_value returns."""
        value = self.critic(hidden).squeeze(-1)
        if self.action_space == 'discrete':
            dists = [Categorical(logits=head(hidden)) for head in self.actor_logits]
            if action is None:
                action = torch.stack([d.sample() for d in dists], dim=-1)
            log_prob = sum(d.log_prob(action[:, k]) for k, d in enumerate(dists))
            entropy = sum(d.entropy() for d in dists)
            return action, log_prob, entropy, value

        base = Normal(self.actor_mean(hidden), F.softplus(self.actor_std(hidden)) + MIN_STD)
        if action is None:
            action = torch.tanh(base.sample())
        # Score a clamped a and u = atanh(a) on both paths, so the log-prob recomputed from a
        # stored action is exactly the one computed when it was sampled (ratio = 1 at epoch 1).
        action = action.clamp(-TANH_BOUND, TANH_BOUND)
        u = torch.atanh(action)
        # Change of variables a = tanh(u): log π(a) = Σ_d [log N(u_d) − log(1 − a_d²)].
        log_prob = (base.log_prob(u) - torch.log(1.0 - action.pow(2) + 1e-6)).sum(-1)
        # The entropy of the action taken, not of the Gaussian before tanh (the original's
        # approximation, an upper bound that the entropy bonus could raise without end).
        entropy = squashed_normal_entropy(base).sum(-1)
        return action, log_prob, entropy, value


def build_models(
    encoder: str, action_space: str, senses: tuple[str, ...] = DEFAULT_SENSES
) -> dict[str, nn.Module]:
    """The three trained networks: 'encoder', 'forward_dynamics' and 'policy'.

    Args:
        encoder: 'inverse_dynamics' (the original's default) or 'vae'.
        action_space: 'continuous' or 'discrete'.
        senses: What the models perceive; beyond vision alone, each sense has its own network
            and the embedding fuses them (pamiq.learning.multimodal). The VAE reconstructs
            frames only, so it learns from vision alone.

    Returns:
        Fresh modules keyed by the names of `LEARNING_RATES`.
    """
    action_dim = action_feature_dim(action_space)
    if tuple(senses) != DEFAULT_SENSES:
        from pamiq.learning.multimodal import SenseFeatures  # it builds on this module

        if encoder != 'inverse_dynamics':
            raise ValueError(
                f'senses {",".join(senses)} need encoder inverse_dynamics; '
                f'{encoder!r} learns from frames only'
            )
        features = SenseFeatures(tuple(senses))
        models = {
            'encoder': InverseDynamics(action_dim, features=features),
            'forward_dynamics': ForwardDynamics(action_dim, embed_dim=features.dim),
            'policy': PolicyValue(action_space, features=SenseFeatures(tuple(senses))),
        }
        assert tuple(models) == MODEL_NAMES
        return models
    if encoder == 'inverse_dynamics':
        encoder_model: nn.Module = InverseDynamics(action_dim)
    elif encoder == 'vae':
        encoder_model = VAE()
    else:
        raise ValueError(f'encoder must be one of {ENCODERS}, got {encoder!r}')
    models = {
        'encoder': encoder_model,
        'forward_dynamics': ForwardDynamics(action_dim),
        'policy': PolicyValue(action_space),
    }
    assert tuple(models) == MODEL_NAMES
    return models
