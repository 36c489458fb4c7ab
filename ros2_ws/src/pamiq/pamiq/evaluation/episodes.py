"""Whole evaluation episodes, played in-process exactly as the live Doom world steps them.

Why in-process: the live graph runs about 230 steps/s in lockstep, in-process play several
times that, and the policy, the frame preprocessing, the action-to-input mapping and the game's
stepping are the same code (issue 12 allows "a faster in-process harness"). One step, as in
doom_world_node and the agent node: the frame is preprocessed, the policy acts on it, its
action becomes VRChat inputs (as the actuator sends them, with its default no deadzone and no
smoothing), and the game advances 35 / publish_rate tics holding those inputs (3 or 4 tics at
10 Hz, the world's own rounding). An episode runs until ViZDoom ends it (my_way_home: the goal,
or the timeout at 2,100 tics); `max_steps` cuts it short for smoke tests only.

Paired spawns: `game.set_seed(seed)` before `new_episode()` fixes the spawn, so every method
given the same seed list starts from the same places (tested in
tests/evaluation/test_evaluation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
import time

import numpy as np
import vizdoom as vzd

from pamiq.doom.game import TICRATE, doom_command
from pamiq.doom.stepping import TURN_RATE, action_inputs, pose, reached_goal, step_tics
from pamiq.learning.policy import Policy
from pamiq.media.preprocessing import preprocess


@dataclass(frozen=True)
class Episode:
    seed: int
    poses: np.ndarray  # (steps + 1, 3) x, y, angle: the spawn, then the pose after each step
    goal: bool  # ended before its timeout with the player alive: the goal was reached
    steps: int
    tics: int
    seconds: float  # wall time, policy included


def play_episode(
    game: vzd.DoomGame,
    policy: Policy,
    seed: int,
    action_space: str,
    max_steps: int | None = None,
) -> Episode:
    """One episode from the spawn `seed` gives, to its end (or `max_steps`)."""
    started = time.perf_counter()
    game.set_seed(seed)
    game.new_episode()
    policy.reset()
    poses = [pose(game)]
    steps = tics = 0
    while not game.is_episode_finished() and (max_steps is None or steps < max_steps):
        observation = preprocess(game.get_state().screen_buffer)
        # A policy that sees an oracle's reward counts true places (a trained run's ceiling).
        senses = {'pose': poses[-1]} if getattr(policy, 'needs_pose', False) else None
        result = policy.step(observation, senses)
        inputs = action_inputs(result.action, action_space)
        game.set_action(doom_command(inputs, TURN_RATE / TICRATE))
        steps += 1
        tics += step_tics(steps)
        game.advance_action(step_tics(steps))
        poses.append(pose(game))
    goal = reached_goal(game)
    return Episode(seed, np.array(poses), goal, steps, tics, time.perf_counter() - started)
