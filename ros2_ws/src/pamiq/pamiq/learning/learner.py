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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
import math
import threading
import time

import numpy as np
import torch

from pamiq.learning.config import LearnerConfig
from pamiq.learning.curiosity import RewardNormalizer
from pamiq.learning.device import choose_device
from pamiq.learning.models import LEARNING_RATES, action_features, build_models
from pamiq.learning.multimodal import per_sense_rewards
from pamiq.learning.ppo import Rollout, ppo_update
from pamiq.learning.senses import EXTRA_SENSES, extra_senses, is_multimodal, model_inputs
from pamiq.storage.checkpoint import load_latest_checkpoint, save_checkpoint
from pamiq.vocabulary import (
    CONTINUOUS_ACTION_DIM,
    DISCRETE_ACTION_CHOICES,
    FRAME_SHAPE,
    parse_senses,
    round_metrics,
)


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
    senses: dict[str, np.ndarray] = field(default_factory=dict)  # hearing, body at o_t
    sense_rewards: dict[str, float] = field(default_factory=dict)  # r_t's share of each sense

    @classmethod
    def from_fields(
        cls,
        fields: dict[str, float],
        observation: np.ndarray,
        action: np.ndarray,
        senses: Mapping[str, np.ndarray] | None = None,
    ) -> Step:
        """A step from agent/step's named fields (pamiq.ros.messages.STEP_FIELDS) and its data;
        fields named reward_<sense> are the reward's share of each sense."""
        return cls(
            index=int(fields['step']),
            observation=observation,
            action=action,
            reward=fields['reward'],
            value=fields['value'],
            log_prob=fields['log_prob'],
            version=int(fields['policy_version']),
            senses=dict(senses or {}),
            sense_rewards={
                name.removeprefix('reward_'): value
                for name, value in fields.items()
                if name.startswith('reward_')
            },
        )


class DynamicsBuffer:
    """Fixed-size transitions; when full a new one replaces a random slot (the original's).

    With senses besides vision (`extras`: name -> shape of one step's input) each transition
    also keeps what they gave at o_t and o_{t+1}.
    """

    def __init__(
        self,
        size: int,
        action_shape: tuple[int, ...],
        action_dtype,
        seed: int = 0,
        extras: Mapping[str, tuple[int, ...]] | None = None,
    ) -> None:
        self.observations = np.zeros((size, *FRAME_SHAPE), np.uint8)
        self.next_observations = np.zeros((size, *FRAME_SHAPE), np.uint8)
        self.actions = np.zeros((size, *action_shape), action_dtype)
        self.previous_actions = np.zeros((size, *action_shape), action_dtype)
        extras = extras or {}
        self.senses = {
            name: np.zeros((size, *shape), np.float32) for name, shape in extras.items()
        }
        self.next_senses = {
            name: np.zeros((size, *shape), np.float32) for name, shape in extras.items()
        }
        self.size, self.count = size, 0
        self.rng = np.random.default_rng(seed)

    def add(
        self,
        previous_action,
        observation,
        action,
        next_observation,
        senses: Mapping[str, np.ndarray] | None = None,
        next_senses: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        slot = self.count if self.count < self.size else int(self.rng.integers(self.size))
        self.previous_actions[slot] = previous_action
        self.observations[slot] = observation
        self.actions[slot] = action
        self.next_observations[slot] = next_observation
        for name in self.senses:
            self.senses[name][slot] = senses[name]
            self.next_senses[name][slot] = next_senses[name]
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
            {name: array[index] for name, array in self.senses.items()},
            {name: array[index] for name, array in self.next_senses.items()},
        )


