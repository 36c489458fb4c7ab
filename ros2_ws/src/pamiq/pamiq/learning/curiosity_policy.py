"""The acting half of curiosity-PPO: one visible step per frame, inference only.

[Original design] PrimitiveAMI's CuriosityPPOAgent: embed o_t, reward r_t = error of the
prediction made at t-1, sample a_t from the policy, predict z_{t+1} from (a_{t-1}, z_t, a_t).
[This implementation] the same step with no gradient and no optimizer; weights arrive from the
trainer and are swapped in whole between two steps (pamiq-core's sync: a reference swap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from pamiq.learning.curiosity import curiosity_reward
from pamiq.learning.models import action_features, build_models
from pamiq.learning.multimodal import per_sense_rewards
from pamiq.learning.policy import Decision, StepResult
from pamiq.learning.sense_arrays import is_multimodal
from pamiq.learning.senses import dummy_inputs, model_inputs
from pamiq.storage.checkpoint import load_latest_checkpoint
from pamiq.storage.weights import load_into, unpack_weights
from pamiq.vocabulary import DEFAULT_SENSES


def step_inputs(
    observation: np.ndarray, extras: Mapping[str, np.ndarray] | None, senses: tuple[str, ...]
):
    """One step's network input (a batch of one)."""
    extras = extras or {}
    return model_inputs(observation[None], {k: v[None] for k, v in extras.items()}, senses)


@torch.inference_mode()
def warm_up(
    models: dict[str, torch.nn.Module], action_space: str, senses: tuple[str, ...] = DEFAULT_SENSES
) -> None:
    """One dummy step through a model set, here rather than in the first real step: the first
    use of a set costs PyTorch a few hundred milliseconds (seen as the one late action after
    the first weights swap)."""
    obs = step_inputs(*dummy_inputs(senses), senses)
    embed = models['encoder'].embed(obs)
    action, _, _, _ = models['policy'].get_action_and_value(obs)
    features = action_features(action, action_space)
    models['forward_dynamics'](torch.zeros_like(features), embed, features)


class CuriosityPolicy:
    def __init__(
        self,
        encoder: str,
        action_space: str,
        seed: int = 0,
        senses: tuple[str, ...] = DEFAULT_SENSES,
    ) -> None:
        self.encoder, self.action_space, self.senses = encoder, action_space, tuple(senses)
        torch.manual_seed(seed)  # the trainer seeds its initial weights the same way
        # Double buffering (pamiq-core's sync): new weights load into the idle set, then one
        # assignment swaps the sets. Building modules per update would cost ~0.1 s of CPU.
        # `active` pairs the set with its version so a step never sees one without the other.
        self.active: tuple[dict[str, torch.nn.Module], int] = (self.fresh_models(), 0)
        self.spare = self.fresh_models()
        self.previous_action: torch.Tensor | None = None  # features of a_{t-1}
        self.predicted: torch.Tensor | None = None  # z^_t, predicted at t-1
        self.pending: tuple | None = None  # what `decide` leaves for `complete`

    def fresh_models(self) -> dict[str, torch.nn.Module]:
        models = build_models(self.encoder, self.action_space, self.senses)
        for model in models.values():
            model.eval()
        warm_up(models, self.action_space, self.senses)
        return models

    def load_state_dict(self, state: Mapping) -> None:
        """Load {'version', 'models': {name: state dict}} into the idle set, then swap it in.

        The state must already be validated (`unpack_weights` does it for blobs). Called from
        one thread at a time; a step that began before the swap finishes on the set it started
        with (steps take milliseconds, updates come seconds apart).
        """
        load_into(self.spare, state['models'])
        self.swap_in(int(state['version']))

    def state_dict(self) -> dict:
        """{'version': int, 'models': {name: state dict}} of the set acting now."""
        models, version = self.active
        return {'version': version, 'models': {n: m.state_dict() for n, m in models.items()}}

    def load_weights(self, blob: bytes | memoryview) -> int:
        """Validate a trainer/weights blob against this policy's models and swap it in."""
        version, state_dicts = unpack_weights(blob, self.spare)
        self.load_state_dict({'version': version, 'models': state_dicts})
        return version

    def load_checkpoint(self, run_dir: str, log: Callable[[str], None]) -> str | None:
        """Start from the newest usable trainer checkpoint in run_dir (its models only)."""
        resumed = load_latest_checkpoint(run_dir, self.spare, None, log)
        if resumed is None:
            return None
        self.swap_in(resumed['version'])
        return resumed['path']

    def swap_in(self, version: int) -> None:
        """Make the idle set, just loaded, the acting one with one assignment."""
        warm_up(self.spare, self.action_space, self.senses)
        loaded = self.spare
        self.spare = self.active[0]
        self.active = (loaded, version)

    @property
    def models(self) -> dict[str, torch.nn.Module]:
        return self.active[0]

    @property
    def version(self) -> int:
        return self.active[1]

    @property
    def weights_nbytes(self) -> int:
        return sum(
            tensor.numel() * tensor.element_size()
            for model in self.spare.values()
            for tensor in model.state_dict().values()
        )

    def reset(self) -> None:
        """Forget a_{t-1} and the pending prediction: the next frame starts a new sequence."""
        self.previous_action = None
        self.predicted = None

    def step(self, observation: np.ndarray, senses: Mapping | None = None) -> StepResult:
        self.decide(observation, senses)
        return self.complete()

    @torch.inference_mode()
    def decide(self, observation: np.ndarray, senses: Mapping | None = None) -> Decision:
        """a_t ~ pi(.|o_t): the policy's own network only (it does not use the encoder)."""
        models, version = self.active  # one consistent set for the whole step
        obs = step_inputs(observation, senses, self.senses)  # o_t: (1, 3, 84, 84) or senses
        action, log_prob, _, value = models['policy'].get_action_and_value(obs)
        self.pending = (models, version, obs, action, log_prob, value)
        return Decision(action[0].numpy(), version)

    @torch.inference_mode()
    def complete(self) -> StepResult:
        """r_t from the prediction made at t-1, and the prediction of z_{t+1}."""
        if self.pending is None:
            raise RuntimeError('complete() without a decide() before it')
        (models, version, obs, action, log_prob, value), self.pending = self.pending, None
        embed = models['encoder'].embed(obs)  # z_t
        reward = (
            0.0 if self.predicted is None else float(curiosity_reward(self.predicted, embed)[0])
        )
        shares = {}
        if self.predicted is not None and is_multimodal(self.senses):
            shares = {
                sense: float(value[0])
                for sense, value in per_sense_rewards(self.predicted, embed, self.senses).items()
            }
        features = action_features(action, self.action_space)
        previous = (
            torch.zeros_like(features) if self.previous_action is None else self.previous_action
        )
        self.predicted = models['forward_dynamics'](previous, embed, features)  # z^_{t+1}
        self.previous_action = features
        return StepResult(
            action[0].numpy(), reward, float(value[0]), float(log_prob[0]), version, shares
        )
