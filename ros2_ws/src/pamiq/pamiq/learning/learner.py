"""The trainer's core: buffers fed by the agent's steps, and one training round at a time.

Plays pamiq-core's training thread (is_trainable -> train -> sync) without ROS: the trainer
node feeds it paired steps and publishes what `train_round` returns. Each actor's steps form a
sequence of their own (no transition or rollout ever joins two actors). A round waits for a
fresh rollout of `rollout_length` consecutive steps from every active actor, then trains the
encoder (inverse dynamics or VAE), the forward dynamics model and PPO, in that order, like the
original, on all of them (with `concurrent_updates`, PPO on a second thread beside the other two:
neither reads what the other trains).

[How a round scales with the data] With k rollouts of T steps (one per actor, or more when the
trainer fell behind): PPO updates on all k·T steps with `num_minibatches` minibatches of k·T /
num_minibatches per epoch (CleanRL's rule: the gradient steps per update stay
update_epochs x num_minibatches, the minibatch grows with the actors). The encoder and the
forward model replay each new step as often whatever the number of actors
(dynamics_batches x batch_size / T samples per new step), in minibatches of batch_size x n for
the round's n actors: k/n x their per-rollout minibatches, so n actors take 1/n of one actor's
gradient steps per environment step, each on n times the samples. (A batch of 64 costs the
forward model 23 % less per sample than two of 32 on one CPU thread, 46 % less at 128.)

[Why rounds are smaller than the original's] The original trained 3 epochs over its 2048-sample
buffers (768 minibatches per model) while the avatar stood still. Here acting never stops and
a 2-core CPU must keep pace with 10 Hz, so a round trains a fixed number of minibatches sampled
from the same buffers; `LearnerConfig` says how many.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
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
from pamiq.learning.ppo import Rollout, ppo_update
from pamiq.learning.rewards.base import train_steps
from pamiq.learning.sense_arrays import EXTRA_SENSES, extra_senses, is_multimodal
from pamiq.learning.senses import model_inputs
from pamiq.learning.shared_cores import SharedCores
from pamiq.storage.checkpoint import load_latest_checkpoint, save_checkpoint
from pamiq.vocabulary import (
    CONTINUOUS_ACTION_DIM,
    DISCRETE_ACTION_CHOICES,
    EMBEDDING_DIM,
    FRAME_SHAPE,
    STATE_FIELD_PREFIX,
    parse_senses,
    round_metrics,
)

# Rollouts an actor may have waiting for a round; a newer one pushes the oldest out (skipped).
# Three: a lockstep agent acts at most two rollouts per version (the two it completes while a
# round trains) and one more when the trainer publishes the same version again for a newcomer.
PENDING_ROLLOUTS = 3
# Observations embedded per forward pass when the frozen encoder fills the embedding cache.
EMBED_CHUNK = 256


def distinct_rows(
    images: np.ndarray, extras: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse): the index of the first of each distinct row of `images` and `extras`
    together, and for every row the position of its own in `first` (rows[first][inverse] are
    the rows)."""
    positions: dict[bytes, int] = {}
    first: list[int] = []
    inverse = np.empty(len(images), np.int64)
    for row in range(len(images)):
        key = images[row].tobytes() + b''.join(a[row].tobytes() for a in extras.values())
        position = positions.setdefault(key, len(first))
        if position == len(first):
            first.append(row)
        inverse[row] = position
    return np.asarray(first, np.int64), inverse


def extend_rollout(learner, stream, step, following) -> None:
    """Add `step` to its actor's rollout (a Learner's or a PluginLearner's; anything with a
    `version`); a full rollout, with the step after it for r_T and V(o_T), goes to `pending`.
    A step acted by a policy more than `max_policy_lag` versions old drops the rollout."""
    if learner.version - step.version > learner.config.max_policy_lag:
        learner.stale += 1
        stream.current = []
        return
    stream.current.append(step)
    if len(stream.current) == learner.config.rollout_length:
        if len(stream.pending) == stream.pending.maxlen:
            learner.skipped += 1  # whole rollouts never trained on: the trainer fell behind
        stream.pending.append([*stream.current, following])
        stream.current = []


