"""The trainer's core: buffers fed by the agent's steps, and one training round at a time.

Plays pamiq-core's training thread (is_trainable -> train -> sync) without ROS: the trainer
node feeds it paired steps and publishes what `train_round` returns. Each round waits for one
fresh rollout of `rollout_length` consecutive steps, then trains the encoder (inverse dynamics
or VAE), the forward dynamics model and PPO, in that order, like the original.

[Why rounds are smaller than the original's] The original trained 3 epochs over its 2048-sample
buffers (768 minibatches per model) while the avatar stood still. Here acting never stops and
a 2-core CPU must keep pace with 10 Hz, so a round trains a fixed number of minibatches sampled
from the same buffers; `LearnerConfig` says how many.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
import threading

import numpy as np
import torch

from pamiq.learning.curiosity import RewardNormalizer
from pamiq.learning.models import (
    LEARNING_RATES,
    action_features,
    build_models,
    observations_to_tensor,
)
from pamiq.learning.ppo import PPOConfig, Rollout, ppo_update


@dataclass(frozen=True)
class LearnerConfig:
    encoder: str = 'inverse_dynamics'
    """'inverse_dynamics' (the original's default) or 'vae'."""
    action_space: str = 'continuous'
    """'continuous' (3 axes) or 'discrete' ((3,3,3,2,2) buttons)."""
    device: str = 'cpu'
    dynamics_buffer_size: int = 2048
    """Transitions (a_{t-1}, o_t, a_t, o_{t+1}) kept for the encoder and forward dynamics."""
    rollout_length: int = 128
    """Consecutive steps per PPO rollout (the original's num_steps)."""
    batch_size: int = 32
    """Minibatch size of the encoder and forward-dynamics updates."""
    encoder_batches: int = 32
    """Encoder minibatches per round."""
    dynamics_batches: int = 64
    """Forward-dynamics minibatches per round."""
    min_buffer_size: int = 64
    """Transitions needed before the encoder and forward dynamics train at all."""
    max_policy_lag: int = 8
    """Steps acted by a policy this many versions older than the trainer's are not used for PPO."""
    normalize_reward: bool = True
    """Divide rewards by the running std of their discounted sum (large-scale curiosity). The
    original did not, but its rewards were tiny (~0.005); with a layer-normalised embedding they
    are ~0.3 and the unnormalised returns (~30) swamp PPO's value loss."""
    encoder_rounds: int = 5
    """The encoder learns in the first this many rounds and is frozen after them, so the forward
    model and the curiosity reward stop chasing a moving embedding: with the encoder learning
    throughout (the original) the forward-dynamics loss rose 0.10 -> 0.38 over 10 minutes, with
    it frozen after 5 rounds it fell 0.10 -> 0.06 on the same data. Burda et al. (2018) found
    fixed features stable for curiosity. 0: it never stops learning."""
    ppo: PPOConfig = field(default_factory=PPOConfig)


@dataclass
class Step:
    """What the agent did at one frame, paired from agent/observation, action and agent/step.

    `reward` is r_t, the curiosity reward on arriving at o_t (the error of the prediction made
    at t-1); `value` is V(o_t), `log_prob` is log pi(a_t | o_t) under policy `version`.
    """

    index: int
    observation: np.ndarray  # o_t, (84, 84, 3) uint8 RGB
    action: np.ndarray  # a_t, (3,) float32 or (5,) int64
    reward: float
    value: float
    log_prob: float
    version: int

    @classmethod
    def from_fields(
        cls, fields: dict[str, float], observation: np.ndarray, action: np.ndarray
    ) -> Step:
        """A step from agent/step's named fields (pamiq.ros.messages.STEP_FIELDS) and its data."""
        return cls(
            index=int(fields['step']),
            observation=observation,
            action=action,
            reward=fields['reward'],
            value=fields['value'],
            log_prob=fields['log_prob'],
            version=int(fields['policy_version']),
        )


class DynamicsBuffer:
    """Fixed-size transitions; when full a new one replaces a random slot (the original's)."""

    def __init__(
        self, size: int, action_shape: tuple[int, ...], action_dtype, seed: int = 0
    ) -> None:
        self.observations = np.zeros((size, 84, 84, 3), np.uint8)
        self.next_observations = np.zeros((size, 84, 84, 3), np.uint8)
        self.actions = np.zeros((size, *action_shape), action_dtype)
        self.previous_actions = np.zeros((size, *action_shape), action_dtype)
        self.size, self.count = size, 0
        self.rng = np.random.default_rng(seed)

    def add(self, previous_action, observation, action, next_observation) -> None:
        slot = self.count if self.count < self.size else int(self.rng.integers(self.size))
        self.previous_actions[slot] = previous_action
        self.observations[slot] = observation
        self.actions[slot] = action
        self.next_observations[slot] = next_observation
        self.count = min(self.count + 1, self.size)

    def __len__(self) -> int:
        return self.count

    def sample(self, batch_size: int) -> tuple[np.ndarray, ...]:
        index = self.rng.integers(self.count, size=batch_size)
        return (
            self.previous_actions[index],
            self.observations[index],
            self.actions[index],
            self.next_observations[index],
        )


class Learner:
    def __init__(self, config: LearnerConfig, seed: int = 0) -> None:
        self.config = config
        self.device = torch.device(config.device)
        torch.manual_seed(seed)
        self.models = build_models(config.encoder, config.action_space)
        for model in self.models.values():
            model.to(self.device)
        self.optimizers = {
            name: torch.optim.Adam(
                model.parameters(),
                lr=LEARNING_RATES[name],
                eps=config.ppo.adam_eps if name == 'policy' else 1e-8,
            )
            for name, model in self.models.items()
        }
        continuous = config.action_space == 'continuous'
        action_shape = (3,) if continuous else (5,)
        self.action_dtype = np.float32 if continuous else np.int64
        self.zero_action = np.zeros(action_shape, self.action_dtype)
        self.buffer = DynamicsBuffer(
            config.dynamics_buffer_size, action_shape, self.action_dtype, seed
        )
        self.normalizer = RewardNormalizer(config.ppo.gamma)
        self.generator = torch.Generator().manual_seed(seed)
        self.lock = threading.Lock()  # add() runs on the ROS thread, train_round() on its own
        self.rollouts: deque[list[Step]] = deque(maxlen=2)
        self.current: list[Step] = []
        self.last: Step | None = None
        self.previous_action = self.zero_action
        self.version = 0
        self.rounds = 0
        self.samples = 0
        self.gaps = 0
        self.stale = 0
        self.skipped = 0  # whole rollouts never trained on: the trainer fell behind

    # --- data in (ROS thread) ----------------------------------------------------------------
    def add(self, step: Step) -> None:
        """Link a step to the previous one; a gap in step indices restarts the sequence."""
        with self.lock:
            last = self.last
            if last is not None and step.index == last.index + 1:
                self.buffer.add(
                    self.previous_action, last.observation, last.action, step.observation
                )
                self.previous_action = last.action
                self.extend_rollout(last, step)
            else:
                if last is not None:
                    self.gaps += 1
                self.previous_action = self.zero_action  # like the original's phase start
                self.current = []
            self.last = step
            self.samples += 1

    def reset_sequence(self) -> None:
        """Forget the step sequence and any rollout: what comes next starts afresh."""
        with self.lock:
            self.rollouts.clear()
            self.current = []
            self.last = None
            self.previous_action = self.zero_action

    def extend_rollout(self, step: Step, following: Step) -> None:
        if self.version - step.version > self.config.max_policy_lag:
            self.stale += 1
            self.current = []
            return
        self.current.append(step)
        if len(self.current) == self.config.rollout_length:
            if len(self.rollouts) == self.rollouts.maxlen:
                self.skipped += 1
            # The step after the rollout supplies r_T and the bootstrap value V(o_T).
            self.rollouts.append([*self.current, following])
            self.current = []

    # --- training (its own thread) -----------------------------------------------------------
    def ready(self) -> bool:
        with self.lock:
            return bool(self.rollouts) and len(self.buffer) >= self.config.min_buffer_size

    def train_round(self, should_stop=lambda: False) -> dict[str, float]:
        """One round: encoder, forward dynamics, PPO on the newest rollout; returns the losses."""
        with self.lock:
            steps = self.rollouts.pop()
            self.skipped += len(self.rollouts)
            self.rollouts.clear()  # older ones were acted by an older policy: skip them
        losses: dict[str, float] = {}
        encoder_name = self.config.encoder
        if self.encoder_learning():
            losses[f'{encoder_name}/loss'] = self.train_model(
                'encoder', self.config.encoder_batches, self.encoder_loss, should_stop
            )
        losses['forward_dynamics/loss'] = self.train_model(
            'forward_dynamics', self.config.dynamics_batches, self.dynamics_loss, should_stop
        )
        if not should_stop():
            stats = ppo_update(
                self.models['policy'],
                self.optimizers['policy'],
                self.rollout_tensors(steps),
                self.config.ppo,
                self.generator,
            )
            losses.update({f'ppo/{key}': float(value) for key, value in stats.items()})
            losses['ppo/policy_lag'] = float(
                np.mean([self.version - s.version for s in steps[:-1]])
            )
        losses['reward/mean'] = float(np.mean([s.reward for s in steps[1:]]))
        self.version += 1
        self.rounds += 1
        return losses

    def encoder_learning(self) -> bool:
        return self.config.encoder_rounds == 0 or self.rounds < self.config.encoder_rounds

    def train_model(self, name: str, batches: int, loss_fn, should_stop) -> float:
        model, optimizer = self.models[name], self.optimizers[name]
        model.train()
        total = 0.0
        done = 0
        for _ in range(batches):
            if should_stop():
                break
            with self.lock:
                batch = self.buffer.sample(self.config.batch_size)
            loss = loss_fn(*self.batch_tensors(batch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            done += 1
        model.eval()
        return total / max(done, 1)

    def batch_tensors(self, batch) -> tuple[torch.Tensor, ...]:
        previous_actions, observations, actions, next_observations = batch
        space = self.config.action_space
        return (
            action_features(torch.as_tensor(previous_actions, device=self.device), space),
            observations_to_tensor(observations, self.device),
            action_features(torch.as_tensor(actions, device=self.device), space),
            observations_to_tensor(next_observations, self.device),
        )

    def encoder_loss(self, previous_action, observation, action, next_observation) -> torch.Tensor:
        encoder = self.models['encoder']
        if self.config.encoder == 'vae':
            return encoder.loss(observation)[0]
        return encoder.loss(previous_action, observation, action, next_observation)

    def dynamics_loss(
        self, previous_action, observation, action, next_observation
    ) -> torch.Tensor:
        encoder = self.models['encoder']
        with torch.no_grad():  # the encoder is trained by its own loss only (as the original)
            embed, next_embed = encoder.embed(observation), encoder.embed(next_observation)
        return self.models['forward_dynamics'].loss(previous_action, embed, action, next_embed)

    def rollout_tensors(self, steps: list[Step]) -> Rollout:
        acted, following = steps[:-1], steps[1:]
        rewards = torch.tensor([s.reward for s in following], dtype=torch.float32)
        if self.config.normalize_reward:
            rewards = self.normalizer.normalize(rewards)
        actions = np.stack([s.action for s in acted])
        return Rollout(
            obs=observations_to_tensor(np.stack([s.observation for s in acted]), self.device),
            actions=torch.as_tensor(actions, device=self.device),
            logprobs=torch.tensor(
                [s.log_prob for s in acted], dtype=torch.float32, device=self.device
            ),
            values=torch.tensor([s.value for s in acted], dtype=torch.float32, device=self.device),
            rewards=rewards.to(self.device),
            next_value=torch.tensor(steps[-1].value, dtype=torch.float32, device=self.device),
        )

    def counters(self) -> dict[str, int]:
        return {
            'rounds': self.rounds,
            'samples': self.samples,
            'gaps': self.gaps,
            'stale': self.stale,
        }
