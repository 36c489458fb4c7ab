"""The trainer's core for a plug-in agent: the live trainer's intake, `pamiq train`'s update.

It plays the Learner's part in trainer_node (the same `add`, `ready`, `train_round`,
checkpoints and weights), for a model preset and a reward plug-in: each actor's steps are linked
into a sequence and their frames into the preset's stacks (a gap in the step indices starts the
sequence and the stack afresh, as the agent's own does after a reset), and every
`rollout_length` consecutive steps make a rollout. A recurrent policy's steps carry the agent's
state before each frame: a rollout is re-run from its first step's, and a zero state marks
where the agent started afresh. A round trains on every waiting rollout with
pamiq.learning.update, the update `pamiq train` makes over its worlds: the same batched code
whether the rollouts come from 16 worlds or from the graph's actors.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
import threading

import numpy as np
import torch

from pamiq.learning.config import LearnerConfig
from pamiq.learning.device import choose_device
from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.learner import (
    PENDING_ROLLOUTS,
    Step,
    extend_rollout,
    pending_full,
    rollouts_ready,
)
from pamiq.learning.presets import model_preset
from pamiq.learning.update import PolicyLearner, StreamRollouts
from pamiq.storage.checkpoint import load_latest_checkpoint, save_checkpoint
from pamiq.vocabulary import PPO_STATS

NO_START = torch.zeros(1, dtype=torch.bool)


@dataclass
class Record:
    """One step as PPO and the reward train on it: o_t as the preset's stacked input."""

    inputs: torch.Tensor  # (frames*C, H, W) uint8
    action: np.ndarray  # a_t
    previous_action: np.ndarray  # a_{t-1} (zeros at a sequence's start)
    reward: float  # r_t, the reward of arriving at o_t
    value: float
    log_prob: float
    version: int
    policy_state: torch.Tensor | None = None  # a recurrent policy's state before o_t


@dataclass
class Stream:
    stacks: FrameStacks
    previous_action: np.ndarray
    last: Step | None = None
    last_record: Record | None = None
    current: list[Record] = field(default_factory=list)
    pending: deque[list[Record]] = field(default_factory=lambda: deque(maxlen=PENDING_ROLLOUTS))
    steps: int = 0
    gaps: int = 0