def rollouts_ready(waiting: Mapping[str, int], actors: Collection[str] | None) -> bool:
    """Whether a round can start with `waiting` rollouts per actor: a fresh one from each of
    `actors` (the active ones; None: any will do). A slow actor holds a round back only until
    as many rollouts wait as there are actors."""
    if not waiting:
        return False
    if actors is None:
        return True
    return all(name in waiting for name in actors) or sum(waiting.values()) >= len(actors)


def pending_full(pending: Iterable[Collection]) -> bool:
    """Whether an actor has as many rollouts waiting as it may keep: one more would push the
    oldest out untrained."""
    return any(len(rollouts) >= PENDING_ROLLOUTS for rollouts in pending)


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
    policy_state: np.ndarray | None = None  # a recurrent policy's state before o_t

    @classmethod
    def from_fields(
        cls,
        fields: dict[str, float],
        observation: np.ndarray,
        action: np.ndarray,
        senses: Mapping[str, np.ndarray] | None = None,
    ) -> Step:
        """A step from agent/step's named fields (pamiq.ros.messages.STEP_FIELDS) and its data;
        fields named reward_<sense> are the reward's share of each sense, state_<i> a recurrent
        policy's state."""
        names = [f'{STATE_FIELD_PREFIX}{i}' for i in range(len(fields))]
        state = [fields[name] for name in names if name in fields]
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
            policy_state=np.asarray(state, np.float32) if state else None,
        )


class DynamicsBuffer:
    """Fixed-size transitions; when full a new one replaces a random slot (the original's).

    With senses besides vision (`extras`: name -> shape of one step's input) each transition
    also keeps what they gave at o_t and o_{t+1}.

    The embeddings of a transition's two observations change only when the encoder learns, so
    they are computed once per encoder (`unembedded` / `store_embeddings`; `forget_embeddings`
    when it has learnt) and the forward model trains on the cache instead of running the encoder
    for every minibatch.
    """

    def __init__(
        self,
        size: int,
        action_shape: tuple[int, ...],
        action_dtype,
        seed: int = 0,
        extras: Mapping[str, tuple[int, ...]] | None = None,
        embed_dim: int = EMBEDDING_DIM,
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
        self.embeddings = np.zeros((size, embed_dim), np.float32)
        self.next_embeddings = np.zeros((size, embed_dim), np.float32)
        self.embedded = np.zeros(size, bool)
        self.generation = np.zeros(size, np.int64)  # bumped when a slot is overwritten
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
        self.embedded[slot] = False
        self.generation[slot] += 1
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
            *self.sensed(index),
        )

    def sample_embedded(self, batch_size: int) -> tuple[np.ndarray, ...] | None:
        """(a_{t-1}, z_t, a_t, z_{t+1}) of cached transitions only; None when none is cached."""
        cached = np.flatnonzero(self.embedded[: self.count])
        if not len(cached):
            return None
        index = cached[self.rng.integers(len(cached), size=batch_size)]
        return (
            self.previous_actions[index],
            self.embeddings[index],
            self.actions[index],
            self.next_embeddings[index],
        )

    def unembedded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(slots, their generations, observations, next observations) not yet in the cache."""
        index = np.flatnonzero(~self.embedded[: self.count])
        return (
            index,
            self.generation[index].copy(),
            self.observations[index],
            self.next_observations[index],
        )

    def sensed(self, index: np.ndarray) -> tuple[dict, dict]:
        """What the other senses gave at o_t and o_{t+1} of these slots."""
        return (
            {name: array[index] for name, array in self.senses.items()},
            {name: array[index] for name, array in self.next_senses.items()},
        )

    def store_embeddings(self, index, generations, embeddings, next_embeddings) -> None:
        """Cache embeddings for slots that were not overwritten since `unembedded`."""
        unchanged = self.generation[index] == generations
        index = index[unchanged]
        self.embeddings[index] = embeddings[unchanged]
        self.next_embeddings[index] = next_embeddings[unchanged]
        self.embedded[index] = True

    def forget_embeddings(self) -> None:
        self.embedded[:] = False


@dataclass
class ActorStream:
    """One actor's step sequence: what links its steps into transitions and rollouts."""

    previous_action: np.ndarray
    last: Step | None = None
    current: list[Step] = field(default_factory=list)
    pending: deque[list[Step]] = field(default_factory=lambda: deque(maxlen=PENDING_ROLLOUTS))
    steps: int = 0
    gaps: int = 0


