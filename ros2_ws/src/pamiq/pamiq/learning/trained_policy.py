"""A policy trained by `pamiq train --world doom`, acting one frame at a time (pamiq eval).

It sees what it saw in training: each observation becomes its preset's view, stacked with the
previous ones of the episode (a fresh stack after `reset`, which the evaluation calls at each
episode's start, as the engine's worlds start theirs), and samples its action.
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
        self.policy = PolicyValue(
            self.action_space, features=self.preset.trunk(), hidden=self.preset.hidden
        )
        version, states = read_checkpoint_models(self.path, {'policy': self.policy})
        self.policy.load_state_dict(states['policy'])
        self.policy.eval()
        self.version = version
        self.stacks = FrameStacks(1, self.preset.frames, self.preset.view_shape)
        self.fresh = True

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
        inputs = self.preset.inputs(self.stacks.stacks)
        action, log_prob, _, value = self.policy.get_action_and_value(inputs)
        return StepResult(
            action[0].numpy(), 0.0, float(value[0]), float(log_prob[0]), self.version
        )

    def reset(self) -> None:
        """The next observation starts an episode: a fresh frame stack."""
        self.fresh = True

    def load_weights(self, blob: bytes | memoryview) -> int:
        raise WeightsError('a trained run is loaded from its checkpoint, not from weights')

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        return None
