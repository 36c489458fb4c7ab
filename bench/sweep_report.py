"""Evaluate the sweep's checkpoints and draw its results: learning curves and the results table.

    .venv/bin/python bench/sweep_report.py --evaluate --runs runs/sweep   # pamiq eval per milestone
    .venv/bin/python bench/sweep_report.py                                 # curves and table only

--evaluate: every finished run of bench/results/sweep/ gets `pamiq eval` at each milestone it
reached (1e5, 2.5e5, 5e5 steps): 100 held-out paired episodes (seeds 1000..1099, the same for
every method), with `random` on the same spawns for the paired ratio. Each evaluation's summary
and per-episode cells go to bench/results/sweep/<run>/eval_<steps>.json (resumable: done ones
are skipped).

Then: docs/evaluation/learning_curves.png (training episodes' cells vs steps, per method, the
mean over its seeds with a bootstrap 95 % band) and docs/evaluation/sweep_table.md (every method
at each milestone: evaluation cells with their interval and ratio to random, training speed,
wall time, the command).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
from pamiq.evaluation.bootstrap import bootstrap_mean

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results', 'sweep')
DOCS = os.path.join(HERE, '..', 'docs', 'evaluation')
MILESTONES = (100_000, 250_000, 500_000)
EVAL_EPISODES, FIRST_SEED = 100, 1000
BIN = 12_500  # steps per point of a learning curve


def runs() -> dict[str, dict]:
    """Finished runs: name -> summary (with its config)."""
    found = {}
    for path in sorted(glob.glob(os.path.join(RESULTS, '*', 'summary.json'))):
        with open(path) as stream:
            found[os.path.basename(os.path.dirname(path))] = json.load(stream)
    return found


# Settings are chosen on training seeds 0 and 1; the final stage's seeds 2.. are reported.
TRAINING_SEEDS = (0, 1)


def method_of(name: str, summary: dict) -> str:
    """The row a run belongs to: its reward, model, actions, any setting the sweep named it by
    (bench/sweep.py: <reward>_<model>_<space>[_<setting>]_s<seed>) and its kind of seed."""
    seeds = 'training seeds' if summary['seed'] in TRAINING_SEEDS else 'held-out seeds'
    base = f'{summary["reward"]}_{summary["model"]}_{summary["action_space"]}'
    setting = name.removeprefix(base).rpartition('_s')[0].strip('_')
    setting = f', {setting}' if setting else ''
    return f'{summary["reward"]} ({summary["model"]}, {summary["action_space"]}{setting}), {seeds}'


def evaluate(names: dict[str, dict], run_root: str) -> None:
    pamiq = os.path.join(os.path.dirname(sys.executable), 'pamiq')
    for name, summary in names.items():
        for steps, checkpoint in sorted(summary['checkpoints'].items(), key=lambda i: int(i[0])):
            if int(steps) not in MILESTONES:
                continue
            target = os.path.join(RESULTS, name, f'eval_{steps}.json')
            if os.path.exists(target):
                continue
            # the checkpoint as the run wrote it, or where the sweep's runs are now
            path = checkpoint
            if not os.path.exists(path):
                path = os.path.join(run_root, name, 'checkpoints', os.path.basename(checkpoint))
            out = os.path.join(run_root, name, f'eval_{steps}')
            command = [
                pamiq, 'eval', '--checkpoint', path, '--policies', 'random',
                '--episodes', str(EVAL_EPISODES), '--first-seed', str(FIRST_SEED),
                '--action-space', summary['action_space'], '--out', out,
            ]  # fmt: skip
            print(f'{name} at {steps}: {" ".join(command)}', flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, 'eval.json')) as stream:
                result = json.load(stream)
            brief = {
                'command': result['command'],
                'checkpoint': path,
                'methods': {
                    method: {
                        'summary': body['summary'],
                        'cells': [e['cells'] for e in body['episodes']],
                        'goals': [e['goal'] for e in body['episodes']],
                    }
                    for method, body in result['methods'].items()
                },
            }
            with open(target, 'w') as stream:
                json.dump(brief, stream, indent=1)


def seeds_bootstrap(
    trained: list[np.ndarray], random: list[np.ndarray], resamples: int = 2000, seed: int = 0
) -> tuple[tuple[float, float], tuple[float, float]]:
    """95 % intervals of the mean cells and of mean(trained) / mean(random) over several training
    seeds, each with its episodes: the seeds are resampled, then each drawn seed's episodes in
    pairs (the same spawn for both). Runs differ far more between seeds than episodes within a
    run, so pooling the episodes of all seeds would give too narrow an interval."""
    rng = np.random.default_rng(seed)
    means, ratios = np.empty(resamples), np.empty(resamples)
    for i in range(resamples):
        drawn = rng.integers(0, len(trained), len(trained))
        t_sum = r_sum = count = 0.0
        for s in drawn:
            picks = rng.integers(0, len(trained[s]), len(trained[s]))
            t_sum += trained[s][picks].sum()
            r_sum += random[s][picks].sum()
            count += len(picks)
        means[i], ratios[i] = t_sum / count, t_sum / r_sum
    return interval95(means), interval95(ratios)


def interval95(values: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def quiet_rates() -> dict[tuple[str, str, str], float]:
    """(model, reward, action space) -> steps/s measured by bench/train_engine.py on a quiet
    machine (with the most world processes it measured). The sweep's own runs share the machine
    with other work and are paused now and then, so their wall clocks say less."""
    path = os.path.join(HERE, 'results', 'train_engine.json')
    if not os.path.exists(path):
        return {}
    with open(path) as stream:
        rows = json.load(stream)['configurations']
    best: dict[tuple[str, str, str], tuple[int, float]] = {}
    for row in rows:
        key = (row['model'], row['reward'], row['action_space'])
        processes = row.get('world_processes', 0)
        if key not in best or processes > best[key][0]:
            best[key] = (processes, row['steps_per_second'])
    return {key: rate for key, (_, rate) in best.items()}


def training_episodes(name: str) -> list[dict]:
    with open(os.path.join(RESULTS, name, 'episodes.jsonl')) as stream:
        return [json.loads(line) for line in stream if line.strip()]


def plot_curves(names: dict[str, dict], path: str) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    groups: defaultdict[str, list[str]] = defaultdict(list)
    for name, summary in names.items():
        groups[method_of(name, summary)].append(name)
    figure, axis = plt.subplots(figsize=(10, 6))
    for method, members in sorted(groups.items()):
        by_bin: defaultdict[int, list[int]] = defaultdict(list)
        for name in members:
            for episode in training_episodes(name):
                by_bin[episode['ended_at'] // BIN].append(episode['cells'])
        bins = sorted(b for b, v in by_bin.items() if len(v) >= 5)
        if not bins:
            continue
        x = [(b + 0.5) * BIN for b in bins]
        mean = [np.mean(by_bin[b]) for b in bins]
        bands = [bootstrap_mean(by_bin[b], resamples=2000) for b in bins]
        line = axis.plot(x, mean, label=f'{method}, {len(members)} seed(s)')[0]
        axis.fill_between(
            x, [b.low for b in bands], [b.high for b in bands], alpha=0.2, color=line.get_color()
        )
    axis.set_xlabel('agent steps (all worlds)')
    axis.set_ylabel('distinct 64x64 cells per training episode')
    axis.set_title('my_way_home: coverage while training (mean over seeds, bootstrap 95 % band)')
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(names: dict[str, dict]) -> str:
    groups: defaultdict[str, list[str]] = defaultdict(list)
    for name, summary in names.items():
        groups[method_of(name, summary)].append(name)
    lines = [
        '| method | seeds | '
        + ' | '.join(
            f'cells at {m / 1e5:g}e5 [95 % CI], x random [paired 95 % CI]' for m in MILESTONES
        )
        + ' | steps/s (quiet) | wall time per 2.5e5 steps | command (first seed) |',
        '|---' * (len(MILESTONES) + 5) + '|',
    ]
    rates = quiet_rates()
    for method, members in sorted(groups.items()):
        cells = []
        for milestone in MILESTONES:
            trained, random = [], []
            for name in sorted(members, key=lambda n: names[n]['seed']):
                path = os.path.join(RESULTS, name, f'eval_{milestone}.json')
                if not os.path.exists(path):
                    continue
                with open(path) as stream:
                    result = json.load(stream)
                for label, body in result['methods'].items():
                    (random if label == 'random' else trained).append(body['cells'])
            if not trained:
                cells.append('–')
                continue
            # each seed's 100 episodes, paired with random on the same spawns
            (low, high), (r_low, r_high) = seeds_bootstrap(
                [np.asarray(c, float) for c in trained], [np.asarray(c, float) for c in random]
            )
            t, r = np.concatenate(trained).astype(float), np.concatenate(random).astype(float)
            each = ', '.join(f'{np.mean(c):.1f}' for c in trained)
            cells.append(
                f'{t.mean():.1f} [{low:.1f}, {high:.1f}], '
                f'{t.mean() / r.mean():.2f}x [{r_low:.2f}, {r_high:.2f}]'
                + (f' (seeds: {each})' if len(trained) > 1 else '')
            )
        first = names[sorted(members)[0]]
        rate = rates.get((first['model'], first['reward'], first['action_space']))
        command = open(os.path.join(RESULTS, sorted(members)[0], 'command.txt')).read().strip()
        command = re.sub(r'--out \S*/(\S+)', r'--out runs/sweep/\1', command)
        lines.append(
            f'| {method} | {len(members)} | '
            + ' | '.join(cells)
            + (f' | {rate:.0f} | {250_000 / rate / 60:.1f} min' if rate else ' | – | –')
            + f' | `{command}` |'
        )
    return '\n'.join(lines) + '\n'


def main() -> int:
    global RESULTS  # the functions above read the folder of finished runs from here
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--evaluate', action='store_true', help='run pamiq eval where missing')
    parser.add_argument('--runs', default='runs/sweep', help="where the sweep's runs are")
    parser.add_argument(
        '--results',
        default=RESULTS,
        help="the finished runs to evaluate (another folder than the sweep's, e.g. "
        'bench/results/tune: its table is printed and the docs are left alone)',
    )
    parser.add_argument('--only', nargs='*', default=[], help='with --results: these runs only')
    args = parser.parse_args()
    sweep = os.path.abspath(args.results) == os.path.abspath(RESULTS)
    RESULTS = args.results
    names = runs()
    if not sweep and args.only:
        names = {k: v for k, v in names.items() if k in args.only}
    if args.evaluate:
        evaluate(names, args.runs)
    if not sweep:  # another folder's runs: their table only, the docs stay the sweep's
        print(table(names))
        return 0
    os.makedirs(DOCS, exist_ok=True)
    plot_curves(names, os.path.join(DOCS, 'learning_curves.png'))
    text = table(names)
    with open(os.path.join(DOCS, 'sweep_table.md'), 'w') as stream:
        stream.write(text)
    print(text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
