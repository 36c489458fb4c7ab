"""`pamiq eval`: how far each policy explores per episode, every method on the same spawns.

The yardstick of issue 12. Each method plays the same seed list (the same spawns) for whole
episodes, in-process as the live world steps (pamiq.doom.stepping); per episode it gets
the distinct 64x64 cells visited, that as a fraction of the map's floor cells, the sectors
visited and whether it reached the goal (pamiq.doom.exploration); means come with bootstrap
95 % intervals and each method's ratio to `random` with a paired interval
(pamiq.evaluation.bootstrap). Methods: `random` (the agent's random policy: uniform random
actions), `forward_turn` (a hand-made explorer, pamiq.evaluation.forward_turn_policy) and any
trained checkpoint, run through the agent's own CuriosityPolicy (it samples its actions).

Writes <out>/eval.json (everything, per episode), <out>/coverage.png (means with intervals) and
<out>/trajectories.png (the first few episodes' paths per method over the map's floor cells).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import json
import os
import tempfile
import time

from pamiq.doom.exploration import EpisodeMetrics, episode_metrics
from pamiq.doom.game import make_game
from pamiq.doom.geometry import CELL, MapGeometry, read_map
from pamiq.doom.stepping import PUBLISH_RATE, RESOLUTION, TURN_RATE
from pamiq.evaluation.bootstrap import (
    CONFIDENCE,
    RESAMPLES,
    Estimate,
    bootstrap_mean,
    paired_difference,
    paired_ratio,
)
from pamiq.evaluation.episodes import Episode, play_episode
from pamiq.evaluation.forward_turn_policy import ForwardTurnPolicy
from pamiq.learning.policy import Policy
from pamiq.learning.random_policy import RandomPolicy
from pamiq.vocabulary import EVAL_BASELINES

BASELINE_DESCRIPTIONS = {
    'random': "uniform random actions (the agent's random policy: tanh(N(0, 1)) per axis)",
    'forward_turn': 'forward always, a random turn held for ~1 s (ForwardTurnPolicy defaults)',
}
TRAJECTORY_EPISODES = 4  # episodes per method drawn in trajectories.png and kept in eval.json


@dataclass
class Method:
    """A named way to act; `policy_for(seed)` gives its policy for that episode, seeded by it,
    so a rerun of the evaluation plays the very same episodes."""

    name: str
    description: str
    policy_for: Callable[[int], Policy]
    episodes: list[Episode] = field(default_factory=list)
    metrics: list[EpisodeMetrics] = field(default_factory=list)


def baseline_method(name: str, action_space: str) -> Method:
    if name == 'random':
        make: Callable[[int], Policy] = lambda seed: RandomPolicy(action_space, seed)
    elif name == 'forward_turn':
        make = lambda seed: ForwardTurnPolicy(action_space, seed)
    else:
        raise ValueError(f'unknown policy {name!r}; known: {", ".join(EVAL_BASELINES)}')
    return Method(name, BASELINE_DESCRIPTIONS[name], make)


def checkpoint_method(path: str, encoder: str, action_space: str, log: Callable) -> Method:
    """A trained checkpoint acting through the agent's CuriosityPolicy.

    A run directory is loaded as the agent node starts from one (the newest usable checkpoint),
    a file as the agent loads weights (validated in full, then swapped in).

    Raises:
        FileNotFoundError: Nothing at `path`, or no usable checkpoint in the directory.
        pamiq.storage.checkpoint.UnusableCheckpoint: The file does not fit the models.
    """
    import torch  # the curiosity models are built only when a checkpoint is evaluated

    from pamiq.learning.curiosity_policy import CuriosityPolicy
    from pamiq.learning.trained_policy import TrainedPolicy, is_trained_run

    if os.path.exists(path) and is_trained_run(path):
        torch.set_num_threads(1)
        trained = TrainedPolicy(path)
        if trained.action_space != action_space:
            raise ValueError(
                f'{path} acts with {trained.action_space} actions: give --action-space '
                f'{trained.action_space}'
            )

        def seeded_trained(seed: int) -> Policy:
            torch.manual_seed(seed)
            return trained

        name = f'{trained.reward_name} {trained.preset.name} {trained.steps_trained} steps'
        return Method(
            name, f'pamiq train run, sampling its actions: {trained.path}', seeded_trained
        )
    from pamiq.storage.checkpoint import read_checkpoint_models

    if not os.path.exists(path):
        raise FileNotFoundError(f'no checkpoint at {path} (give a run directory or a file)')
    torch.set_num_threads(1)  # a batch of one: more threads only contend on a shared machine
    policy = CuriosityPolicy(encoder, action_space)
    if os.path.isdir(path):
        loaded = policy.load_checkpoint(path, log)
        if loaded is None:
            raise FileNotFoundError(
                f'no usable checkpoint in {path} (looked in its checkpoints/ folder for '
                f'{encoder} models with {action_space} actions)'
            )
    else:
        version, models = read_checkpoint_models(path, policy.models)
        policy.load_state_dict({'version': version, 'models': models})
        loaded = path

    def seeded(seed: int) -> Policy:
        torch.manual_seed(seed)  # the policy samples its actions from torch's generator
        return policy

    name = f'checkpoint v{policy.version}'
    return Method(name, f'{encoder} curiosity-PPO, sampling its actions: {loaded}', seeded)


def unique_names(methods: list[Method]) -> None:
    """Two checkpoints of the same version (from two runs) get distinct names."""
    seen: dict[str, int] = {}
    for method in methods:
        count = seen[method.name] = seen.get(method.name, 0) + 1
        if count > 1:
            method.name = f'{method.name} #{count}'


def run_methods(
    methods: list[Method],
    seeds: list[int],
    scenario: str,
    action_space: str,
    max_steps: int | None,
    progress: Callable[[str], None],
) -> MapGeometry:
    """Play every method on every seed (one game, reseeded per episode); returns the map."""
    every = max(1, len(seeds) // 10)
    with tempfile.TemporaryDirectory(prefix='pamiq-eval-') as engine_dir:
        geometry = read_map(scenario, engine_dir)
        game = make_game(scenario, RESOLUTION, seeds[0], engine_dir)
        try:
            for method in methods:
                started = time.perf_counter()
                for done, seed in enumerate(seeds, start=1):
                    episode = play_episode(
                        game, method.policy_for(seed), seed, action_space, max_steps
                    )
                    method.episodes.append(episode)
                    positions = episode.poses[:, :2]
                    method.metrics.append(episode_metrics(positions, episode.goal, geometry))
                    if done % every == 0 or done == len(seeds):
                        mean = sum(m.cells for m in method.metrics) / done
                        progress(
                            f'{method.name}: {done}/{len(seeds)} episodes, '
                            f'{mean:.1f} cells/episode so far, '
                            f'{time.perf_counter() - started:.0f} s'
                        )
        finally:
            game.close()
    return geometry


def summarize(method: Method, baseline: Method | None, resamples: int) -> dict:
    """Means with intervals, throughput, and the paired comparison with the baseline."""
    cells = [m.cells for m in method.metrics]
    steps = sum(e.steps for e in method.episodes)
    seconds = sum(e.seconds for e in method.episodes)
    summary: dict = {
        'episodes': len(cells),
        'cells': bootstrap_mean(cells, resamples).as_dict(),
        'floor_fraction': bootstrap_mean(
            [m.floor_fraction for m in method.metrics], resamples
        ).as_dict(),
        'sectors': bootstrap_mean([m.sectors for m in method.metrics], resamples).as_dict(),
        'goal_rate': bootstrap_mean([m.goal for m in method.metrics], resamples).as_dict(),
        'steps_per_episode': steps / len(cells),
        'steps_per_second': steps / seconds if seconds > 0 else float('nan'),
    }
    if baseline is not None and baseline is not method:
        reference = [m.cells for m in baseline.metrics]
        summary['cells_ratio_to_random'] = paired_ratio(cells, reference, resamples).as_dict()
        summary['cells_difference_to_random'] = paired_difference(
            cells, reference, resamples
        ).as_dict()
    return summary


def table(results: dict) -> str:
    """The printed summary: one row per method."""
    rows = [
        (
            'method', 'episodes', 'cells/episode [95% CI]', 'floor cells %', 'sectors/episode',
            'goal rate', 'steps/s', 'cells vs random [95% CI]',
        )
    ]  # fmt: skip
    for name, method in results['methods'].items():
        s = method['summary']
        ratio = s.get('cells_ratio_to_random')
        rows.append(
            (
                name,
                str(s['episodes']),
                Estimate(**s['cells']).text(1),
                f'{100 * s["floor_fraction"]["value"]:.1f}',
                f'{s["sectors"]["value"]:.2f}',
                f'{s["goal_rate"]["value"]:.2f}',
                f'{s["steps_per_second"]:.0f}',
                f'{Estimate(**ratio).text(2)} x' if ratio else '-',
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return '\n'.join('  '.join(v.ljust(w) for v, w in zip(row, widths)) for row in rows)


def evaluate(
    policies: list[str],
    checkpoints: list[str],
    episodes: int,
    first_seed: int,
    out: str,
    scenario: str = 'my_way_home',
    action_space: str = 'continuous',
    encoder: str = 'inverse_dynamics',
    max_steps: int | None = None,
    resamples: int = RESAMPLES,
    command: str = '',
    log: Callable[[str], None] = print,
) -> dict:
    """Run the evaluation, print its table, write eval.json and the PNGs; returns the results.

    Raises:
        ValueError: Nothing to evaluate, a bad number, an unknown policy or an unusable file.
        FileNotFoundError: A checkpoint path with nothing usable.
    """
    if episodes < 1:
        raise ValueError(f'--episodes must be at least 1, got {episodes}')
    if max_steps is not None and max_steps < 1:
        raise ValueError(f'--max-steps must be at least 1, got {max_steps}')
    if not policies and not checkpoints:
        raise ValueError('nothing to evaluate: give --policies and/or --checkpoint')
    methods = [baseline_method(name, action_space) for name in dict.fromkeys(policies)]
    methods += [checkpoint_method(p, encoder, action_space, log) for p in checkpoints]
    unique_names(methods)
    seeds = list(range(first_seed, first_seed + episodes))
    geometry = run_methods(methods, seeds, scenario, action_space, max_steps, log)

    baseline = next((m for m in methods if m.name == 'random'), None)
    results = {
        'command': command,
        'scenario': scenario,
        'seeds': seeds,
        'max_steps': max_steps,
        'action_space': action_space,
        'resolution': RESOLUTION,
        'publish_rate': PUBLISH_RATE,
        'turn_rate': TURN_RATE,
        'cell_size': CELL,
        'floor_cells': len(geometry.floor_cells),
        'sectors': geometry.open_sectors,
        'bootstrap': {'resamples': resamples, 'confidence': CONFIDENCE, 'paired': True},
        'methods': {
            m.name: {
                'description': m.description,
                'summary': summarize(m, baseline, resamples),
                'episodes': [
                    {'seed': e.seed, 'steps': e.steps, 'tics': e.tics, 'seconds': e.seconds}
                    | metrics.as_dict()
                    for e, metrics in zip(m.episodes, m.metrics)
                ],
                'trajectories': [
                    [[round(x, 1), round(y, 1)] for x, y in e.poses[:, :2].tolist()]
                    for e in m.episodes[:TRAJECTORY_EPISODES]
                ],
            }
            for m in methods
        },
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'eval.json'), 'w') as stream:
        json.dump(results, stream, indent=1)
    from pamiq.evaluation.plots import plot_coverage, plot_trajectories

    plot_coverage(results, os.path.join(out, 'coverage.png'))
    plot_trajectories(results, geometry, os.path.join(out, 'trajectories.png'))
    log(table(results))
    if max_steps is not None:
        log(f'episodes cut at {max_steps} steps: a smoke run, not the per-episode metric')
    return results
