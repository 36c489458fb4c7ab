"""Novelty inside the map: does a trained reward pay more in the rooms its agent visits least?

For each run (a `pamiq train --world doom` directory) at a milestone checkpoint: its policy plays
my_way_home in 16 worlds as it trained (sampling its actions, new episodes at once) until
--episodes episodes have ended, and its reward, as it was at that checkpoint, scores every
transition as training did (the raw intrinsic reward, before the return normalisation; a
transition into an episode's first frame earns nothing and is left out). Each transition is
placed in the map's sector (room or corridor) holding the world's pose after it. The sectors are
ranked by the steps spent in them over these episodes. The table compares the mean reward in the
least-visited third of the visited sectors with the mean in the most-visited third (their ratio
with a 95 % interval, episodes resampled whole); and the same
for the transitions from step 100 of their episode on (a within-episode bonus is highest while
the episode's memory is empty, and every episode starts in the rooms visited most).

The episodes come from the block of training seed 9999, which no run trains on. Visits are the
trained policy's own over these episodes: the same policy that collected its training data at
that checkpoint.

    .venv/bin/python bench/novelty_map.py --runs runs/sweep/e3b_compact_discrete_s2 ... \\
        --milestone 500000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import benchlib
import numpy as np
from pamiq.doom.geometry import read_map
from pamiq.doom.training_worlds import MAX_TRAINING_SEED, DoomWorlds
from pamiq.learning.engine import Trainer
from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.rewards import Transitions
from pamiq.learning.train_config import TrainConfig
from pamiq.storage.checkpoint import read_checkpoint_models
from pamiq.storage.run_state import load_run_state
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ANALYSIS_SEED = MAX_TRAINING_SEED  # its block of episode seeds is no run's
WORLDS = 16
LATE = 100  # steps into an episode


def trained(run_dir: str, milestone: int, scratch: str) -> Trainer:
    """The run's policy and reward as they were at its first checkpoint at or after
    `milestone` steps (an engine in `scratch`, which never trains)."""
    with open(os.path.join(run_dir, 'config.json')) as stream:
        saved = json.load(stream)
    with open(os.path.join(run_dir, 'summary.json')) as stream:
        checkpoints = {int(k): v for k, v in json.load(stream)['checkpoints'].items()}
    if milestone not in checkpoints:
        raise ValueError(f'{run_dir} has no checkpoint for {milestone} steps: {checkpoints}')
    config = TrainConfig(
        reward=saved['reward'], model=saved['model'], action_space=saved['action_space'],
        seed=saved['seed'], horizon=saved['horizon'], device='cpu',
    )  # fmt: skip
    engine = Trainer(config, scratch, log=lambda line: None)
    version, states = read_checkpoint_models(checkpoints[milestone], engine.models())
    for name, model in engine.models().items():
        model.load_state_dict(states[name])
    loaded = load_run_state(run_dir, version)
    if loaded is None:
        raise ValueError(f'{run_dir} has no run state for checkpoint {version}')
    tensors, state = loaded
    engine.reward.load_state_dict(
        {k.removeprefix('reward/'): v for k, v in tensors.items() if k.startswith('reward/')},
        state['reward'],
    )
    return engine


@torch.inference_mode()
def play(
    engine: Trainer, episodes: int, engine_dir: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rewards (n,), positions after each transition (n, 2), each one's step in its episode
    (n,), its episode (n,)) until `episodes` have ended."""
    preset, config = engine.preset, engine.config
    worlds = DoomWorlds(
        WORLDS, ANALYSIS_SEED, config.action_space, engine_dir, processes=config.processes
    )
    rewards, positions, into_episode, episode, ended = [], [], [], [], 0
    try:
        stacks = FrameStacks(WORLDS, preset.frames, preset.view_shape)
        stacks.reset(preset.view(worlds.observe()[0]))
        previous = torch.zeros_like(engine.policy.get_action_and_value(
            preset.inputs(stacks.stacks, engine.device))[0])  # fmt: skip
        streams, steps = torch.arange(WORLDS), 0
        while ended < episodes:
            inputs = stacks.stacks.clone()
            action = engine.policy.get_action_and_value(preset.inputs(inputs, engine.device))[0]
            steps += WORLDS
            starts, finished = worlds.step(action.numpy(), steps)
            observations, where = worlds.observe()
            starts = torch.from_numpy(starts)
            next_inputs = stacks.push(preset.view(observations), starts)
            where = torch.from_numpy(where)
            reward = engine.reward.act(
                Transitions(inputs, action, next_inputs, previous, where), streams, starts
            )
            keep = ~starts
            rewards.append(reward[keep].numpy())
            positions.append(where[keep].numpy())
            into_episode.append(np.array([len(w.actions) for w in worlds.states])[keep.numpy()])
            episode.append(np.array([w.episode for w in worlds.states])[keep.numpy()])
            previous = torch.where(starts.view(-1, 1), torch.zeros_like(action), action)
            ended += len(finished)
    finally:
        worlds.close()
    return tuple(np.concatenate(x) for x in (rewards, positions, into_episode, episode))


