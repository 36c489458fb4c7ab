"""The settings of one `pamiq train --world doom` run (pamiq.learning.engine). No torch here,
so the `pamiq` command reads the defaults without loading it."""

from __future__ import annotations

from dataclasses import dataclass
import math
import os

from pamiq.learning.config import BATCHED_POLICY_LEARNING_RATE, BATCHED_PPO, PPOConfig
from pamiq.vocabulary import ACTION_SPACES, MODEL_PRESETS, REWARDS

MILESTONES = (100_000, 250_000, 500_000)  # the evaluation's checkpoints, in agent steps


@dataclass(frozen=True)
class TrainConfig:
    """One `pamiq train --world doom` run; every field is a command-line option."""

    steps: int = 500_000
    """agent steps in all (over every world); a run stops at the first update boundary past it"""
    envs: int = 16
    """Doom worlds stepped together"""
    seed: int = 0
    """training seed: initial weights, sampling, and the block of episode spawns"""
    reward: str = 'e3b'
    model: str = 'compact'
    action_space: str = 'discrete'
    rollout_length: int = 32
    """steps per world between two updates. 32, not the original's 128: tuned on training seed
    0, the episodic oracle reached 28.7 cells per episode at 75-100k steps with 32 and 24.4
    with 128 (the same gradient steps per sample; the policy improves every 512 steps instead of
    every 2,048)"""
    device: str = 'auto'
    checkpoint_every: int = 20
    """updates between two checkpoints (besides the milestones)"""
    milestones: tuple[int, ...] = MILESTONES
    episode_tics: int | None = None
    """shorter episodes than the scenario's 2,100 tics (tests)"""
    horizon: int = 0
    """within-episode memory window in steps where there are no episodes (0: episodes only)"""
    learning_rate: float = BATCHED_POLICY_LEARNING_RATE
    """the policy's Adam learning rate"""
    anneal_learning_rate: bool = False
    """the policy's learning rate falls linearly from `learning_rate` at the first update to 0 at
    `steps` (CleanRL's anneal_lr); off, it stays constant, as the live trainer's does (its
    learning never ends, so there is no end to anneal to)"""
    reward_learning_rate: float = 0.0
    """the reward models' learning rate (0: each reward's own)"""
    reward_input: bool = False
    """the policy also sees the intrinsic reward it earned a step ago (NGU's input; see
    pamiq.learning.reward_input)"""
    recurrent: bool = False
    """the policy carries a state through the episode (a GRU after its trunk), so it can tell
    where it has been; PPO then trains on whole rollouts"""
    ppo: PPOConfig = BATCHED_PPO
    world_processes: int = -1
    """processes the worlds' games step in (0: this one; -1: one per core, at most one per
    world). ViZDoom holds the GIL, so only processes step games in parallel; the run is the
    same with any number"""

    @property
    def processes(self) -> int:
        """`world_processes` with -1 resolved for this machine."""
        if self.world_processes >= 0:
            return self.world_processes
        return min(self.envs, os.cpu_count() or 1)

    @property
    def steps_per_update(self) -> int:
        return self.envs * self.rollout_length

    def policy_learning_rate(self, updates_done: int) -> float:
        """The policy's learning rate for the update after `updates_done` (CleanRL's schedule:
        the whole rate first, 1/n of it for the last of n updates)."""
        if not self.anneal_learning_rate:
            return self.learning_rate
        updates = math.ceil(self.steps / self.steps_per_update)
        return self.learning_rate * max(0.0, 1.0 - updates_done / updates)

    def check(self) -> None:
        """Raises ValueError naming the first bad field."""
        if self.steps < 1:
            raise ValueError(f'--steps must be at least 1, got {self.steps}')
        if not 1 <= self.envs <= 256:
            raise ValueError(f'--envs must be 1..256, got {self.envs}')
        if self.rollout_length < 2:
            raise ValueError(f'--rollout-length must be at least 2, got {self.rollout_length}')
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f'--action-space must be one of {ACTION_SPACES}')
        if self.checkpoint_every < 1:
            raise ValueError(f'--checkpoint-every must be at least 1, got {self.checkpoint_every}')
        if self.model not in MODEL_PRESETS:
            raise ValueError(f'--model must be one of {MODEL_PRESETS}')
        if not -1 <= self.world_processes <= self.envs:
            raise ValueError(
                f'--world-processes must be -1..{self.envs} (--envs), got {self.world_processes}'
            )
        if self.reward not in REWARDS:
            raise ValueError(f'--reward must be one of {REWARDS}')
        target = self.ppo.target_entropy
        if target is not None and not math.isfinite(target):
            raise ValueError(f'--target-entropy must be a number of nats, got {target}')
        if not 0 <= self.ppo.ent_coef <= 1:
            raise ValueError(f'--ent-coef must be in [0, 1], got {self.ppo.ent_coef}')
        if target is not None and self.ppo.ent_coef == 0:
            raise ValueError('--target-entropy adapts --ent-coef from its value: give one above 0')
