"""Does an episodic bonus pay for new places, or for new views? Offline, on training seeds only.

A memoryless policy learns whatever pattern its bonus pays for. E3B's paid turning on the spot
and jittering against a wall nearly as much as walking (docs/evaluation.md), and the policies
found those patterns. This bench trains a reward's models on scripted rollouts of training seed
0 (half the worlds walk forward with a held random turn, half act uniformly at random), through
the same `train` an update calls, then plays fresh episodes of training seed 1 with four scripted
policies and reports, per reward:

- the mean bonus per step of each policy: `spin` (turn only), `push` (forward only: into the
  first wall, then stuck), `circle` (forward, strafe and turn held: running in a small circle),
  `random` (uniform axes) and `forward_turn` (the explorer), and the ratio of forward_turn's to
  spin's, push's and circle's;
- the per-step correlation of the bonus with the episodic oracle's 1/sqrt(N) of the true 64x64
  cell, over the random and forward_turn episodes.

    PYTHONPATH=ros2_ws/src/pamiq .venv/bin/python bench/place_bonus.py --rewards place_count e3b
"""

from __future__ import annotations

import argparse
from collections import Counter
import os
import tempfile
import time

import benchlib
import numpy as np
from pamiq.doom.geometry import cell_of
from pamiq.doom.training_worlds import DoomWorlds
from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.presets import model_preset
from pamiq.learning.rewards import Transitions, build_reward, place_count
from pamiq.learning.update import StreamRollouts
import torch

SPACE = 'continuous'
POLICIES = ('spin', 'push', 'circle', 'random', 'forward_turn')


def actions_for(policy: str, rng: np.random.Generator, held: np.ndarray) -> np.ndarray:
    """One step's axes (Vertical, Horizontal, LookHorizontal) for each world of `policy`."""
    n = len(held)
    if policy == 'spin':
        return np.tile(np.array([0.0, 0.0, 1.0], np.float32), (n, 1))
    if policy == 'push':
        return np.tile(np.array([1.0, 0.0, 0.0], np.float32), (n, 1))
    if policy == 'circle':  # what place_count's first policy learned (training seed 0, 4e5)
        return np.tile(np.array([0.7, -0.3, -0.6], np.float32), (n, 1))
    if policy == 'random':
        return rng.uniform(-1, 1, (n, 3)).astype(np.float32)
    redraw = rng.random(n) < 0.1  # a turn held ~10 steps, as ForwardTurnPolicy's
    held[redraw] = rng.uniform(-1, 1, redraw.sum())
    return np.stack([np.ones(n), np.zeros(n), held], 1).astype(np.float32)


def play(policies: list[str], steps: int, seed: int) -> dict:
    """(T, S) stacked inputs, next inputs, actions, starts and cells of one world per entry of
    `policies`, each acting its policy for `steps` steps."""
    preset = model_preset('compact')
    rng = np.random.default_rng(seed)
    worlds = len(policies)
    held = np.zeros(worlds, np.float32)
    inputs, actions, starts, cells = [], [], [], []
    with tempfile.TemporaryDirectory(prefix='place-bonus-') as engine_dir:
        games = DoomWorlds(worlds, seed, SPACE, engine_dir)
        try:
            stacks = FrameStacks(worlds, preset.frames, preset.view_shape)
            observations, _ = games.observe()
            stacks.reset(preset.view(observations))
            inputs.append(stacks.stacks.clone())
            for step in range(steps):
                action = np.concatenate(
                    [
                        actions_for(policy, rng, held[i : i + 1])
                        for i, policy in enumerate(policies)
                    ]
                )
                started, _ = games.step(action, (step + 1) * worlds)
                observations, positions = games.observe()
                current = stacks.push(preset.view(observations), torch.from_numpy(started))
                inputs.append(current)
                actions.append(torch.from_numpy(action))
                starts.append(torch.from_numpy(started))
                cells.append([cell_of(*p) for p in positions])
        finally:
            games.close()
    stacked = torch.stack(inputs)
    return {
        'inputs': stacked[:-1],
        'next_inputs': stacked[1:],
        'actions': torch.stack(actions),
        'starts': torch.stack(starts),
        'cells': cells,
    }


def rollouts(data: dict, begin: int, length: int) -> StreamRollouts:
    """Steps [begin, begin + length) of every world, as an update receives them."""
    part = slice(begin, begin + length)
    steps, worlds = data['starts'][part].shape
    zeros = torch.zeros(steps, worlds)
    return StreamRollouts(
        names=[str(w) for w in range(worlds)],
        inputs=data['inputs'][part],
        next_inputs=data['next_inputs'][part],
        actions=data['actions'][part],
        previous_actions=torch.zeros_like(data['actions'][part]),
        logprobs=zeros,
        values=zeros,
        rewards=zeros,
        starts=data['starts'][part],
        next_values=torch.zeros(worlds),
    )


