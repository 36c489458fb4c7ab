"""Shared plumbing of the benchmarks: private ROS environment, percentiles, table + JSON output."""

from __future__ import annotations

import json
import os
import platform
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))  # rosenv / rosgraph: the tests' process helpers

from rosenv import isolate_ros_environment  # noqa: E402

# Tests point this elsewhere so their short smoke runs never replace real results.
RESULTS = os.environ.get('PAMIQ_BENCH_RESULTS', os.path.join(REPO, 'bench', 'results'))


def setup() -> None:
    isolate_ros_environment(REPO)


def command_line(script: str, args) -> str:
    """How `script` was run: its options as typed (`--out` left out: where it wrote)."""
    options = []
    for name, value in vars(args).items():
        if name != 'out':
            shown = ' '.join(map(str, value)) if isinstance(value, list) else value
            options.append(f'--{name.replace("_", "-")} {shown}')
    return ' '.join([script, *options])


def write_json(path: str, result: dict) -> None:
    """`result` to `path` (its folder made), and say so."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as stream:
        json.dump(result, stream, indent=1)
    print(f'wrote {path}')


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


class StolenTime:
    """CPU time the hypervisor gave to others (steal in /proc/stat), sampled every `period` s
    in a thread: on a virtual machine a vCPU taken away for a while stalls whatever runs on it,
    and no process of the graph can say so itself."""

    def __init__(self, period: float = 0.02) -> None:
        self.samples: list[tuple[float, list[int]]] = []  # (monotonic, steal ticks per CPU)
        self.tick_ms = 1e3 / os.sysconf('SC_CLK_TCK')
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample, args=(period,), daemon=True)
        self.thread.start()

    @staticmethod
    def read() -> list[int]:
        """Steal ticks of each CPU (the 8th value of its cpuN line; 0 where there is none)."""
        with open('/proc/stat') as stream:
            lines = [line.split() for line in stream if line.startswith('cpu')]
        return [int(fields[8]) if len(fields) > 8 else 0 for fields in lines[1:]]

    def sample(self, period: float) -> None:
        while not self.stopping.wait(period):
            self.samples.append((time.monotonic(), self.read()))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()

    def within_ms(self, start: float, end: float) -> float:
        """The most steal of any one CPU between the samples around start and end (ms)."""
        before = [s for t, s in self.samples if t <= start]
        after = [s for t, s in self.samples if t >= end]
        if not before or not after:
            return float('nan')
        return self.tick_ms * max(b - a for a, b in zip(before[-1], after[0]))

    def total_percent(self) -> float:
        """Steal over the sampled time, as a share of all CPUs' time."""
        if len(self.samples) < 2:
            return float('nan')
        (t0, first), (t1, last) = self.samples[0], self.samples[-1]
        stolen_s = self.tick_ms / 1e3 * (sum(last) - sum(first))
        return 100.0 * stolen_s / ((t1 - t0) * len(first))