class Learner:
    def __init__(self, config: LearnerConfig, seed: int = 0) -> None:
        self.config = config
        self.device = choose_device(config.device)
        self.senses = parse_senses(config.senses)
        torch.manual_seed(seed)
        self.models = build_models(config.encoder, config.action_space, self.senses)
        for model in self.models.values():
            model.to(self.device)
        # fused: one kernel per step instead of ~10 passes over every parameter; the same
        # update, and on one CPU thread the forward model's step fell from 7.5 to 2.1 ms.
        self.optimizers = {
            name: torch.optim.Adam(
                model.parameters(),
                lr=LEARNING_RATES[name],
                eps=config.ppo.adam_eps if name == 'policy' else 1e-8,
                fused=True,
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
            self.models['forward_dynamics'].fc_out.out_features,  # the (fused) embedding's size
        )
        self.normalizer = RewardNormalizer(config.ppo.gamma)
        self.generator = torch.Generator().manual_seed(seed)
        self.lock = threading.Lock()  # add() runs on the ROS thread, train_round() on its own
        self.streams: dict[str, ActorStream] = {}
        self.version = 0
        self.rounds = 0
        self.samples = 0
        self.gaps = 0
        self.stale = 0
        self.skipped = 0  # whole rollouts never trained on: the trainer fell behind
        # Started by the first round, from the training thread: it inherits that one's niceness.
        self.workers = (
            ThreadPoolExecutor(1, 'embedding-models') if config.concurrent_updates else None
        )

    # --- data in (ROS thread) ----------------------------------------------------------------
    def add(self, step: Step, actor: str = '') -> None:
        """Link a step to the previous one of the same actor; a gap in its step indices
        restarts that actor's sequence."""
        with self.lock:
            stream = self.streams.get(actor)
            if stream is None:
                stream = self.streams[actor] = ActorStream(self.zero_action)
            last = stream.last
            if last is not None and step.index == last.index + 1:
                self.buffer.add(
                    stream.previous_action,
                    last.observation,
                    last.action,
                    step.observation,
                    last.senses,
                    step.senses,
                )
                stream.previous_action = last.action
                self.extend_rollout(stream, last, step)
            else:
                if last is not None:
                    self.gaps += 1
                    stream.gaps += 1
                stream.previous_action = self.zero_action  # like the original's phase start
                stream.current = []
            stream.last = step
            stream.steps += 1
            self.samples += 1

    def reset_sequence(self) -> None:
        """Forget every actor's step sequence and rollouts: what comes next starts afresh."""
        with self.lock:
            self.streams.clear()

    def extend_rollout(self, stream: ActorStream, step: Step, following: Step) -> None:
        extend_rollout(self, stream, step, following)

    # --- training (its own thread) -----------------------------------------------------------
    def rollouts_full(self) -> bool:
        with self.lock:
            return pending_full(s.pending for s in self.streams.values())

    def ready(self, actors: Collection[str] | None = None) -> bool:
        """Whether a round can start: enough transitions, and a fresh rollout from each of
        `actors` (the active ones; None: any rollout will do). A slow actor holds a round back
        only until as many rollouts wait as there are actors."""
        with self.lock:
            if len(self.buffer) < self.config.min_buffer_size:
                return False
            waiting = {name: len(s.pending) for name, s in self.streams.items() if s.pending}
        return rollouts_ready(waiting, actors)

    def train_round(self, should_stop=lambda: False) -> dict[str, float]:
        """One round on every waiting rollout: encoder, forward dynamics, PPO (with
        `concurrent_updates` PPO alongside the other two); returns the losses and what the
        update held."""
        with self.lock:
            rollouts = [
                (name, steps) for name, stream in self.streams.items() for steps in stream.pending
            ]
            for stream in self.streams.values():
                stream.pending.clear()
        actors = len({name for name, _ in rollouts})
        if self.config.concurrent_updates:
            # PPO reads only the rollouts and the policy, the embedding models only the buffer:
            # the same updates at once, on `torch_threads` threads each until one is done.
            cores = SharedCores(torch.get_num_threads())
            models = self.workers.submit(
                cores.run,
                lambda check: self.train_embedding_models(rollouts, actors, check),
                should_stop,
            )
            try:
                policy = cores.run(lambda check: self.train_policy(rollouts, check), should_stop)
            finally:
                wait([models])  # never a round of the models still running after this one
            losses = {**models.result(), **policy}
        else:
            losses = self.train_embedding_models(rollouts, actors, should_stop)
            losses.update(self.train_policy(rollouts, should_stop))
        following = [s for _, steps in rollouts for s in steps[1:]]
        losses['reward/mean'] = float(np.mean([s.reward for s in following]))
        for sense in self.sense_metrics():
            shares = [s.sense_rewards.get(sense, 0.0) for s in following]
            losses[f'reward/{sense}'] = float(np.mean(shares))
        losses['update/actors'] = float(actors)
        losses['update/samples'] = float(sum(len(steps) - 1 for _, steps in rollouts))
        self.version += 1
        self.rounds += 1
        return losses

    def train_embedding_models(
        self, rollouts: list[tuple[str, list[Step]]], actors: int, should_stop
    ) -> dict[str, float]:
        """The encoder (while it learns) and the forward model, on the round's share of
        minibatches (see the module doc: how a round scales)."""
        losses: dict[str, float] = {}
        minibatch = self.config.batch_size * actors
        if self.encoder_learning():
            losses[f'{self.config.encoder}/loss'] = self.train_model(
                'encoder',
                math.ceil(self.config.encoder_batches * len(rollouts) / actors),
                self.encoder_loss,
                should_stop,
                minibatch=minibatch,
            )
            self.buffer.forget_embeddings()
        losses['forward_dynamics/loss'] = self.train_dynamics(
            math.ceil(self.config.dynamics_batches * len(rollouts) / actors),
            should_stop,
            minibatch,
        )
        return losses

    def train_policy(
        self, rollouts: list[tuple[str, list[Step]]], should_stop
    ) -> dict[str, float]:
        """PPO on every rollout of the round."""
        if should_stop():
            return {}
        stats = ppo_update(
            self.models['policy'],
            self.optimizers['policy'],
            [self.rollout_tensors(steps, name) for name, steps in rollouts],
            self.config.ppo,
            self.generator,
            should_stop,
        )
        losses = {f'ppo/{key}': float(value) for key, value in stats.items()}
        losses['ppo/policy_lag'] = float(
            np.mean([self.version - s.version for _, steps in rollouts for s in steps[:-1]])
        )
        return losses

    def encoder_learning(self) -> bool:
        return self.config.encoder_rounds == 0 or self.rounds < self.config.encoder_rounds

    def train_model(
        self,
        name: str,
        batches: int,
        loss_fn,
        should_stop,
        sample=None,
        minibatch: int | None = None,
    ) -> float:
        """`batches` minibatches of `loss_fn` on `sample(minibatch)` (default: transitions from
        the buffer; `batch_size` of them); returns the mean loss."""
        model, optimizer = self.models[name], self.optimizers[name]
        sample = sample or self.sampled_batch
        minibatch = minibatch or self.config.batch_size

        def losses():
            for _ in range(batches):
                if should_stop():
                    return
                batch = sample(minibatch)
                if batch is None:
                    return
                yield loss_fn(*batch)

        return train_steps(model, optimizer, losses())

    def train_dynamics(self, batches: int, should_stop, minibatch: int | None = None) -> float:
        """The forward model's minibatches, on cached embeddings: the encoder does not change
        while the forward model trains, so each transition is embedded once per encoder (every
        round while it learns, once when it is new after it is frozen) instead of twice per
        minibatch that samples it."""
        self.embed_new_transitions()
        return self.train_model(
            'forward_dynamics',
            batches,
            self.models['forward_dynamics'].loss,
            should_stop,
            self.embedded_batch,
            minibatch,
        )

    @torch.no_grad()
    def embed_new_transitions(self) -> None:
        """Fill the embedding cache for transitions added since the last round."""
        with self.lock:
            index, generations, observations, next_observations = self.buffer.unembedded()
            senses, next_senses = self.buffer.sensed(index)
        if not len(index):
            return
        # A sequence's o_{t+1} is the next transition's o_t: each distinct input is embedded
        # once, which halves the encoder's work on consecutive steps.
        images = np.concatenate([observations, next_observations])
        extras = {name: np.concatenate([senses[name], next_senses[name]]) for name in senses}
        first, inverse = distinct_rows(images, extras)
        encoder = self.models['encoder']
        embeddings = []
        for start in range(0, len(first), EMBED_CHUNK):
            chunk = first[start : start + EMBED_CHUNK]
            inputs = model_inputs(
                images[chunk], {k: v[chunk] for k, v in extras.items()}, self.senses, self.device
            )
            embeddings.append(encoder.embed(inputs).cpu())
        embedded = torch.cat(embeddings).numpy()[inverse]
        with self.lock:
            self.buffer.store_embeddings(
                index, generations, embedded[: len(index)], embedded[len(index) :]
            )

    def embedded_batch(self, size: int) -> tuple[torch.Tensor, ...] | None:
        with self.lock:
            batch = self.buffer.sample_embedded(size)
        if batch is None:
            return None
        previous_actions, embeddings, actions, next_embeddings = batch
        space = self.config.action_space
        return (
            action_features(torch.as_tensor(previous_actions, device=self.device), space),
            torch.as_tensor(embeddings, device=self.device),
            action_features(torch.as_tensor(actions, device=self.device), space),
            torch.as_tensor(next_embeddings, device=self.device),
        )

    def sampled_batch(self, size: int) -> tuple[torch.Tensor, ...]:
        with self.lock:
            batch = self.buffer.sample(size)
        return self.batch_tensors(batch)

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

    def rollout_tensors(self, steps: list[Step], actor: str = '') -> Rollout:
        acted, following = steps[:-1], steps[1:]
        rewards = torch.tensor([s.reward for s in following], dtype=torch.float32)
        if self.config.normalize_reward:
            rewards = self.normalizer.normalize(rewards, actor)
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
        steps: dict[str, list[Step]],
        epochs: float,
        say: Callable[[str], None] = print,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> dict[str, float]:
        """Train the encoder, then the forward model, for `epochs` passes over recorded steps
        (each actor's in step order).

        PPO is left to live acting: its data must come from the policy being improved, so the
        recorded sequence is forgotten afterwards. Returns the forward-dynamics loss on a fixed
        sample before and after, so the caller can see (and tests can check) that it fell.
        """
        for actor, actor_steps in steps.items():
            for step in actor_steps:
                self.add(step, actor)
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
