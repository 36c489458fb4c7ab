"""How well E3B's within-episode bonus tracks the true cell's count, for each ridge.

Offline and cheap: uniform random rollouts in training seed 0's episodes (never an evaluation
seed), each frame's E3B bonus from an encoder (a fresh one, and any trained ones given), and per
step the correlation of that bonus with the episodic oracle's 1/sqrt(N) of the true 64x64 cell.
A bonus that moves with the oracle's rewards the same places; one that does not rewards
something else (a new view of a known room, pixel noise). The features are unit-length, as
`pamiq.learning.rewards.e3b` feeds them to its memory, so the ridge is relative to one frame.

    PYTHONPATH=ros2_ws/src/pamiq .venv/bin/python bench/e3b_ridge.py \
        --encoders runs/sweep/e3b_compact_continuous_s0 --ridges 0.001 0.1 1 10 30
"""

from __future__ import annotations

import argparse
from collections import Counter
import glob
import os
import tempfile

import benchlib
import numpy as np
from pamiq.doom.geometry import cell_of
from pamiq.doom.training_worlds import DoomWorlds
from pamiq.learning.frame_stack import FrameStacks
from pamiq.learning.presets import model_preset
from pamiq.learning.rewards.e3b import FEATURES, EllipticalMemory, InverseDynamicsEncoder
from safetensors.torch import load_file
import torch

SPACE = 'continuous'
PREFIX = 'model/e3b/'


def random_rollouts(worlds: int, steps: int, seed: int) -> list[tuple[torch.Tensor, list]]:
    """Episodes of uniform random axes: (their stacked inputs (T, 4, 42, 42) uint8, cells)."""
    preset = model_preset('compact')
    rng = np.random.default_rng(seed)
    episodes, current = [], [([], []) for _ in range(worlds)]
    with tempfile.TemporaryDirectory(prefix='e3b-ridge-') as engine_dir:
        games = DoomWorlds(worlds, 0, SPACE, engine_dir)
        try:
            stacks = FrameStacks(worlds, preset.frames, preset.view_shape)
            observations, _ = games.observe()
            stacks.reset(preset.view(observations))
            for step in range(steps):
                actions = rng.uniform(-1, 1, (worlds, 3)).astype(np.float32)
                starts, _ = games.step(actions, (step + 1) * worlds)
                observations, positions = games.observe()
                inputs = stacks.push(preset.view(observations), torch.from_numpy(starts))
                for world in range(worlds):
                    if starts[world]:  # its first frame: an episode's start earns nothing
                        episodes.append(current[world])
                        current[world] = ([], [])
                        continue
                    current[world][0].append(inputs[world])
                    current[world][1].append(cell_of(*positions[world]))
        finally:
            games.close()
    episodes += [episode for episode in current if len(episode[1]) > 50]
    return [(torch.stack(inputs), cells) for inputs, cells in episodes]


def encoder_from(run: str | None) -> InverseDynamicsEncoder:
    """A fresh encoder (`run` None) or the one in `run`'s newest checkpoint."""
    encoder = InverseDynamicsEncoder(model_preset('compact'), SPACE)
    if run is not None:
        checkpoints = sorted(glob.glob(os.path.join(run, 'checkpoints', '*.safetensors')))
        if not checkpoints:
            raise SystemExit(f'{run} has no checkpoints')
        weights = load_file(checkpoints[-1])
        state = {k[len(PREFIX) :]: v for k, v in weights.items() if k.startswith(PREFIX)}
        if not state:
            raise SystemExit(f'{checkpoints[-1]} holds no e3b encoder')
        encoder.load_state_dict(state)
    return encoder.eval()


def correlations(features: list[torch.Tensor], cells: list[list], ridge: float) -> dict:
    bonuses, oracle = [], []
    for episode, episode_cells in zip(features, cells):
        memory, stream, counts = (
            EllipticalMemory(FEATURES, ridge),
            torch.zeros(1).long(),
            Counter(),
        )
        for feature, cell in zip(episode, episode_cells):
            bonuses.append(float(memory.bonus_and_add(feature[None], stream)))
            counts[cell] += 1
            oracle.append(counts[cell] ** -0.5)
    bonuses, oracle = np.array(bonuses), np.array(oracle)
    rank = lambda x: np.argsort(np.argsort(x))
    return {
        'pearson': float(np.corrcoef(bonuses, oracle)[0, 1]),
        'spearman': float(np.corrcoef(rank(bonuses), rank(oracle))[0, 1]),
        'bonus_p50': float(np.median(bonuses)),
        'bonus_max': float(bonuses.max()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--encoders', nargs='*', default=[], help='run folders (fresh: always)')
    parser.add_argument('--ridges', nargs='+', type=float, default=[0.0004, 0.1, 1, 3, 10, 30])
    parser.add_argument('--worlds', type=int, default=8)
    parser.add_argument('--steps', type=int, default=1600, help='per world')
    parser.add_argument('--out', default=os.path.join(benchlib.RESULTS, 'e3b_ridge.json'))
    args = parser.parse_args()
    torch.set_num_threads(1)
    episodes = random_rollouts(args.worlds, args.steps, seed=0)
    cells = [episode_cells for _, episode_cells in episodes]
    print(f'{len(episodes)} episodes, {sum(map(len, cells))} steps of uniform random axes')
    rows = []
    for run in [None, *args.encoders]:
        encoder = encoder_from(run)
        with torch.no_grad():
            preset = model_preset('compact')
            features = [encoder(preset.inputs(inputs)) / FEATURES**0.5 for inputs, _ in episodes]
        for ridge in args.ridges:
            row = {
                'encoder': run or 'fresh',
                'ridge': ridge,
                **correlations(features, cells, ridge),
            }
            rows.append(row)
            print(
                f'{row["encoder"][-40:]:>40}  ridge {ridge:<7g} pearson {row["pearson"]:.3f}  '
                f'spearman {row["spearman"]:.3f}  bonus median {row["bonus_p50"]:.3g}',
                flush=True,
            )
    benchlib.write_json(
        args.out,
        {
            'command': benchlib.command_line('bench/e3b_ridge.py', args),
            'episodes': len(episodes),
            'steps': sum(map(len, cells)),
            'rows': rows,
        },
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
