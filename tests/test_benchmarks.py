"""Short smoke runs of the long benchmarks (the real runs live in bench/, not in the tests)."""

from __future__ import annotations

import json
import math
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
    # The nodes that do not train hold their memory flat from their first seconds. The trainer
    # fills its buffers and torch's pools for the first minutes, in steps of ~100 MB, which 10 s
    # cannot tell from a leak: the 30-minute soak (bench/results) judges it.
    assert set(data['unbounded']) <= {'trainer'}, data['nodes']
    for name in ('world', 'osc_actuator', 'agent'):
        node = data['nodes'][name]
        assert abs(node['rss_end_mb'] - node['rss_start_mb']) < 16, (name, node)


def test_curiosity_vs_random_smoke(tmp_path):
    data = run_bench('curiosity_vs_random.py', tmp_path, '--steps', '150', '--seeds', '0')
    for agent in ('random', 'curiosity'):
        # 150 steps are 15 s of play: each agent leaves its spawn's cell (64 map units).
        assert data['summary'][agent]['cells'][0] >= 2, data['summary']
    assert len(data['novelty']['unseen']) == 5
    rewards = [data['novelty']['familiar'], *data['novelty']['unseen'].values()]
    assert all(math.isfinite(reward) and reward > 0 for reward in rewards), rewards
    assert len({round(reward, 6) for reward in rewards}) > 1, rewards  # it depends on the room