def by_sector(rewards: np.ndarray, sectors: np.ndarray) -> dict[int, tuple[int, float]]:
    """Each visited sector -> (steps in it, mean reward there)."""
    found = {}
    for sector in np.unique(sectors[sectors >= 0]):
        inside = rewards[sectors == sector]
        found[int(sector)] = (len(inside), float(inside.mean()))
    return found


def least_vs_most(per_sector: dict[int, tuple[int, float]]) -> dict:
    """The mean reward over the transitions in the least-visited third of the sectors and in
    the most-visited third (ranked by steps)."""
    ranked = sorted(per_sector.items(), key=lambda item: item[1][0])
    third = max(1, len(ranked) // 3)

    def mean(group):
        steps = sum(n for _, (n, _) in group)
        return sum(n * r for _, (n, r) in group) / steps, steps

    least, least_steps = mean(ranked[:third])
    most, most_steps = mean(ranked[-third:])
    return {
        'least_visited_sectors': [sector for sector, _ in ranked[:third]],
        'most_visited_sectors': [sector for sector, _ in ranked[-third:]],
        'sectors_visited': len(ranked),
        'sectors_per_third': third,
        'least_visited_mean_reward': least,
        'least_visited_steps': least_steps,
        'most_visited_mean_reward': most,
        'most_visited_steps': most_steps,
        'ratio': least / most if most else None,
    }


def ratio_interval(
    rewards: np.ndarray, sectors: np.ndarray, episodes: np.ndarray, row: dict,
    resamples: int = 2000,
) -> tuple[float, float]:  # fmt: skip
    """95 % interval of least / most (row's sector groups), episodes resampled whole."""
    names, index = np.unique(episodes, return_inverse=True)
    sums = np.zeros((2, len(names)))
    counts = np.zeros((2, len(names)))
    for group, key in enumerate(('least_visited_sectors', 'most_visited_sectors')):
        inside = np.isin(sectors, row[key])
        np.add.at(sums[group], index[inside], rewards[inside])
        np.add.at(counts[group], index[inside], 1)
    picks = np.random.default_rng(0).integers(0, len(names), (resamples, len(names)))
    least = sums[0][picks].sum(1) / np.maximum(counts[0][picks].sum(1), 1)
    most = sums[1][picks].sum(1) / np.maximum(counts[1][picks].sum(1), 1)
    ratios = least / np.where(most > 0, most, np.nan)
    return float(np.nanpercentile(ratios, 2.5)), float(np.nanpercentile(ratios, 97.5))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', nargs='+', required=True, help='pamiq train run directories')
    parser.add_argument('--milestone', type=int, default=500_000)
    parser.add_argument('--episodes', type=int, default=48, help='per run')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'novelty_map.json'))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)  # the policies' sampling: the same episodes on every call
    rows = []
    with tempfile.TemporaryDirectory(prefix='pamiq-novelty-') as scratch:
        geometry = read_map('my_way_home', scratch)
        for run in args.runs:
            engine = trained(run, args.milestone, os.path.join(scratch, 'engine'))
            rewards, positions, into_episode, episodes = play(engine, args.episodes, scratch)
            sectors = geometry.sector_of(positions)
            row = least_vs_most(by_sector(rewards, sectors))
            row['ratio_interval'] = ratio_interval(rewards, sectors, episodes, row)
            # A within-episode bonus is highest while the episode's memory is empty, and every
            # episode starts in the rooms visited most: the same comparison after step LATE.
            late = into_episode >= LATE
            after = least_vs_most(by_sector(rewards[late], sectors[late]))
            after['ratio_interval'] = ratio_interval(
                rewards[late], sectors[late], episodes[late], after
            )
            row['after_step_100'] = after
            row.update(run=os.path.basename(run.rstrip('/')), transitions=len(rewards))
            rows.append(row)
            after = row['after_step_100']
            print(
                f'{row["run"]:36s} after step {LATE}: least-visited '
                f'{after["least_visited_mean_reward"]:.4g} most-visited '
                f'{after["most_visited_mean_reward"]:.4g} (ratio 95 % interval '
                f'{after["ratio_interval"][0]:.2f}-{after["ratio_interval"][1]:.2f})',
                flush=True,
            )
            print(
                f'{row["run"]:36s} least-visited {row["least_visited_mean_reward"]:.4g} '
                f'({row["least_visited_steps"]} steps)  most-visited '
                f'{row["most_visited_mean_reward"]:.4g} ({row["most_visited_steps"]} steps)  '
                f'ratio {"n/a" if row["ratio"] is None else format(row["ratio"], ".2f")} '
                f'[{row["ratio_interval"][0]:.2f}, {row["ratio_interval"][1]:.2f}]',
                flush=True,
            )
    higher = sum(r['least_visited_mean_reward'] > r['most_visited_mean_reward'] for r in rows)
    print(f'least-visited higher in {higher} of {len(rows)} runs')
    result = {
        'command': benchlib.command_line('bench/novelty_map.py', args),
        'milestone': args.milestone,
        'episodes_per_run': args.episodes,
        'least_visited_higher': higher,
        'runs': rows,
    }
    benchlib.write_json(args.out, result)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
