"""Trainer throughput: environment steps trained per second by one Learner, in-process.

Feeds k actors' rollouts of `rollout_length` steps (Doom-sized random frames: the cost does not
depend on the pixels) and times `train_round` with the trainer's default settings, for k = 1, 2,
4: while the encoder still learns (the first `encoder_rounds` rounds) and once it is frozen (every
round after). "Steps/s" is the environment steps a round consumes (k x rollout_length) over its
time: what the actors may produce per second if every rollout is to be trained. On CPU with the
trainer's torch threads, and on CUDA too when torch sees a GPU (the trainer uses it then).

    .venv/bin/python bench/trainer_throughput.py [--rounds 4] [--actors 1 2 4] [--threads 1 2]
        [--devices cpu cuda]
"""

from __future__ import annotations

import argparse
import time

import benchlib
import numpy as np
from pamiq.learning.config import LearnerConfig
from pamiq.learning.learner import Learner, Step
import torch


def feed(learner: Learner, actors: int, start: int, rng: np.random.Generator) -> None:
    """One rollout (plus its bootstrap step) of every actor."""
    length = learner.config.rollout_length
    for actor in range(actors):
        for i in range(length + 1):
            learner.add(
                Step(
                    start + i,
                    rng.integers(0, 256, (84, 84, 3), dtype=np.uint8),
                    rng.uniform(-1, 1, 3).astype(np.float32),
                    reward=float(rng.random()),
                    value=0.0,
                    log_prob=-1.0,
                    version=learner.version,
                ),
                f'actor{actor}',
            )


def measure(device: str, threads: int, actors: int, rounds: int) -> dict:
    torch.set_num_threads(threads)
    config = LearnerConfig(device=device)
    learner = Learner(config, seed=0)
    rng = np.random.default_rng(0)
    start = 0
    # The buffer full (2048 transitions) as in a running trainer, before timing anything.
    while len(learner.buffer) < config.dynamics_buffer_size:
        feed(learner, actors, start, rng)
        start += 10_000
        learner.reset_sequence()
    times = {'learning': [], 'frozen': []}
    for _ in range(config.encoder_rounds + rounds):
        phase = 'learning' if learner.encoder_learning() else 'frozen'
        feed(learner, actors, start, rng)
        start += 10_000
        assert learner.ready([f'actor{a}' for a in range(actors)])
        if learner.device.type == 'cuda':
            torch.cuda.synchronize()
        began = time.perf_counter()
        learner.train_round()
        if learner.device.type == 'cuda':
            torch.cuda.synchronize()
        times[phase].append(time.perf_counter() - began)
        learner.reset_sequence()
    steps = actors * config.rollout_length
    steady = times['frozen']
    return {
        'device': str(learner.device),
        'threads': threads,
        'actors': actors,
        'steps_per_round': steps,
        'round_s_encoder_learning': float(np.median(times['learning'][1:])),
        'round_s_frozen': float(np.median(steady)),
        'steps_per_s_encoder_learning': steps / float(np.median(times['learning'][1:])),
        'steps_per_s_frozen': steps / float(np.median(steady)),
        'round_times_s': times,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=4, help='timed rounds after the encoder')
    parser.add_argument('--actors', type=int, nargs='+', default=[1, 2, 4])
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument(
        '--devices',
        nargs='+',
        choices=['cpu', 'cuda'],
        default=['cpu'] + (['cuda'] if torch.cuda.is_available() else []),
        help='where the learner runs (default: the CPU, and CUDA when torch sees a GPU)',
    )
    parser.add_argument('--name', default='trainer_throughput')
    args = parser.parse_args()
    devices = args.devices
    results = []
    for device in devices:
        for threads in args.threads if device == 'cpu' else [1]:
            for actors in args.actors:
                results.append(measure(device, threads, actors, args.rounds))
                print(results[-1], flush=True)
    rows = [
        (
            f'{r["device"]}, {r["threads"]} thread(s), {r["actors"]} actor(s)',
            f'{r["steps_per_s_frozen"]:.0f} steps/s (round {r["round_s_frozen"]:.2f} s for '
            f'{r["steps_per_round"]} steps); while the encoder learns '
            f'{r["steps_per_s_encoder_learning"]:.0f} steps/s',
        )
        for r in results
    ]
    benchlib.report(args.name, rows, {'results': results, 'config': repr(LearnerConfig())})
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
