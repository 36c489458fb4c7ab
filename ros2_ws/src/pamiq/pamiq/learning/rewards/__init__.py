"""Intrinsic rewards as plug-ins: the protocol is pamiq.learning.rewards.base; each reward
lives in its own file and is named once here. Adding one: its file, and one line below."""

from __future__ import annotations

from collections.abc import Callable

from pamiq.learning.presets import ModelPreset
from pamiq.learning.rewards.base import Arrivals, IntrinsicReward, Transitions
from pamiq.learning.rewards.e3b import EllipticalEpisodicBonus
from pamiq.learning.rewards.e3b_rnd import EpisodicLifelongBonus
from pamiq.learning.rewards.oracle_count import OracleCount, OracleLifelongCount
from pamiq.learning.rewards.place_count import PlaceCount
from pamiq.learning.rewards.prediction_error import PredictionError
from pamiq.learning.rewards.rnd import RandomNetworkDistillation
from pamiq.learning.rewards.zero import ZeroReward
from pamiq.vocabulary import REWARDS

# name -> factory(preset, action_space, horizon, learning_rate); horizon: the within-episode
# memory's window in steps where the world has no episodes (0: episodes only); learning_rate:
# its models' (None: the reward's own).
REGISTRY: dict[str, Callable[[ModelPreset, str, int, float | None], IntrinsicReward]] = {
    'prediction_error': lambda preset, space, horizon, lr: PredictionError(preset, space, lr),
    'rnd': lambda preset, space, horizon, lr: RandomNetworkDistillation(preset, space, lr),
    'e3b': EllipticalEpisodicBonus,
    'e3b_rnd': EpisodicLifelongBonus,
    'place_count': PlaceCount,
    'zero': lambda preset, space, horizon, lr: ZeroReward(),
    'oracle_count': lambda preset, space, horizon, lr: OracleCount(),
    'oracle_lifelong_count': lambda preset, space, horizon, lr: OracleLifelongCount(),
}
assert tuple(REGISTRY) == REWARDS


def build_reward(
    name: str,
    preset: ModelPreset,
    action_space: str,
    horizon: int = 0,
    learning_rate: float | None = None,
) -> IntrinsicReward:
    """A fresh reward `name` (one of pamiq.vocabulary.REWARDS).

    Raises:
        ValueError: An unknown name.
    """
    if name not in REGISTRY:
        raise ValueError(f'reward must be one of {", ".join(REGISTRY)}, got {name!r}')
    return REGISTRY[name](preset, action_space, horizon, learning_rate)


__all__ = ['REGISTRY', 'Arrivals', 'IntrinsicReward', 'Transitions', 'build_reward']