def train(reward, data: dict, passes: int, rollout_length: int, seed: int) -> list[float]:
    generator = torch.Generator().manual_seed(seed)
    losses = []
    total = len(data['starts'])
    for _ in range(passes):
        for begin in range(0, total - rollout_length + 1, rollout_length):
            batch = rollouts(data, begin, rollout_length).transitions()
            losses.append(next(iter(reward.train(batch, generator).values())))
    return losses


def bonuses(reward, data: dict) -> np.ndarray:
    """(T, S) r_{t+1} as `act` gives it, step by step, every world a stream."""
    steps, worlds = data['starts'].shape
    streams = torch.arange(worlds)
    out = []
    for t in range(steps):
        batch = Transitions(
            data['inputs'][t], data['actions'][t], data['next_inputs'][t], data['actions'][t]
        )
        out.append(reward.act(batch, streams, data['starts'][t]).numpy())
    return np.stack(out)


def oracle(data: dict) -> np.ndarray:
    steps, worlds = data['starts'].shape
    values = np.zeros((steps, worlds))
    counts = [Counter() for _ in range(worlds)]
    for t in range(steps):
        for w in range(worlds):
            if data['starts'][t, w]:
                counts[w] = Counter()
                continue
            counts[w][data['cells'][t][w]] += 1
            values[t, w] = counts[w][data['cells'][t][w]] ** -0.5
    return values


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rewards', nargs='+', default=['place_count', 'e3b'])
    parser.add_argument('--train-steps', type=int, default=2000, help='per world, 16 worlds')
    parser.add_argument('--passes', type=int, default=8, help='over the training rollouts')
    parser.add_argument('--eval-steps', type=int, default=800, help='per world, 4 per policy')
    parser.add_argument(
        '--positive-within',
        nargs='+',
        type=int,
        default=[place_count.POSITIVE_WITHIN],
        help="place_count's window of positive pairs, in steps (each value a row)",
    )
    parser.add_argument('--trained-only', action='store_true', help='no fresh-model rows')
    parser.add_argument('--out', default=os.path.join(benchlib.RESULTS, 'place_bonus.json'))
    args = parser.parse_args()
    torch.set_num_threads(1)
    started = time.monotonic()
    training = play(['forward_turn'] * 8 + ['random'] * 8, args.train_steps, seed=0)
    policies = [p for p in POLICIES for _ in range(4)]
    evaluation = play(policies, args.eval_steps, seed=1)
    print(f'played in {time.monotonic() - started:.0f} s', flush=True)
    truth = oracle(evaluation)
    moving = np.array([p in ('random', 'forward_turn') for p in policies])
    valid = ~evaluation['starts'].numpy()
    rows = []
    variants = [
        (name, window)
        for name in args.rewards
        for window in (args.positive_within if name == 'place_count' else [None])
    ]
    for name, window in variants:
        if window is not None:  # NEGATIVE_BEYOND follows the window, as in the module
            place_count.POSITIVE_WITHIN, place_count.NEGATIVE_BEYOND = window, 3 * window
        for trained in (True,) if args.trained_only else (False, True):
            reward = build_reward(name, model_preset('compact'), SPACE)
            losses = train(reward, training, args.passes, 32, seed=0) if trained else []
            got = bonuses(reward, evaluation)
            per_policy = {p: float(got[:, np.array(policies) == p].mean()) for p in POLICIES}
            pick = valid & moving[None, :]
            x, y = got[pick], truth[pick]
            rank = lambda v: np.argsort(np.argsort(v))
            row = {
                'reward': name,
                'positive_within': window,
                'trained': trained,
                'loss_first_last': [losses[0], losses[-1]] if losses else None,
                'mean_bonus': per_policy,
                'forward_turn_over_spin': per_policy['forward_turn'] / per_policy['spin'],
                'forward_turn_over_push': per_policy['forward_turn'] / per_policy['push'],
                'forward_turn_over_circle': per_policy['forward_turn'] / per_policy['circle'],
                'pearson': float(np.corrcoef(x, y)[0, 1]),
                'spearman': float(np.corrcoef(rank(x), rank(y))[0, 1]),
            }
            rows.append(row)
            print(
                f'{name:>12} {window or "":>3} {"trained" if trained else "fresh":>7}  '
                + '  '.join(f'{p} {v:.3g}' for p, v in per_policy.items())
                + f'  ft/spin {row["forward_turn_over_spin"]:.2f}'
                + f'  ft/push {row["forward_turn_over_push"]:.2f}'
                + f'  ft/circle {row["forward_turn_over_circle"]:.2f}'
                + f'  pearson {row["pearson"]:.3f} spearman {row["spearman"]:.3f}'
                + (f'  loss {losses[0]:.3f}->{losses[-1]:.3f}' if losses else ''),
                flush=True,
            )
    oracle_row = {p: float(truth[:, np.array(policies) == p].mean()) for p in POLICIES}
    print('      oracle          ' + '  '.join(f'{p} {v:.3g}' for p, v in oracle_row.items()))
    benchlib.write_json(
        args.out,
        {
            'command': benchlib.command_line('bench/place_bonus.py', args),
            'oracle_mean_bonus': oracle_row,
            'rows': rows,
            'seconds': time.monotonic() - started,
        },
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
