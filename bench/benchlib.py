"""Shared plumbing of the benchmarks: private ROS environment, percentiles, table + JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))  # rosenv / rosgraph: the tests' process helpers

from rosenv import isolate_ros_environment  # noqa: E402

# Tests point this elsewhere so their short smoke runs never replace real results.
RESULTS = os.environ.get('PAMIQ_BENCH_RESULTS', os.path.join(REPO, 'bench', 'results'))


def setup() -> None:
    isolate_ros_environment(REPO)


def summary_ms(seconds: list[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(seconds, dtype=float) * 1e3
    if values.size == 0:
        return {'n': 0}
    return {
        'n': int(values.size),
        'p50_ms': float(np.percentile(values, 50)),
        'p95_ms': float(np.percentile(values, 95)),
        'p99_ms': float(np.percentile(values, 99)),
        'max_ms': float(values.max()),
        'mean_ms': float(values.mean()),
    }


def report(name: str, rows: list[tuple[str, str]], data: dict) -> str:
    """Print a two-column table and write bench/results/<name>.json; returns the JSON path."""
    width = max(len(label) for label, _ in rows)
    print(f'\n{name}')
    print('-' * (width + 30))
    for label, value in rows:
        print(f'{label:<{width}}  {value}')
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, f'{name}.json')
    data = {
        'benchmark': name,
        'when': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
        'machine': {
            'cpus': os.cpu_count(),
            'python': platform.python_version(),
            'platform': platform.platform(),
        },
        **data,
    }
    with open(path, 'w') as stream:
        json.dump(data, stream, indent=2)
    print(f'written {path}')
    return path


def graph_command(run_dir: str, osc_port: int, record: bool, *extra: str) -> list[str]:
    """`pamiq up` of the whole Doom graph with the curiosity agent, under its own supervisor."""
    command = [
        sys.executable,
        '-m',
        'pamiq.tools.cli',
        'up',
        '--supervise',
        '--quiet',
        'world:=doom',
    ]
    command += ['agent:=curiosity', f'osc_port:={osc_port}', f'run_dir:={run_dir}', *extra]
    return command + (['record:=true'] if record else [])
