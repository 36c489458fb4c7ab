"""Train one curiosity-PPO agent in-process on my_way_home, as the live graph trains it (issue 12).

Why in-process: issue 12 needs ≥5 seeds x 3 rewards x up to 5e5 steps; the graph in lockstep
runs ~230 steps/s at best and cannot be parallelised cheaply, and issue 12 allows "a faster
in-process harness" for sweeps. The harness runs the live code, not a copy of it:

- World: a step is the Doom world node's (pamiq.doom.stepping): the 160x120 frame is
  preprocessed to 84x84, the action becomes VRChat inputs and the game advances 3 or 4 tics
  (the world's rounding, counted over the whole run like the node's step counter) at 120 deg/s
  turning. When ViZDoom ends an episode (goal or 2,100-tic timeout) a new one starts at once;
  the agent is not told (the live agent never is), so its step sequence, its pending
  prediction and the learner's rollouts run on across the boundary, as they do live.
- Acting: the agent node's CuriosityPolicy, one step per frame, starting from the learner's
  initial weights (the trainer publishes them at start-up).
- Learning: the trainer node's Learner, fed every step in order; a round runs as soon as a
  rollout is complete (`Learner.ready`), and its weights act from the next step on. This is
  lockstep's `wait_for_trainer` taken to its limit: every rollout is trained, none skipped, and
  the acting weights are the newest after every round.

Rewards (`--reward`, a name so that rnd or disagreement can join later): the reward a `Step`
carries is r_t, the reward on arriving at o_t, and only that is substituted before the step
reaches the learner; the policy, the models and the learner are the same for every reward.

- prediction_error: the policy's own reward, the forward model's error (the live graph's).
- zero: r_t = 0, PPO with no intrinsic reward: the control that shows whether curiosity's
  signal matters at all.
- oracle_count: r_t = 1/sqrt(N(cell)), N counting the arrivals in the player's true 64x64 cell
  over the whole run (non-episodic, like curiosity), arrival at o_t included: the ceiling.

Episode seeds: episode k of training seed S is played on ViZDoom seed 1,000,000 + 100,000 S + k
(`episode_seed`), so training seeds 0..9 never meet `pamiq eval`'s spawns (--first-seed 1000 with
up to 999,000 episodes) nor each other. The live world instead seeds its game once and lets
ViZDoom's own generator choose every later spawn.

Checkpoints go to OUT/<reward>_seed<S>/checkpoints/ at each `--checkpoints-at` milestone and at
the end; `pamiq eval --checkpoint OUT/<reward>_seed<S>` evaluates the newest, a file a chosen
one. OUT/<reward>_seed<S>/summary.json says which file holds which milestone.

    nice -n 19 env PYTHONPATH=ros2_ws/src/pamiq .venv/bin/python bench/train_in_process.py \\
        --steps 500000 --seed 0 --reward prediction_error --out runs/issue12
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
import json
import math
import os
import sys
import tempfile
import time

import numpy as np
from pamiq.doom.game import TICRATE, doom_command, make_game
from pamiq.doom.geometry import Cell, cell_of
from pamiq.doom.stepping import (
    RESOLUTION,
    TURN_RATE,
    action_inputs,
    pose,
    reached_goal,
    step_tics,
)
from pamiq.doom.training_worlds import episode_seed
from pamiq.learning.config import LearnerConfig
from pamiq.learning.curiosity_policy import CuriosityPolicy
from pamiq.learning.learner import Learner, Step
from pamiq.learning.policy import StepResult
from pamiq.learning.run_log import duration
from pamiq.media.preprocessing import preprocess
from pamiq.storage.checkpoint import list_checkpoints
import torch

SCENARIO = 'my_way_home'
REWARDS = ('prediction_error', 'zero', 'oracle_count')
MILESTONES = (100_000, 250_000, 500_000)  # issue 12's evaluation points, in training steps
PROGRESS_EVERY = 30.0  # seconds between progress lines

# r_t from what the policy returned at o_t and the player's true (x, y) at o_t.
RewardFunction = Callable[[StepResult, tuple[float, float]], float]


class OracleCounts:
    """The count bonus on the true position: 1/sqrt(N(cell)) with N over the whole run.

    Counting the arrival being rewarded makes the first visit worth 1 and every revisit less;
    the counts never reset at an episode's end, like the curiosity reward's novelty.
    """

    def __init__(self) -> None:
        self.counts: Counter[Cell] = Counter()

    def __call__(self, result: StepResult, position: tuple[float, float]) -> float:
        cell = cell_of(*position)
        self.counts[cell] += 1
        return 1.0 / math.sqrt(self.counts[cell])


def reward_function(name: str) -> RewardFunction:
    """The reward `name` (one of REWARDS), fresh for one run.

    Raises:
        ValueError: An unknown name.
    """
    if name == 'prediction_error':
        return lambda result, position: result.reward
    if name == 'zero':
        return lambda result, position: 0.0
    if name == 'oracle_count':
        return OracleCounts()
    raise ValueError(f'unknown reward {name!r}; known: {", ".join(REWARDS)}')


def run_dir_for(out: str, reward: str, seed: int) -> str:
    return os.path.join(out, f'{reward}_seed{seed}')


def train(
    steps: int,
    seed: int,
    reward: str,
    out: str,
    checkpoints_at: tuple[int, ...] = MILESTONES,
    config: LearnerConfig | None = None,
    progress: Callable[[str], None] = print,
    progress_every: float = PROGRESS_EVERY,
    on_round: Callable[[dict[str, float]], None] | None = None,
    episode_tics: int | None = None,
) -> dict:
    """Train for `steps` steps; returns the summary it also writes to the run's summary.json.

    `on_round` receives every round's metrics (tests check them; the summary keeps the last).
    `episode_tics` shortens the scenario's episodes (2,100 tics) so tests see several.
    Milestones with no round between them share one checkpoint file (it is named by version).

    Raises:
        ValueError: A bad number of steps, seed or reward name, or a run directory that
            already holds checkpoints.
    """
    if steps < 1:
        raise ValueError(f'--steps must be at least 1, got {steps}')
    episode_seed(seed, 0)  # refuses a seed outside the training blocks before any work
    rewards = reward_function(reward)
    config = config or LearnerConfig()
    run_dir = run_dir_for(out, reward, seed)
    if list_checkpoints(run_dir):  # the newest by version could be the old run's
        raise ValueError(f'{run_dir} already holds checkpoints: give another --out')
    milestones = sorted({m for m in checkpoints_at if 0 < m < steps} | {steps})
    learner = Learner(config, seed)
    policy = CuriosityPolicy(config.encoder, config.action_space, seed)
    policy.load_state_dict(learner.weights_state())  # as the agent takes the trainer's first
    torch.manual_seed(seed)  # the policy samples its actions from torch's generator

    checkpoints: dict[str, str] = {}
    episodes: list[dict] = []
    last_round: dict[str, float] = {}
    started = last_report = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='pamiq-train-') as engine_dir:
        game = make_game(SCENARIO, RESOLUTION, episode_seed(seed, 0), engine_dir, episode_tics)
        try:
            game.set_seed(episode_seed(seed, 0))
            game.new_episode()
            cells: set[Cell] = set()
            episode_steps = 0
            for index in range(steps):
                x, y, _ = pose(game)  # the pose published with o_t
                cells.add(cell_of(x, y))
                observation = preprocess(game.get_state().screen_buffer)  # o_t
                result = policy.step(observation)
                learner.add(
                    Step(
                        index,
                        observation,
                        result.action,
                        rewards(result, (x, y)),
                        result.value,
                        result.log_prob,
                        result.version,
                    )
                )
                if learner.ready():
                    last_round = learner.train_round()
                    policy.load_state_dict(learner.weights_state())
                    if on_round is not None:
                        on_round(last_round)
                inputs = action_inputs(result.action, config.action_space)
                game.set_action(doom_command(inputs, TURN_RATE / TICRATE))
                game.advance_action(step_tics(index + 1))
                episode_steps += 1
                if game.is_episode_finished():
                    cells.add(cell_of(*pose(game)[:2]))
                    episodes.append(
                        {
                            'seed': episode_seed(seed, len(episodes)),
                            'steps': episode_steps,
                            'cells': len(cells),
                            'goal': reached_goal(game),
                        }
                    )
                    game.set_seed(episode_seed(seed, len(episodes)))
                    game.new_episode()
                    cells, episode_steps = set(), 0
                done = index + 1
                if done in milestones:
                    extra = {'steps': done, 'seed': seed, 'reward': reward}
                    checkpoints[str(done)] = learner.save_checkpoint(
                        run_dir, len(milestones), extra
                    )
                now = time.monotonic()
                if now - last_report >= progress_every:
                    last_report = now
                    rate = done / (now - started)
                    progress(
                        f'{reward} seed {seed}: {done}/{steps} steps, {rate:.0f} steps/s, '
                        f'{learner.rounds} rounds, {len(episodes)} episodes, '
                        f'ETA {duration((steps - done) / rate)}'
                    )
        finally:
            game.close()
    seconds = time.monotonic() - started
    summary = {
        'reward': reward,
        'seed': seed,
        'steps': steps,
        'wall_seconds': seconds,
        'steps_per_second': steps / seconds,
        'rounds': learner.rounds,
        'version': learner.version,
        'skipped_rollouts': learner.skipped,
        'threads': torch.get_num_threads(),
        'checkpoints': checkpoints,
        'last_round': last_round,
        'episodes': episodes,
        'unfinished_episode': {'steps': episode_steps, 'cells': len(cells)},
    }
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, 'summary.json'), 'w') as stream:
        json.dump(summary, stream, indent=1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--steps', type=int, default=MILESTONES[-1], help='0.1 s steps to train')
    parser.add_argument('--seed', type=int, default=0, help='training seed (weights, spawns)')
    parser.add_argument('--reward', choices=REWARDS, default=REWARDS[0])
    parser.add_argument(
        '--checkpoints-at',
        type=int,
        nargs='*',
        default=list(MILESTONES),
        help='steps at which to save a checkpoint besides the end (later ones are ignored)',
    )
    parser.add_argument('--out', required=True, help='checkpoints go to OUT/<reward>_seed<S>/')
    parser.add_argument(
        '--threads', type=int, default=1, help="torch's CPU threads (the live trainer's is 1)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        summary = train(args.steps, args.seed, args.reward, args.out, tuple(args.checkpoints_at))
    except ValueError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    cells = [e['cells'] for e in summary['episodes']]
    brief = {key: value for key, value in summary.items() if key != 'episodes'}
    brief['episode_cells'] = cells
    brief['mean_episode_cells'] = float(np.mean(cells)) if cells else None
    print(json.dumps(brief, indent=1))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
