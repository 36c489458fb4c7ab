"""One learning update of a policy and its intrinsic reward: the same for `pamiq train` (many
worlds) and the live trainer (its actors), so the harness trains what the graph trains.

An update takes S streams' T consecutive steps each (`StreamRollouts`), then:
(a) the reward's own models train on every transition (pamiq.learning.rewards);
(b) each stream's rewards are divided by the running std of their discounted sum (one
    RewardNormalizer stream per name: a world, an actor);
(c) PPO trains the policy on all S rollouts, GAE per stream, in minibatches of MINIBATCH
    samples (the size at which the CPU's per-sample cost levels off): S*T / MINIBATCH of them per
    epoch, `update_epochs` epochs.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass

import torch

from pamiq.learning.config import BATCHED_POLICY_LEARNING_RATE, BATCHED_PPO, PPOConfig
from pamiq.learning.curiosity import RewardNormalizer
from pamiq.learning.models import PolicyValue
from pamiq.learning.ppo import EntropyCoefficient, Rollout, ppo_update
from pamiq.learning.presets import ModelPreset
from pamiq.learning.reward_input import CONTEXT
from pamiq.learning.rewards import IntrinsicReward, Transitions, build_reward

MINIBATCH = 256


def build_policy_and_reward(
    preset: ModelPreset,
    action_space: str,
    reward: str,
    horizon: int,
    seed: int,
    reward_learning_rate: float | None = None,
    reward_input: bool = False,
    recurrent: bool = False,
) -> tuple[PolicyValue, IntrinsicReward]:
    """The policy and the reward's models, initialised from `seed`: the agent and the trainer
    build the same initial weights this way. `reward_input`: the policy also sees its previous
    intrinsic reward (pamiq.learning.reward_input); `recurrent`: it carries a state through the
    episode (PolicyValue)."""
    torch.manual_seed(seed)
    policy = PolicyValue(
        action_space,
        features=preset.trunk(),
        hidden=preset.hidden,
        context=CONTEXT if reward_input else 0,
        recurrent=recurrent,
    )
    policy.eval()
    built = build_reward(reward, preset, action_space, horizon, reward_learning_rate)
    for model in built.models.values():
        model.eval()
    return policy, built


@dataclass
class StreamRollouts:
    """(T, S, ...) tensors: S streams, T consecutive steps each, as the policy acted them."""

    names: list[str]  # each stream's name (the reward normaliser keeps one sum per name)
    inputs: torch.Tensor  # o_t, stacked views, uint8
    next_inputs: torch.Tensor  # o_{t+1}
    actions: torch.Tensor  # a_t
    previous_actions: torch.Tensor  # a_{t-1}
    logprobs: torch.Tensor  # log pi_old(a_t | o_t)
    values: torch.Tensor  # V_old(o_t)
    rewards: torch.Tensor  # r_{t+1}, as the reward gave it at act time
    starts: torch.Tensor  # o_{t+1} begins an episode (bool)
    next_values: torch.Tensor  # V(o_T) of each stream, (S,)
    positions: torch.Tensor | None = None  # (T, S, 2) true x, y at o_{t+1} (the oracles)
    contexts: torch.Tensor | None = None  # (T, S, k) what the policy saw beside o_t, if anything
    states: torch.Tensor | None = None  # (S, state_size) a recurrent policy's state before o_0
    # (T, S) bool where a recurrent policy's state started afresh before step t, if not only
    # at episode starts (the live agent's, every memory_horizon steps)
    state_resets: torch.Tensor | None = None

    def resets(self) -> torch.Tensor:
        """(T, S) bool: a recurrent state starts afresh before step t, where o_t began an
        episode (step 0's state is stored after any such start) or where `state_resets` says."""
        after_starts = torch.cat([torch.zeros_like(self.starts[:1]), self.starts[:-1]])
        if self.state_resets is None:
            return after_starts
        return after_starts | self.state_resets

    def transitions(self) -> Transitions:
        """Every transition flattened step-major (T*S); those into an episode's first frame
        are left out (their o_t and o_{t+1} are from two episodes). Each keeps its step t and
        a segment id, the same for the steps of one stream between two episode starts."""
        steps, streams = self.starts.shape
        keep = ~self.starts.reshape(-1)

        def flat(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(-1, *x.shape[2:])[keep]

        # Episodes begun before step t: a start at t puts o_{t+1} in the next one.
        begun = self.starts.long().cumsum(0) - self.starts.long()
        segments = torch.arange(streams) * (steps + 1) + begun
        times = torch.arange(steps).unsqueeze(1).expand(steps, streams)
        positions = None if self.positions is None else flat(self.positions)
        return Transitions(
            flat(self.inputs),
            flat(self.actions),
            flat(self.next_inputs),
            flat(self.previous_actions),
            positions,
            flat(segments),
            flat(times),
        )


class PolicyLearner:
    """The policy, its optimiser, the reward, the normaliser and the update's random numbers."""

    def __init__(
        self,
        preset: ModelPreset,
        action_space: str,
        reward: str,
        horizon: int,
        seed: int,
        device: torch.device,
        ppo: PPOConfig = BATCHED_PPO,
        learning_rate: float = BATCHED_POLICY_LEARNING_RATE,
        reward_learning_rate: float | None = None,
        reward_input: bool = False,
        recurrent: bool = False,
    ) -> None:
        self.preset, self.device, self.ppo = preset, device, ppo
        self.policy, self.reward = build_policy_and_reward(
            preset, action_space, reward, horizon, seed, reward_learning_rate, reward_input,
            recurrent,
        )  # fmt: skip
        self.policy.to(device)
        self.reward.to(device)
        self.optimizer = torch.optim.Adam(
            self.policy.parameters(), lr=learning_rate, eps=ppo.adam_eps, fused=True
        )
        self.normalizer = RewardNormalizer(ppo.gamma)
        self.entropy_coefficient = EntropyCoefficient(ppo)
        self.generator = torch.Generator().manual_seed(seed)

    def models(self) -> dict[str, torch.nn.Module]:
        return {'policy': self.policy, **self.reward.models}

    def set_policy_learning_rate(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            group['lr'] = rate

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {'policy': self.optimizer, **self.reward.optimizers}

    def update(self, rollouts: StreamRollouts, timer=None) -> dict[str, float]:
        """Train the reward's models, then PPO; returns their losses and the rewards' means."""
        phase = timer or (lambda name: nullcontext())
        losses: dict[str, float] = {}
        with phase('reward update'):
            losses.update(self.reward.train(rollouts.transitions(), self.generator))
        raw = rollouts.rewards
        normalized = torch.stack(
            [self.normalizer.normalize(raw[:, i], name) for i, name in enumerate(rollouts.names)],
            1,
        )
        contexts, states = rollouts.contexts, rollouts.states
        resets = rollouts.resets().to(self.device)
        per_stream = [
            Rollout(
                obs=self.preset.inputs(rollouts.inputs[:, i], self.device),
                actions=rollouts.actions[:, i].to(self.device),
                logprobs=rollouts.logprobs[:, i].to(self.device),
                values=rollouts.values[:, i].to(self.device),
                rewards=normalized[:, i].to(self.device),
                next_value=rollouts.next_values[i].to(self.device),
                context=None if contexts is None else contexts[:, i].to(self.device),
                state=None if states is None else states[i].to(self.device),
                resets=None if states is None else resets[:, i],
            )
            for i in range(len(rollouts.names))
        ]
        minibatches = max(1, raw.numel() // MINIBATCH)
        ent_coef = self.entropy_coefficient.value
        with phase('policy update'):
            self.policy.train()
            stats = ppo_update(
                self.policy,
                self.optimizer,
                per_stream,
                PPOConfig(
                    **{**asdict(self.ppo), 'num_minibatches': minibatches, 'ent_coef': ent_coef}
                ),
                self.generator,
            )
            self.policy.eval()
        self.entropy_coefficient.adapt(stats['entropy'])
        losses.update({f'ppo/{key}': value for key, value in stats.items()})
        losses['ppo/ent_coef'] = ent_coef
        losses['reward/raw_mean'] = float(raw.mean())
        losses['reward/normalized_mean'] = float(normalized.mean())
        return losses
