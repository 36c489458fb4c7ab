"""The PPO tuning of issue 23 on the training seeds: cells per training episode late in each run.

Reads bench/sweep.py's `tune` runs and, for the defaults, the first 1e5 steps of its `screen`
runs (the same settings and seeds, so the same episodes up to there). For each reward and
setting, per seed: the mean cells of the training episodes that ended in the window (75k-100k
steps by default) with a 95 % bootstrap interval over episodes, and the mean over the seeds.
These are training seeds: the choice is made here, the figures that count come from other
seeds.

    .venv/bin/python bench/tune_report.py --runs runs/sweep
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import RESULTS, command_line, write_json
from pamiq.evaluation.bootstrap import bootstrap_mean
import sweep

DEFAULTS = 'defaults'


def window_cells(directory: str, start: int, end: int) -> list[int] | None:
    """Cells of the training episodes that ended after `start` and by `end` steps, or None
    while the run has not finished `end` steps (its summary says how many it did)."""
    if not sweep.finished(directory, end):
        return None
    with open(os.path.join(directory, 'episodes.jsonl')) as stream:
        episodes = [json.loads(line) for line in stream if line.strip()]
    return [e['cells'] for e in episodes if start < e['ended_at'] <= end]


def runs_by_setting(runs: str) -> dict[tuple[str, str], dict[int, str]]:
    """(reward, setting) -> {seed: run directory}, the defaults' from the screen stage."""
    table: dict[tuple[str, str], dict[int, str]] = {}
    for run in sweep.plan('tune', []):
        key = (run['reward'], run.get('setting', f'{DEFAULTS}, {run["space"]}'))
        table.setdefault(key, {})[run['seed']] = os.path.join(runs, sweep.name_of(run))
    for run in sweep.plan('screen', []):
        if run['reward'] in {reward for reward, _ in table} and run['model'] == 'compact':
            key = (run['reward'], f'{DEFAULTS}, {run["space"]}')
            table.setdefault(key, {})[run['seed']] = os.path.join(runs, sweep.name_of(run))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', default='runs/sweep')
    parser.add_argument('--start', type=int, default=75_000)
    parser.add_argument('--end', type=int, default=100_000)
    parser.add_argument('--out', default=os.path.join(RESULTS, 'ppo_tuning.json'))
    args = parser.parse_args()
    rows = []
    for (reward, setting), seeds in sorted(runs_by_setting(args.runs).items()):
        per_seed = {}
        for seed, directory in sorted(seeds.items()):
            cells = window_cells(directory, args.start, args.end)
            if cells:
                per_seed[seed] = {'episodes': len(cells), **bootstrap_mean(cells).as_dict()}
        if not per_seed:
            continue
        options = sweep.TUNE_SETTINGS.get(setting, [])
        rows.append(
            {
                'reward': reward,
                'setting': setting,
                'options': ' '.join(options),
                'seeds': per_seed,
                'mean_over_seeds': float(np.mean([s['value'] for s in per_seed.values()])),
            }
        )
    print(f'cells per training episode, episodes ended in {args.start}-{args.end} steps')
    print(f'{"reward":14s} {"setting":20s} {"seed 0 [95% CI]":22s} {"seed 1 [95% CI]":22s} mean')
    for row in rows:
        shown = []
        for seed in (0, 1):
            s = row['seeds'].get(seed)
            shown.append(f'{s["value"]:.1f} [{s["low"]:.1f}, {s["high"]:.1f}]' if s else '-')
        print(
            f'{row["reward"]:14s} {row["setting"]:20s} {shown[0]:22s} {shown[1]:22s} '
            f'{row["mean_over_seeds"]:.1f}'
        )
    write_json(
        args.out,
        {
            'command': command_line('bench/tune_report.py', args),
            'window_steps': [args.start, args.end],
            'rows': rows,
        },
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
