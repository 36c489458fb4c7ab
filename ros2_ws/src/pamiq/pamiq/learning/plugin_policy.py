"""The acting half of a plug-in agent (a model preset and an intrinsic reward plug-in).

Per frame: the preset's view joins the frame stack, the policy samples a_t (`decide`), then
(`complete`) the reward of arriving at o_t is computed from (o_{t-1}, a_{t-1}, o_t) by the same
reward plug-in `pamiq train` uses, with the agent's own within-episode memory (one stream). The
live graph has no episodes: the reward's memory starts afresh every `memory_horizon` steps, and
so does a recurrent policy's state (its stand-in for an episode in training). A recurrent policy
reports its state before each frame, which the trainer re-runs its rollouts from.
New weights are validated whole, then loaded between two steps under a lock (a load takes about
a millisecond for the compact models).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import threading

import numpy as np
import torch

from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.policy import Decision, StepResult
from pamiq.learning.presets import model_preset
from pamiq.learning.rewards import Arrivals
from pamiq.learning.update import build_policy_and_reward
from pamiq.storage.checkpoint import load_latest_checkpoint
from pamiq.storage.weights import load_into, unpack_weights

NO_EPISODE_START = torch.zeros(1, dtype=torch.bool)


class PluginPolicy:
    def __init__(
        self,
        model: str,
        reward: str,
        action_space: str,
        seed: int = 0,
        memory_horizon: int = 0,
        recurrent: bool = False,
    ) -> None:
        self.preset = model_preset(model)
        self.action_space = action_space
        self.memory_horizon = memory_horizon
        self.policy, self.reward = build_policy_and_reward(
            self.preset, action_space, reward, memory_horizon, seed, recurrent=recurrent
        )
        self.state = self.policy.initial_state(1)  # a recurrent policy's, before the next frame
        self.steps_since_fresh_state = 0
        if self.reward.uses_positions:
            raise ValueError(
                f'reward {reward!r} reads the true pose, which an agent does not see: it is a '
                'ceiling for pamiq train only'
            )
        self.models = {'policy': self.policy, **self.reward.models}
        self.version = 0
        self.lock = threading.Lock()  # a weights load never lands inside a step
        self.stacks = FrameStacks(1, self.preset.frames, self.preset.view_shape)
        self.arrivals = Arrivals(self.reward)
        self.pending: tuple | None = None
        with torch.inference_mode():  # the first use costs torch a few hundred ms: not in a step
            self.decide(np.zeros((84, 84, 3), np.uint8))
            self.complete()
        self.reset()

    @property
    def weights_nbytes(self) -> int:
        return sum(
            t.numel() * t.element_size()
            for m in self.models.values()
            for t in m.state_dict().values()
        )

    @torch.inference_mode()
    def decide(self, observation: np.ndarray, senses: Mapping | None = None) -> Decision:
        view = self.preset.view(observation[None])
        with self.lock:
            if self.arrivals.previous is None:
                self.stacks.reset(view)
                inputs = self.stacks.stacks.clone()
            else:
                inputs = self.stacks.push(view, NO_EPISODE_START)
            obs, state = self.preset.inputs(inputs), None
            if self.policy.memory is None:
                action, log_prob, _, value = self.policy.get_action_and_value(obs)
            else:
                if self.memory_horizon and self.steps_since_fresh_state >= self.memory_horizon:
                    self.state = self.policy.initial_state(1)
                    self.steps_since_fresh_state = 0
                state = self.state
                action, log_prob, value, self.state = self.policy.recurrent_step(obs, state)
                self.steps_since_fresh_state += 1
            self.pending = (inputs, action, log_prob, value, self.version, state)
        return Decision(action[0].numpy(), self.pending[4])

    @torch.inference_mode()
    def complete(self) -> StepResult:
        if self.pending is None:
            raise RuntimeError('complete() without a decide() before it')
        (inputs, action, log_prob, value, version, state), self.pending = self.pending, None
        with self.lock:
            reward = self.arrivals.arrive(inputs, action)
        return StepResult(
            action[0].numpy(), reward, float(value[0]), float(log_prob[0]), version,
            policy_state=None if state is None else state[0].numpy(),
        )  # fmt: skip

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        self.decide(observation, senses)
        return self.complete()

    @torch.inference_mode()  # the reward's memory was made in inference mode
    def reset(self) -> None:
        """The next frame starts a new sequence: a fresh stack, no transition into it."""
        with self.lock:
            self.arrivals.reset()
            self.state = self.policy.initial_state(1)
            self.steps_since_fresh_state = 0

    def load_state_dict(self, state: Mapping) -> None:
        """Load {'version', 'models'} (validated already) between two steps."""
        with self.lock:
            load_into(self.models, state['models'])
            self.reward.on_new_weights()
            self.version = int(state['version'])

    def load_weights(self, blob: bytes | memoryview) -> int:
        version, state_dicts = unpack_weights(blob, self.models)  # validated before anything
        self.load_state_dict({'version': version, 'models': state_dicts})
        return version

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        with self.lock:
            resumed = load_latest_checkpoint(run_dir, self.models, None, log)
            if resumed is None:
                return None
            self.reward.on_new_weights()
            self.version = resumed['version']
        return resumed['path']
