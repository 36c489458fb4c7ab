"""`pamiq train --world doom`: curiosity-PPO on many Doom worlds at once, batched, resumable.

[Why] One world with batch-1 inference trained ~19 steps/s here; the simulator runs ~3,500
steps/s and small networks are cheap per sample in batches. So each step acts in every world
with one batched forward pass (policy, then the reward), and each update trains on all of the
worlds' rollouts (CleanRL's vectorised PPO).

[One update] `rollout_length` steps in each of `envs` worlds, then the update the live trainer
makes too (pamiq.learning.update): the reward's own models train on the update's transitions,
and PPO trains the policy on every world's rollout, 256-sample minibatches (16 worlds x 128
steps: 8 per epoch).

[What the agent is told] The frame, and when the world starts a new episode: its frame stack
and its reward's within-episode memory then start afresh, and the transition into the first
frame earns no reward (the world put it there). Returns are not cut at episodes: curiosity is a
continuing stream, as in the live graph, which has no episodes.

[Resumable] A checkpoint every `checkpoint_every` updates and at each milestone: models and
optimisers in the trainer's checkpoint format (so `pamiq eval --checkpoint` reads it), plus
<run>/state/state-<update>.safetensors with the rest (reward memory, normaliser, random
generators, and each world's episode seed and actions, which replay rebuilds it from). A run
started again with the same command continues from its newest complete checkpoint and gives
the same result as one that was never interrupted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict
import json
import os
import tempfile
import time

import numpy as np
import torch

from pamiq.doom.training_worlds import DoomWorlds
from pamiq.learning.config import PPOConfig
from pamiq.learning.device import choose_device
from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.presets import model_preset
from pamiq.learning.reward_input import CONTEXT, reward_context
from pamiq.learning.rewards import Transitions
from pamiq.learning.run_log import RunLog
from pamiq.learning.train_config import TrainConfig
from pamiq.learning.update import PolicyLearner, StreamRollouts
from pamiq.storage.checkpoint import list_checkpoints, load_latest_checkpoint, save_checkpoint
from pamiq.storage.run_state import load_run_state, save_run_state
from pamiq.vocabulary import CONTINUOUS_ACTION_DIM, DISCRETE_ACTION_CHOICES

SUMMARY = 'summary.json'


class PhaseTimer:
    """Wall seconds spent in each named phase (the bench's breakdown)."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started


class Rollouts:
    """One update's steps, (T, N, ...) per field, kept as the network inputs (uint8)."""

    def __init__(self, length: int, envs: int, input_shape, action_space: str) -> None:
        self.inputs = torch.zeros((length, envs, *input_shape), dtype=torch.uint8)
        self.next_inputs = torch.zeros_like(self.inputs)
        continuous = action_space == 'continuous'
        action_shape = (CONTINUOUS_ACTION_DIM if continuous else len(DISCRETE_ACTION_CHOICES),)
        dtype = torch.float32 if continuous else torch.long
        self.actions = torch.zeros((length, envs, *action_shape), dtype=dtype)
        self.previous_actions = torch.zeros_like(self.actions)
        self.logprobs = torch.zeros((length, envs))
        self.values = torch.zeros((length, envs))
        self.rewards = torch.zeros((length, envs))
        self.starts = torch.zeros((length, envs), dtype=torch.bool)
        self.positions = torch.zeros((length, envs, 2), dtype=torch.float64)
        self.contexts = torch.zeros((length, envs, CONTEXT))
        self.states: torch.Tensor | None = None  # a recurrent policy's, before step 0


class Trainer:
    """A `TrainConfig` run in `run_dir`: `run()` trains to `config.steps`, resuming if it can."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str,
        log: Callable[[str], None] = print,
        progress_every: float = 10.0,
    ) -> None:
        config.check()
        self.config, self.run_dir, self.log = config, run_dir, log
        self.progress_every = progress_every
        self.device = choose_device(config.device)
        self.preset = model_preset(config.model)
        self.learning = PolicyLearner(
            self.preset, config.action_space, config.reward, config.horizon, config.seed,
            self.device, config.ppo, config.learning_rate, config.reward_learning_rate or None,
            config.reward_input, config.recurrent,
        )  # fmt: skip
        self.policy, self.reward = self.learning.policy, self.learning.reward
        self.normalizer, self.generator = self.learning.normalizer, self.learning.generator
        self.timer = PhaseTimer()
        self.updates = self.steps = 0
        self.wall_seconds = 0.0  # training time over every session of the run
        self.records = RunLog(run_dir, log)
        self.last_losses: dict[str, float] = {}
        # The policy's reward input (pamiq.learning.reward_input) per world: [0] for the next
        # decision, [1] for the one after when it is known already (at an update's start, the
        # rewards are computed one step behind the actions).
        self.reward_inputs = torch.zeros(2, config.envs)
        # A recurrent policy's state per world, before the next decision (None: feed-forward).
        self.states = self.policy.initial_state(config.envs) if config.recurrent else None

    # --- the run ---------------------------------------------------------------------------
    def run(self) -> dict:
        """Train to `config.steps` (resuming from the newest checkpoint), write the summary
        and return it."""
        config = self.config
        os.makedirs(self.run_dir, exist_ok=True)
        self.refuse_other_settings()
        self.write_config()
        with tempfile.TemporaryDirectory(prefix='pamiq-train-') as engine_dir:
            worlds = DoomWorlds(
                config.envs, config.seed, config.action_space, engine_dir, config.episode_tics,
                processes=config.processes,
            )  # fmt: skip
            try:
                stacks = FrameStacks(config.envs, self.preset.frames, self.preset.view_shape)
                previous_actions = self.resume(worlds, stacks)
                if self.steps == 0:
                    observations, _ = worlds.observe()
                    stacks.reset(self.preset.view(observations))
                self.train(worlds, stacks, previous_actions)
            finally:
                worlds.close()
                self.records.close()
        return self.write_summary()

    def train(
        self, worlds: DoomWorlds, stacks: FrameStacks, previous_actions: torch.Tensor
    ) -> None:
        config = self.config
        rollouts = Rollouts(
            config.rollout_length, config.envs, self.preset.input_shape, config.action_space
        )
        streams = torch.arange(config.envs)
        started, steps_at_start = time.monotonic(), self.steps
        last_report = last_update = started
        while self.steps < config.steps:
            # The reward of step t is computed while the games play step t + 1 (they run in
            # worker processes, when there are any): it reads nothing of the worlds and draws
            # nothing from the RNG, so the rewards are the very ones computed in step order.
            pending: tuple[int, Transitions, torch.Tensor] | None = None
            if self.states is not None:
                rollouts.states = self.states.cpu().clone()
            for t in range(config.rollout_length):
                inputs = stacks.stacks.clone()
                context = self.policy_context()
                with self.timer('acting'), torch.inference_mode():
                    obs = self.preset.inputs(inputs, self.device)
                    if self.states is None:
                        action, logprob, _, value = self.policy.get_action_and_value(
                            obs, None, context
                        )
                    else:
                        action, logprob, value, states = self.policy.recurrent_step(
                            obs, self.states, context
                        )
                    action = action.cpu()
                with self.timer('simulator'):
                    worlds.begin_step(action.numpy())
                rewards = self.reward_of(pending, rollouts, streams)
                # The reward of arriving at o_t, computed now, is the input of decision t + 1.
                self.reward_inputs[0] = self.reward_inputs[1] if rewards is None else rewards
                with self.timer('simulator'):
                    starts, ended = worlds.finish_step(self.steps + config.envs)
                    observations, positions = worlds.observe()
                with self.timer('preprocessing'):
                    starts = torch.from_numpy(starts)
                    self.reward_inputs[0] = torch.where(starts, 0.0, self.reward_inputs[0])
                    if self.states is not None:  # a new episode starts with a fresh state
                        fresh = starts.to(self.device).unsqueeze(1)
                        self.states = torch.where(fresh, 0.0, states)
                    next_inputs = stacks.push(self.preset.view(observations), starts)
                positions = torch.from_numpy(positions)
                pending = (
                    t,
                    Transitions(inputs, action, next_inputs, previous_actions, positions),
                    starts,
                )
                rollouts.inputs[t], rollouts.next_inputs[t] = inputs, next_inputs
                rollouts.actions[t], rollouts.previous_actions[t] = action, previous_actions
                rollouts.logprobs[t], rollouts.values[t] = logprob.cpu(), value.cpu()
                rollouts.starts[t] = starts
                if context is not None:
                    rollouts.contexts[t] = context.cpu()
                rollouts.positions[t] = positions
                # A new episode's first step has no a_{t-1}, like a sequence's first step live.
                previous_actions = torch.where(
                    starts.view(-1, *([1] * (action.ndim - 1))), torch.zeros_like(action), action
                )
                self.steps += config.envs
                self.records.add_episodes(ended)
            self.reward_inputs[1] = self.reward_of(pending, rollouts, streams)
            with torch.inference_mode(), self.timer('acting'):
                next_value = self.policy.get_value(
                    self.preset.inputs(stacks.stacks, self.device),
                    self.policy_context(),
                    self.states,
                ).cpu()
            self.update(rollouts, next_value)
            now = time.monotonic()
            self.wall_seconds += now - last_update
            last_update = now
            if self.due_checkpoint() or self.steps >= config.steps:
                with self.timer('checkpoint'):
                    self.save(worlds, previous_actions)
            if now - last_report >= self.progress_every or self.steps >= config.steps:
                last_report = now
                seconds = now - started
                rate = (self.steps - steps_at_start) / seconds if seconds > 0 else float('nan')
                self.records.progress(self.steps, config.steps, rate)

    def policy_context(self) -> torch.Tensor | None:
        """What the policy sees beside the frames at the next decision, if anything."""
        if not self.config.reward_input:
            return None
        return reward_context(self.reward_inputs[0]).to(self.device)

    def reward_of(
        self,
        pending: tuple[int, Transitions, torch.Tensor] | None,
        rollouts: Rollouts,
        streams: torch.Tensor,
    ) -> torch.Tensor | None:
        """The intrinsic reward of the `pending` step (t, its transitions, its starts), if any,
        into `rollouts`; returns it.

        On one thread: beside the games' worker processes, which hold the cores then, a second
        torch thread only contends with them (bench/train_engine.py, 2 cores, e3b: 590 -> 700
        steps/s, against 660 with two threads). Always one, so that a run computes the same
        rewards whether its games step in this process or in others."""
        if pending is None:
            return None
        t, transitions, starts = pending
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with self.timer('reward'):
                rollouts.rewards[t] = self.reward.act(transitions, streams, starts)
        finally:
            torch.set_num_threads(threads)
        return rollouts.rewards[t].clone()

    def update(self, rollouts: Rollouts, next_value: torch.Tensor) -> None:
        streams = StreamRollouts(
            [str(i) for i in range(self.config.envs)],
            rollouts.inputs, rollouts.next_inputs, rollouts.actions, rollouts.previous_actions,
            rollouts.logprobs, rollouts.values, rollouts.rewards, rollouts.starts, next_value,
            rollouts.positions, rollouts.contexts if self.config.reward_input else None,
            rollouts.states,
        )  # fmt: skip
        rate = self.config.policy_learning_rate(self.updates)
        self.learning.set_policy_learning_rate(rate)
        losses = self.learning.update(streams, self.timer)
        losses['ppo/learning_rate'] = rate
        self.updates += 1
        self.last_losses = losses
        self.records.scalars(losses, self.steps)

    # --- checkpoints -----------------------------------------------------------------------
    def models(self) -> dict[str, torch.nn.Module]:
        return self.learning.models()

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self.learning.optimizers()

    def due_checkpoint(self) -> bool:
        if self.updates % self.config.checkpoint_every == 0:
            return True
        before = self.steps - self.config.steps_per_update
        return any(before < m <= self.steps for m in self.config.milestones)

    def identity(self) -> dict[str, str | int]:
        """What a checkpoint says it is: the agent needs all of these to use its weights."""
        c = self.config
        return {
            'model': c.model,
            'reward': c.reward,
            'action_space': c.action_space,
            'reward_input': int(c.reward_input),
            'recurrent': int(c.recurrent),
        }

    def save(self, worlds: DoomWorlds, previous_actions: torch.Tensor) -> None:
        tensors, values = self.reward.state_dict()
        snapshot = worlds.snapshot()
        world_actions = {
            f'world/{i}/actions': torch.as_tensor(w.pop('actions'))
            for i, w in enumerate(snapshot['worlds'])
        }
        state = {
            'reward': values,
            'normalizer': self.normalizer.state_dict(),
            'entropy_coefficient': self.learning.entropy_coefficient.state_dict(),
            'worlds': snapshot,
            'steps': self.steps,
            'updates': self.updates,
            'episodes': len(self.records.episodes),
            'wall_seconds': self.wall_seconds,
            'config': self.config_dict(),
        }
        save_run_state(
            self.run_dir,
            self.updates,
            {
                **{f'reward/{k}': v for k, v in tensors.items()},
                **world_actions,
                'previous_actions': previous_actions,
                'reward_inputs': self.reward_inputs,
                **({} if self.states is None else {'policy_states': self.states.cpu()}),
                'rng/torch': torch.get_rng_state(),
                'rng/generator': self.generator.get_state(),
            },
            state,
        )
        # The models last: a checkpoint whose run state is missing is never the resume point.
        save_checkpoint(
            self.run_dir,
            self.updates,
            self.models(),
            self.optimizers(),
            {**self.identity(), 'steps': self.steps, 'seed': self.config.seed},
            keep=10**6,  # milestones are kept for the evaluation; state files are small
        )

    def resume(self, worlds: DoomWorlds, stacks: FrameStacks) -> torch.Tensor:
        """Continue from the newest checkpoint with its run state; returns a_{t-1} per world
        (zeros for a fresh run)."""
        zeros = Rollouts(1, self.config.envs, (1,), self.config.action_space).actions[0]
        if not list_checkpoints(self.run_dir):
            return zeros
        resumed = load_latest_checkpoint(self.run_dir, self.models(), self.optimizers(), self.log)
        if resumed is None:
            raise ValueError(
                f'{self.run_dir} holds checkpoints but none is usable: give another --out'
            )
        loaded = load_run_state(self.run_dir, resumed['version'])
        if loaded is None:
            raise ValueError(
                f'{resumed["path"]} has no run state beside it: cannot resume; give another --out'
            )
        tensors, state = loaded
        self.reward.load_state_dict(
            {k.removeprefix('reward/'): v for k, v in tensors.items() if k.startswith('reward/')},
            state['reward'],
        )
        self.normalizer.load_state_dict(state['normalizer'])
        if 'entropy_coefficient' in state:  # runs saved before it adapted have their fixed one
            self.learning.entropy_coefficient.load_state_dict(state['entropy_coefficient'])
        snapshot = state['worlds']
        for i, world in enumerate(snapshot['worlds']):
            world['actions'] = tensors[f'world/{i}/actions'].numpy()
            if self.config.action_space == 'discrete':
                world['actions'] = world['actions'].astype(np.int64)

        def on_frame(world: int, observation: np.ndarray) -> None:
            view = self.preset.view(observation[None])
            if world not in seen:
                seen.add(world)
                stacks.reset(view, torch.tensor([world]))
            else:
                stacks.push_one(world, view[0])

        seen: set[int] = set()
        worlds.restore(snapshot, on_frame)
        self.steps, self.updates = int(state['steps']), int(state['updates'])
        self.wall_seconds = float(state.get('wall_seconds', 0.0))
        self.records.resume(int(state['episodes']))
        torch.set_rng_state(tensors['rng/torch'])
        self.generator.set_state(tensors['rng/generator'])
        if 'reward_inputs' in tensors:  # runs saved before the policy could see its reward
            self.reward_inputs = tensors['reward_inputs'].clone()
        if self.states is not None:
            self.states = tensors['policy_states'].to(self.device).clone()
        self.log(f'resumed {self.run_dir} at {self.steps} steps (update {self.updates})')
        return tensors['previous_actions']

    def refuse_other_settings(self) -> None:
        """A run directory holds one run: resuming it with other settings would mix two."""
        path = os.path.join(self.run_dir, 'config.json')
        if not os.path.exists(path):
            return
        with open(path) as stream:
            saved = json.load(stream)
        saved.pop('device_used', None)
        # Settings added since the run began have their defaults, which it ran with.
        saved = {**asdict(TrainConfig()), **saved}
        saved['ppo'] = {**asdict(PPOConfig()), **saved['ppo']}
        if comparable(saved) != comparable(self.config_dict()):
            changed = sorted(
                k for k, v in comparable(self.config_dict()).items() if saved.get(k) != v
            )
            raise ValueError(
                f'{self.run_dir} holds a run with other settings ({", ".join(changed)} '
                'differ); resume it with the same options or give another --out'
            )

    # --- records ---------------------------------------------------------------------------
    def config_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self.config)))

    def write_config(self) -> None:
        path = os.path.join(self.run_dir, 'config.json')
        with open(path, 'w') as stream:
            json.dump({**self.config_dict(), 'device_used': str(self.device)}, stream, indent=1)

    def write_summary(self) -> dict:
        seconds = dict(self.timer.seconds)
        summary = {
            **self.config_dict(),
            'steps_done': self.steps,
            'updates': self.updates,
            'wall_seconds': self.wall_seconds,
            'steps_per_second': self.steps / self.wall_seconds if self.wall_seconds else None,
            'episodes': len(self.records.episodes),
            'mean_cells_last_100': self.records.recent_cells(),
            'checkpoints': {str(m): path for m, path in self.milestone_checkpoints().items()},
            'phase_seconds_this_session': seconds,
            'last_losses': self.last_losses,
            'threads': torch.get_num_threads(),
            'device': str(self.device),
        }
        with open(os.path.join(self.run_dir, SUMMARY), 'w') as stream:
            json.dump(summary, stream, indent=1)
        return summary

    def milestone_checkpoints(self) -> dict[int, str]:
        """Each milestone reached -> the first checkpoint at or after it."""
        found = {}
        by_steps = sorted(
            (
                int(os.path.basename(p).split('-')[1].split('.')[0])
                * self.config.steps_per_update,
                p,
            )
            for p in list_checkpoints(self.run_dir)
        )
        for milestone in (*self.config.milestones, self.config.steps):
            later = [p for steps, p in by_steps if steps >= milestone]
            if later and milestone <= self.steps:
                found[milestone] = later[0]
        return found


def comparable(config: dict) -> dict:
    """The settings a resumed run must share with the run it continues (it may go on to more
    steps, and checkpoint at other points)."""
    free = {'milestones', 'checkpoint_every', 'world_processes'}
    if not config.get('anneal_learning_rate'):
        free.add('steps')  # an annealed learning rate reaches 0 at `steps`: they must agree
    return {k: v for k, v in config.items() if k not in free}
