"""Short smoke runs of the long benchmarks (the real runs live in bench/, not in the tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO


def run_bench(script: str, tmp_path, *args: str) -> dict:
    env = dict(os.environ, PAMIQ_BENCH_RESULTS=str(tmp_path))
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, 'bench', script), *args],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [path] = [os.path.join(tmp_path, f) for f in os.listdir(tmp_path) if f.endswith('.json')]
    with open(path) as stream:
        return json.load(stream)


def test_soak_smoke(tmp_path):
    data = run_bench('soak.py', tmp_path, '--duration', '10', '--interval', '2')
    assert len(data['samples']) >= 5
    assert {'world', 'osc_actuator', 'agent', 'trainer'} <= set(data['nodes'])
    assert data['action_hz_mean'] > 8.0
    assert data['exit_code'] == 0
    assert isinstance(data['unbounded'], list)


def test_curiosity_vs_random_smoke(tmp_path):
    data = run_bench('curiosity_vs_random.py', tmp_path, '--steps', '150', '--seeds', '0')
    for agent in ('random', 'curiosity'):
        assert data['summary'][agent]['cells'][0] > 0
    assert data['novelty']['familiar'] > 0
    assert len(data['novelty']['unseen']) == 5
    assert all(reward > 0 for reward in data['novelty']['unseen'].values())
