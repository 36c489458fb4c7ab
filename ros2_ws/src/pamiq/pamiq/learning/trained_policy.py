"""A policy trained by `pamiq train --world doom`, acting one frame at a time (pamiq eval).

It sees what it saw in training: each observation becomes its preset's view, stacked with the
previous ones of the episode (a fresh stack after `reset`, which the evaluation calls at each
episode's start, as the engine's worlds start theirs), and samples its action. A policy trained
with `--reward-input` also sees the intrinsic reward it earned a step ago, so the run's reward
models act here too, with a within-episode memory of their own (pamiq.learning.reward_input).
A recurrent policy carries its state from step to step, afresh at each episode.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import os

import numpy as np
import torch

from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.models import PolicyValue
from pamiq.learning.policy import CheapStep, StepResult
from pamiq.learning.presets import model_preset
from pamiq.learning.reward_input import CONTEXT, reward_context
from pamiq.learning.rewards import Arrivals, build_reward
from pamiq.storage.checkpoint import (
    list_checkpoints,
    read_checkpoint_counters,
    read_checkpoint_models,
)
from pamiq.storage.errors import WeightsError


def is_trained_run(path: str) -> bool:
    """Whether `path` (a run directory or a checkpoint file) holds a `pamiq train --world`
    checkpoint (it names its model preset)."""
    files = list_checkpoints(path) if os.path.isdir(path) else [path]
    return bool(files) and 'model' in read_checkpoint_counters(files[0])


class TrainedPolicy(CheapStep):
    def __init__(self, path: str) -> None:
        files = list_checkpoints(path) if os.path.isdir(path) else [path]
        if not files:
            raise FileNotFoundError(f'no checkpoint in {path}')
        self.path = files[0]
        counters = read_checkpoint_counters(self.path)
        self.preset = model_preset(counters['model'])
        self.action_space = counters['action_space']
        self.reward_name = counters.get('reward', '')
        self.steps_trained = int(counters.get('steps', 0))
        self.reward_input = bool(counters.get('reward_input', 0))
        self.policy = PolicyValue(
            self.action_space,
            features=self.preset.trunk(),
            hidden=self.preset.hidden,
            context=CONTEXT if self.reward_input else 0,
            recurrent=bool(counters.get('recurrent', 0)),
        )
        models = {'policy': self.policy}
        if self.reward_input:
            self.reward = build_reward(self.reward_name, self.preset, self.action_space, 0)
            models.update(self.reward.models)
        version, states = read_checkpoint_models(self.path, models)
        for name, model in models.items():
            model.load_state_dict(states[name])
            model.eval()
        self.version = version
        self.stacks = FrameStacks(1, self.preset.frames, self.preset.view_shape)
        self.fresh = True
        # the reward of arriving at o_{t-1}, for reward_input
        self.arrivals = Arrivals(self.reward) if self.reward_input else None
        self.last_reward = 0.0
        self.state = self.policy.initial_state(1)

    @property
    def needs_pose(self) -> bool:
        """Whether `step` needs senses['pose'] (x, y, ...) of the observation: a policy that
        sees an oracle's reward, which counts true places."""
        return self.reward_input and self.reward.uses_positions

    @property
    def weights_nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.policy.state_dict().values())

    @torch.inference_mode()
    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        view = self.preset.view(observation[None])
        if self.fresh:
            self.stacks.reset(view)
            self.fresh = False
        else:
            self.stacks.push(view, torch.zeros(1, dtype=torch.bool))
        stacked = self.stacks.stacks.clone()
        context = reward_context(torch.tensor([self.last_reward])) if self.reward_input else None
        obs = self.preset.inputs(stacked)
        if self.policy.memory is None:
            action, log_prob, _, value = self.policy.get_action_and_value(obs, None, context)
        else:
            action, log_prob, value, self.state = self.policy.recurrent_step(
                obs, self.state, context
            )
        reward = self.arrival_reward(stacked, action, senses) if self.reward_input else 0.0
        return StepResult(
            action[0].numpy(), reward, float(value[0]), float(log_prob[0]), self.version
        )

    def arrival_reward(
        self, stacked: torch.Tensor, action: torch.Tensor, senses: Mapping | None
    ) -> float:
        """The reward of arriving at this observation, which the next decision sees."""
        positions = None
        if self.needs_pose:
            if senses is None or 'pose' not in senses:
                raise ValueError(f'{self.reward_name} counts true places: step needs the pose')
            positions = torch.as_tensor(senses['pose'], dtype=torch.float64)[None, :2]
        self.last_reward = self.arrivals.arrive(stacked, action, positions)
        return self.last_reward

    @torch.inference_mode()  # the reward's memory was made in inference mode
    def reset(self) -> None:
        """The next observation starts an episode: a fresh frame stack and reward memory."""
        self.fresh = True
        self.last_reward = 0.0
        self.state = self.policy.initial_state(1)
        if self.arrivals is not None:
            self.arrivals.reset()

    def load_weights(self, blob: bytes | memoryview) -> int:
        raise WeightsError('a trained run is loaded from its checkpoint, not from weights')

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        return None