class PluginLearner:
    def __init__(self, config: LearnerConfig, seed: int = 0) -> None:
        if config.senses.replace(' ', '') != 'vision':
            raise ValueError(
                f'senses {config.senses!r} need model original and reward prediction_error; '
                f'model {config.model!r} with reward {config.reward!r} sees vision only'
            )
        self.config = config
        self.device = choose_device(config.device)
        self.preset = model_preset(config.model)
        self.learning = PolicyLearner(
            self.preset,
            config.action_space,
            config.reward,
            config.memory_horizon,
            seed,
            self.device,
            recurrent=config.recurrent,
        )
        if self.learning.reward.uses_positions:
            raise ValueError(
                f'reward {config.reward!r} reads the true pose, which the live graph does not '
                'give its agent: it is a ceiling for pamiq train only'
            )
        self.models = self.learning.models()
        self.optimizers = self.learning.optimizers()
        action_dim = 3 if config.action_space == 'continuous' else 5
        self.zero_action = np.zeros(
            action_dim, np.float32 if config.action_space == 'continuous' else np.int64
        )
        self.lock = threading.Lock()  # add() runs on the ROS thread, train_round() on its own
        self.streams: dict[str, Stream] = {}
        self.version = self.rounds = self.samples = self.gaps = self.stale = self.skipped = 0

    @property
    def buffer(self) -> list[Record]:
        """The steps waiting to complete a rollout (the diagnostics' 'buffer')."""
        return [r for s in self.streams.values() for r in s.current]

    # --- data in (ROS thread) ----------------------------------------------------------------
    def add(self, step: Step, actor: str = '') -> None:
        """Take one step of `actor`; raises ValueError for a step this learner cannot train on
        (a recurrent policy's without its state)."""
        state = self.checked_state(step)
        view = self.preset.view(step.observation[None])
        with self.lock:
            stream = self.streams.get(actor)
            if stream is None:
                stacks = FrameStacks(1, self.preset.frames, self.preset.view_shape)
                stream = self.streams[actor] = Stream(stacks, self.zero_action)
            last = stream.last
            following = last is not None and step.index == last.index + 1
            if following:
                inputs = stream.stacks.push(view, NO_START)[0]
                stream.previous_action = last.action
            else:
                if last is not None:
                    self.gaps += 1
                    stream.gaps += 1
                stream.stacks.reset(view)
                inputs = stream.stacks.stacks[0].clone()
                stream.previous_action, stream.current = self.zero_action, []
            record = Record(
                inputs, step.action, stream.previous_action, step.reward, step.value,
                step.log_prob, step.version, state,
            )  # fmt: skip
            if following:
                extend_rollout(self, stream, stream.last_record, record)
            stream.last, stream.last_record = step, record
            stream.steps += 1
            self.samples += 1

    def checked_state(self, step: Step) -> torch.Tensor | None:
        size = self.learning.policy.state_size
        if not size:
            return None
        if step.policy_state is None or step.policy_state.shape != (size,):
            got = 'none' if step.policy_state is None else f'{step.policy_state.shape[0]} numbers'
            raise ValueError(
                f'the policy is recurrent: each agent/step must carry its {size}-number state '
                f'(got {got}); is the agent recurrent too?'
            )
        if not np.isfinite(step.policy_state).all():
            raise ValueError('agent/step carries a state that is not finite')
        return torch.from_numpy(step.policy_state.astype(np.float32))

    def reset_sequence(self) -> None:
        with self.lock:
            self.streams.clear()

    # --- training (its own thread) -----------------------------------------------------------
    def rollouts_full(self) -> bool:
        with self.lock:
            return pending_full(s.pending for s in self.streams.values())

    def ready(self, actors: Collection[str] | None = None) -> bool:
        """A fresh rollout from each of `actors` (None: any rollout will do); a slow actor holds
        a round back only until as many rollouts wait as there are actors."""
        with self.lock:
            waiting = {name: len(s.pending) for name, s in self.streams.items() if s.pending}
        return rollouts_ready(waiting, actors)

    def train_round(self, should_stop=lambda: False) -> dict[str, float]:
        with self.lock:
            rollouts = [(name, steps) for name, s in self.streams.items() for steps in s.pending]
            for stream in self.streams.values():
                stream.pending.clear()
        if not rollouts or should_stop():
            return {}

        def field_of(name: str, offset: int = 0, dtype=None) -> torch.Tensor:
            columns = []
            for _, records in rollouts:
                part = records[offset : len(records) - 1 + offset]
                values = [getattr(r, name) for r in part]
                if isinstance(values[0], torch.Tensor):
                    columns.append(torch.stack(values))
                else:
                    columns.append(torch.as_tensor(np.asarray(values), dtype=dtype))
            return torch.stack(columns, 1)

        length = len(rollouts[0][1]) - 1
        streams = StreamRollouts(
            names=[name for name, _ in rollouts],
            inputs=field_of('inputs'),
            next_inputs=field_of('inputs', 1),
            actions=field_of('action'),
            previous_actions=field_of('previous_action'),
            logprobs=field_of('log_prob', dtype=torch.float32),
            values=field_of('value', dtype=torch.float32),
            rewards=field_of('reward', 1, dtype=torch.float32),  # r_{t+1}
            starts=torch.zeros((length, len(rollouts)), dtype=torch.bool),
            next_values=torch.tensor([records[-1].value for _, records in rollouts]),
        )
        if self.learning.policy.state_size:
            states = field_of('policy_state')  # (T, S, state_size)
            streams.states = states[0]
            streams.state_resets = (states == 0).all(-1)
        losses = self.learning.update(streams)
        losses['reward/mean'] = losses['reward/raw_mean']
        losses['update/actors'] = float(len({name for name, _ in rollouts}))
        losses['update/samples'] = float(length * len(rollouts))
        losses['ppo/policy_lag'] = float(
            np.mean([self.version - r.version for _, records in rollouts for r in records[:-1]])
        )
        self.version += 1
        self.rounds += 1
        return losses

    def metrics(self) -> tuple[str, ...]:
        """Every name `train_round` may report."""
        return (
            *self.learning.reward.metrics,
            *(f'ppo/{name}' for name in PPO_STATS),
            'ppo/ent_coef',
            'ppo/policy_lag',
            'reward/mean',
            'reward/raw_mean',
            'reward/normalized_mean',
            'update/actors',
            'update/samples',
        )

    # --- state -------------------------------------------------------------------------------
    def weights_state(self) -> dict:
        return {
            'version': self.version,
            'models': {name: model.state_dict() for name, model in self.models.items()},
        }

    def save_checkpoint(self, run_dir: str, keep: int, extra: dict | None = None) -> str:
        _, reward_values = self.learning.reward.state_dict()
        counters = {
            'model': self.config.model,
            'reward': self.config.reward,
            'action_space': self.config.action_space,
            'recurrent': int(self.config.recurrent),
            'rounds': self.rounds,
            'samples': self.samples,
            'gaps': self.gaps,
            'stale': self.stale,
            'reward_normalizer': self.learning.normalizer.state_dict(),
            'entropy_coefficient': self.learning.entropy_coefficient.state_dict(),
            'reward_state': reward_values,
            **(extra or {}),
        }
        return save_checkpoint(run_dir, self.version, self.models, self.optimizers, counters, keep)

    def load_checkpoint(self, run_dir: str, log) -> str | None:
        resumed = load_latest_checkpoint(run_dir, self.models, self.optimizers, log)
        if resumed is None:
            return None
        counters = resumed['counters']
        self.version = int(resumed['version'])
        for name in ('rounds', 'samples', 'gaps', 'stale'):
            setattr(self, name, int(counters.get(name, 0)))
        if 'reward_normalizer' in counters:
            self.learning.normalizer.load_state_dict(counters['reward_normalizer'])
        if 'entropy_coefficient' in counters:
            self.learning.entropy_coefficient.load_state_dict(counters['entropy_coefficient'])
        self.learning.reward.load_state_dict({}, counters.get('reward_state', {}))
        return resumed['path']
