"""How fast `pamiq train --world doom` trains on this machine, and where each step's time goes.

For each configuration: a run of the real engine (every rollout trained), its agent steps per
second after the first update (warm-up excluded), and per agent step the milliseconds of each
phase: the simulator (ViZDoom stepping and the 84x84 preprocessing, in the engine's process or
in worker processes: each configuration is measured with every --world-processes), the
preset's view and frame stack, acting (the policy's batched forward pass), the reward at act time, the reward models'
update and PPO's. Also the simulator alone (the same worlds, random actions, no networks), and
each configuration's ratio to it. Prints a table and writes bench/results/train_engine.json.

    .venv/bin/python bench/train_engine.py            # (pause other work: it is a benchmark)
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import benchlib
import numpy as np
from pamiq.doom.training_worlds import DoomWorlds
from pamiq.learning.engine import Trainer
from pamiq.learning.random_policy import RandomPolicy
from pamiq.learning.train_config import TrainConfig
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = (
    ('compact', 'zero', 'discrete'),
    ('compact', 'e3b', 'discrete'),
    ('compact', 'rnd', 'discrete'),
    ('compact', 'prediction_error', 'discrete'),
    ('compact', 'e3b_rnd', 'discrete'),
    ('compact', 'zero', 'continuous'),
    ('compact', 'e3b', 'continuous'),
    ('original', 'prediction_error', 'continuous'),
)
PHASES = ('simulator', 'preprocessing', 'acting', 'reward', 'reward update', 'policy update')


def simulator_alone(envs: int, steps: int, processes: int) -> float:
    """Agent steps per second of the worlds with random actions and nothing else."""
    policy = RandomPolicy('discrete', 0)
    with tempfile.TemporaryDirectory() as engine_dir:
        worlds = DoomWorlds(envs, 0, 'discrete', engine_dir, processes=processes)
        try:
            started = time.perf_counter()
            for step in range(steps // envs):
                actions = np.stack([policy.sample()[0] for _ in range(envs)])
                worlds.step(actions, step * envs)
                worlds.observe()
            return steps / (time.perf_counter() - started)
        finally:
            worlds.close()


def measure(
    model: str, reward: str, space: str, envs: int, steps: int, rollout_length: int,
    processes: int,
) -> dict:  # fmt: skip
    config = TrainConfig(
        steps=steps, envs=envs, reward=reward, model=model, action_space=space,
        checkpoint_every=10**6, milestones=(), rollout_length=rollout_length,
        world_processes=processes,
    )  # fmt: skip
    marks = []
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir, log=lambda line: None, progress_every=10**9)
        original_update = trainer.update

        def update(rollouts, next_value):
            original_update(rollouts, next_value)
            marks.append((time.perf_counter(), dict(trainer.timer.seconds)))

        trainer.update = update
        trainer.run()
    (t0, first), (t1, last) = marks[0], marks[-1]
    measured = (len(marks) - 1) * config.steps_per_update
    per_step = {
        phase: 1000 * (last.get(phase, 0.0) - first.get(phase, 0.0)) / measured for phase in PHASES
    }
    return {
        'model': model,
        'reward': reward,
        'action_space': space,
        'envs': envs,
        'world_processes': processes,
        'rollout_length': rollout_length,
        'steps_measured': measured,
        'steps_per_second': measured / (t1 - t0),
        'ms_per_step': per_step,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--envs', type=int, default=16)
    parser.add_argument('--steps', type=int, default=6 * 2048 + 1, help='per configuration')
    parser.add_argument('--threads', type=int, default=2)
    parser.add_argument(
        '--rollout-length', type=int, default=TrainConfig.rollout_length, help='steps per world'
    )
    parser.add_argument('--out', default=os.path.join(HERE, 'results', 'train_engine.json'))
    parser.add_argument(
        '--only', nargs='*', default=[], help='model:reward or model:reward:space names to run'
    )
    parser.add_argument(
        '--world-processes', type=int, nargs='+', default=[0, os.cpu_count()],
        help="processes the games step in (0: the engine's own), each measured",
    )  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    alone = {n: simulator_alone(args.envs, 8000, n) for n in sorted({0, *args.world_processes})}
    rows = []
    for model, reward, space in CONFIGS:
        if args.only and not {f'{model}:{reward}', f'{model}:{reward}:{space}'} & set(args.only):
            continue
        for processes in args.world_processes:
            row = measure(
                model, reward, space, args.envs, args.steps, args.rollout_length, processes
            )
            row['ratio_to_simulator_alone'] = row['steps_per_second'] / alone[0]
            rows.append(row)
            print(
                f'{model:9s} {reward:17s} {space:10s} {processes} processes '
                f'{row["steps_per_second"]:6.0f} steps/s  '
                + '  '.join(f'{p} {row["ms_per_step"][p]:.3f}' for p in PHASES)
                + f'  ({row["ratio_to_simulator_alone"]:.2f} x the simulator alone)',
                flush=True,
            )
    for processes, rate in alone.items():
        print(
            f'simulator alone: {rate:.0f} steps/s ({args.envs} worlds, random actions, '
            f'{processes} processes)'
        )
    result = {
        'command': benchlib.command_line('bench/train_engine.py', args),
        'machine': {
            'cpus': os.cpu_count(),
            'processor': platform.processor(),
            'torch': torch.__version__,
        },
        'threads': args.threads,
        'simulator_alone_steps_per_second': alone[0],
        'simulator_alone_by_processes': alone,
        'configurations': rows,
    }
    benchlib.write_json(args.out, result)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