class Learner:
    def __init__(self, config: LearnerConfig, seed: int = 0) -> None:
        self.config = config
        self.device = choose_device(config.device)
        self.senses = parse_senses(config.senses)
        torch.manual_seed(seed)
        self.models = build_models(config.encoder, config.action_space, self.senses)
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
        action_shape = (CONTINUOUS_ACTION_DIM if continuous else len(DISCRETE_ACTION_CHOICES),)
        self.action_dtype = np.float32 if continuous else np.int64
        self.zero_action = np.zeros(action_shape, self.action_dtype)
        self.buffer = DynamicsBuffer(
            config.dynamics_buffer_size,
            action_shape,
            self.action_dtype,
            seed,
            {name: EXTRA_SENSES[name] for name in extra_senses(self.senses)},
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
                    self.previous_action,
                    last.observation,
                    last.action,
                    step.observation,
                    last.senses,
                    step.senses,
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
        for sense in self.sense_metrics():
            shares = [s.sense_rewards.get(sense, 0.0) for s in steps[1:]]
            losses[f'reward/{sense}'] = float(np.mean(shares))
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
        previous_actions, observations, actions, next_observations, senses, next_senses = batch
        space = self.config.action_space
        return (
            action_features(torch.as_tensor(previous_actions, device=self.device), space),
            model_inputs(observations, senses, self.senses, self.device),
            action_features(torch.as_tensor(actions, device=self.device), space),
            model_inputs(next_observations, next_senses, self.senses, self.device),
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
        extras = {name: np.stack([s.senses[name] for s in acted]) for name in self.buffer.senses}
        return Rollout(
            obs=model_inputs(
                np.stack([s.observation for s in acted]), extras, self.senses, self.device
            ),
            actions=torch.as_tensor(actions, device=self.device),
            logprobs=torch.tensor(
                [s.log_prob for s in acted], dtype=torch.float32, device=self.device
            ),
            values=torch.tensor([s.value for s in acted], dtype=torch.float32, device=self.device),
            rewards=rewards.to(self.device),
            next_value=torch.tensor(steps[-1].value, dtype=torch.float32, device=self.device),
        )

    def pretrain(
        self,
        steps: list[Step],
        epochs: float,
        say: Callable[[str], None] = print,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, float]:
        """Train the encoder, then the forward model, for `epochs` passes over recorded steps.

        PPO is left to live acting: its data must come from the policy being improved, so the
        recorded sequence is forgotten afterwards. Returns the forward-dynamics loss on a fixed
        sample before and after, so the caller can see (and tests can check) that it fell.
        """
        for step in steps:
            self.add(step)
        self.reset_sequence()
        transitions = len(self.buffer)
        if transitions < 2:
            raise ValueError(f'the bags hold {transitions} usable transitions; need at least 2')
        evaluation = self.batch_tensors(self.buffer.sample(min(256, transitions)))
        with torch.no_grad():
            before = float(self.dynamics_loss(*evaluation))
        batches = max(1, math.ceil(epochs * transitions / self.config.batch_size))
        started = time.monotonic()
        for name, loss_fn in (
            ('encoder', self.encoder_loss),
            ('forward_dynamics', self.dynamics_loss),
        ):
            done = 0
            while done < batches and not should_stop():
                chunk = min(max(batches // 10, 1), batches - done)
                loss = self.train_model(name, chunk, loss_fn, should_stop)
                done += chunk
                say(
                    f'{name}: {done}/{batches} minibatches ({100 * done / batches:.0f} %), '
                    f'loss {loss:.4g}'
                )
        with torch.no_grad():
            after = float(self.dynamics_loss(*evaluation))
        self.version += 1
        say(
            f'trained on {transitions} transitions in {time.monotonic() - started:.1f} s; '
            f'forward-dynamics loss {before:.4g} -> {after:.4g}'
        )
        return {
            'forward_dynamics_before': before,
            'forward_dynamics_after': after,
            'transitions': transitions,
        }

    def metrics(self) -> tuple[str, ...]:
        """Every name `train_round` may report (the trainer publishes each on its own topic)."""
        return round_metrics(self.config.encoder) + tuple(
            f'reward/{sense}' for sense in self.sense_metrics()
        )

    def sense_metrics(self) -> tuple[str, ...]:
        """The senses whose share of the reward a round reports (none with vision alone)."""
        return self.senses if is_multimodal(self.senses) else ()

    @torch.no_grad()
    def sense_errors(self, batch) -> dict[str, float]:
        """The forward model's mean error per sense on a batch of transitions."""
        previous_action, observation, action, next_observation = self.batch_tensors(batch)
        encoder = self.models['encoder']
        predicted = self.models['forward_dynamics'](
            previous_action, encoder.embed(observation), action
        )
        shares = per_sense_rewards(predicted, encoder.embed(next_observation), self.senses)
        return {sense: float(value.mean()) for sense, value in shares.items()}

    # --- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Counters and the reward normaliser's statistics: what a checkpoint keeps besides
        the models and optimizers (plain values, JSON-serialisable)."""
        return {
            'version': self.version,
            'rounds': self.rounds,
            'samples': self.samples,
            'gaps': self.gaps,
            'stale': self.stale,
            'reward_normalizer': self.normalizer.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned. Checkpoints written before the normaliser was
        kept have no 'reward_normalizer': its statistics then start afresh."""
        self.version = int(state['version'])
        self.rounds = int(state.get('rounds', 0))
        for name in ('samples', 'gaps', 'stale'):
            setattr(self, name, int(state.get(name, 0)))
        if 'reward_normalizer' in state:
            self.normalizer.load_state_dict(state['reward_normalizer'])

    def weights_state(self) -> dict:
        """{'version', 'models'}: what an acting CuriosityPolicy loads (its load_state_dict)."""
        return {
            'version': self.version,
            'models': {name: model.state_dict() for name, model in self.models.items()},
        }

    def save_checkpoint(self, run_dir: str, keep: int, extra: dict | None = None) -> str:
        """Write models, optimizers and state atomically to run_dir; returns the path.

        Raises:
            pamiq.storage.checkpoint.CheckpointError: The file could not be written.
        """
        state = self.state_dict()
        version = state.pop('version')
        return save_checkpoint(
            run_dir, version, self.models, self.optimizers, {**state, **(extra or {})}, keep
        )

    def load_checkpoint(self, run_dir: str, log) -> str | None:
        """Resume from the newest usable checkpoint in run_dir; returns its path, or None."""
        resumed = load_latest_checkpoint(run_dir, self.models, self.optimizers, log)
        if resumed is None:
            return None
        self.load_state_dict({**resumed['counters'], 'version': resumed['version']})
        return resumed['path']
