"""`pamiq train --world doom` as a user runs it: a smoke run on 2 worlds, interrupted and
resumed to the very result of an uninterrupted run, then `pamiq eval` of what it trained."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO
import numpy as np
import pytest
import safetensors.torch

PAMIQ = [sys.executable, '-m', 'pamiq.tools.cli']
SMALL = ['--world', 'doom', '--envs', '2', '--rollout-length', '32', '--episode-tics', '120']
SMALL += ['--checkpoint-every', '1', '--threads', '1', '--seed', '5']


def train(out: str, steps: int, reward: str = 'e3b', *extra: str) -> subprocess.CompletedProcess:
    command = [*PAMIQ, 'train', *SMALL, '--steps', str(steps), '--reward', reward, '--out', out]
    return subprocess.run(
        [*command, *extra], capture_output=True, text=True, timeout=240, cwd=REPO
    )


def newest_weights(run: str) -> dict:
    directory = os.path.join(run, 'checkpoints')
    newest = sorted(os.listdir(directory))[-1]
    return safetensors.torch.load_file(os.path.join(directory, newest))


def episodes(run: str) -> list[dict]:
    with open(os.path.join(run, 'episodes.jsonl')) as stream:
        return [json.loads(line) for line in stream]


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    # The games step in this process for one, in 1 then 2 worker processes for the other: the
    # number of processes changes nothing and is not a setting a resume must repeat.
    # An entropy target above the buttons' greatest entropy (4.7 nats) raises the coefficient
    # every update: a resume must restore it.
    whole, halves = str(tmp_path / 'whole'), str(tmp_path / 'halves')
    held = ('--target-entropy', '6')
    done = train(whole, 256, 'e3b', '--world-processes', '0', *held)
    assert done.returncode == 0, done.stderr
    assert 'steps/s' in done.stdout and 'cells/episode' in done.stdout and 'ETA' in done.stdout
    first = train(halves, 128, 'e3b', '--world-processes', '1', *held)
    assert first.returncode == 0, first.stderr
    second = train(halves, 256, 'e3b', '--world-processes', '2', *held)
    assert second.returncode == 0, second.stderr
    assert 'resumed' in second.stdout and 'at 128 steps' in second.stdout
    a, b = newest_weights(whole), newest_weights(halves)
    assert a.keys() == b.keys()
    different = [key for key in a if not bool((a[key] == b[key]).all())]
    assert not different, different[:5]
    assert episodes(whole) == episodes(halves) and len(episodes(whole)) >= 4
    summary = json.load(open(os.path.join(halves, 'summary.json')))
    assert summary['steps_done'] == 256 and summary['reward'] == 'e3b'
    assert summary['ppo']['target_entropy'] == 6
    assert os.listdir(os.path.join(halves, 'tensorboard'))

    evaluation = subprocess.run(
        [*PAMIQ, 'eval', '--checkpoint', halves, '--policies', 'random', '--episodes', '2',
         '--max-steps', '40', '--action-space', 'discrete', '--resamples', '100',
         '--out', str(tmp_path / 'eval')],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )  # fmt: skip
    assert evaluation.returncode == 0, evaluation.stderr
    results = json.load(open(tmp_path / 'eval' / 'eval.json'))
    trained = [m for m in results['methods'] if m.startswith('e3b compact 256 steps')]
    assert trained and results['methods'][trained[0]]['summary']['episodes'] == 2


def test_a_run_refuses_to_resume_with_other_settings(tmp_path):
    out = str(tmp_path / 'run')
    assert train(out, 64).returncode == 0
    other = train(out, 128, 'rnd')
    assert other.returncode == 2
    assert 'other settings' in other.stderr and 'another --out' in other.stderr


def test_a_run_begun_before_a_ppo_setting_existed_resumes_with_its_default(tmp_path):
    out = str(tmp_path / 'run')
    assert train(out, 64).returncode == 0
    path = os.path.join(out, 'config.json')
    saved = json.load(open(path))
    # as a run of the code before these settings were added
    del saved['ppo']['target_entropy'], saved['anneal_learning_rate']
    json.dump(saved, open(path, 'w'))
    resumed = train(out, 128)
    assert resumed.returncode == 0, resumed.stderr
    assert 'at 64 steps' in resumed.stdout
    refused = train(out, 192, 'e3b', '--target-entropy', '1')
    assert refused.returncode == 2 and 'ppo differ' in refused.stderr


def test_an_annealed_learning_rate_falls_to_zero_at_the_last_step_and_binds_the_steps(tmp_path):
    from pamiq.learning.train_config import TrainConfig

    constant = TrainConfig(steps=1000, envs=2, rollout_length=50, learning_rate=0.1)
    assert [constant.policy_learning_rate(u) for u in (0, 5, 9)] == [0.1, 0.1, 0.1]
    annealed = TrainConfig(**{**vars(constant), 'anneal_learning_rate': True})
    rates = [annealed.policy_learning_rate(u) for u in range(10)]  # 10 updates of 100 steps
    assert rates[0] == 0.1 and rates[5] == pytest.approx(0.05) and rates[9] == pytest.approx(0.01)
    # A run's rate comes from its updates done (restored on resume) and --steps: 2 updates of
    # 2 worlds x 32 steps, the last at half the rate.
    out = str(tmp_path / 'run')
    assert train(out, 128, 'e3b', '--anneal-lr').returncode == 0
    summary = json.load(open(os.path.join(out, 'summary.json')))
    assert summary['anneal_learning_rate'] is True
    last = summary['last_losses']['ppo/learning_rate']
    assert last == pytest.approx(summary['learning_rate'] / 2)
    # The schedule ends at --steps, so an annealed run resumes only with the same --steps.
    longer = train(out, 192, 'e3b', '--anneal-lr')
    assert longer.returncode == 2 and 'steps differ' in longer.stderr


@pytest.mark.parametrize(
    'args, message',
    [
        (['--world', 'doom'], '--world needs --out'),
        (['--world', 'doom', '--out', 'x', '--envs', '0'], '--envs must be 1..256'),
        ([], 'give --world doom --out DIR'),
        (['--world', 'doom', '--out', 'x', '--horizon', '-1'], '--horizon must be at least 0'),
        (['--world', 'doom', '--out', 'x', '--ent-coef', '2'], '--ent-coef must be in [0, 1]'),
        (
            ['--world', 'doom', '--out', 'x', '--ent-coef', '0', '--target-entropy', '1'],
            '--target-entropy adapts --ent-coef',
        ),
    ],
)
def test_bad_training_options_get_clear_errors(args, message, tmp_path):
    result = subprocess.run(
        [*PAMIQ, 'train', *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert result.returncode == 2 and message in result.stderr


def test_horizon_reaches_the_reward_as_the_live_agents_memory_horizon(tmp_path, monkeypatch):
    # --horizon: the e3b memory also starts afresh every so many steps of a world, as the live
    # graph's memory_horizon does (bench/harness_vs_graph.py trains the harness like the graph).
    import argparse

    from pamiq.learning import engine
    from pamiq.tools.train_world import add_arguments, train_world

    built = []

    class Built(engine.Trainer):
        def run(self) -> dict:
            built.append(self)
            return {'steps_done': 0, 'episodes': 0, 'mean_cells_last_100': 0.0}

    monkeypatch.setattr(engine, 'Trainer', Built)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    for extra, horizon in (([], 0), (['--horizon', '500'], 500)):
        out = str(tmp_path / f'run{horizon}')
        assert train_world(parser.parse_args(['--world', 'doom', '--out', out, *extra])) == 0
        assert built[-1].config.horizon == horizon and built[-1].reward.horizon == horizon


def test_a_world_that_just_began_its_episode_is_saved_and_rebuilt(tmp_path):
    from pamiq.doom.training_worlds import DoomWorlds

    worlds = DoomWorlds(2, 0, 'discrete', str(tmp_path), episode_tics=60)
    try:
        worlds.step(np.array([[1, 0, 1, 0, 0], [1, 0, 2, 0, 0]]), 2)
        snapshot = worlds.snapshot()  # world states right after a step, and none for a new one
        worlds.begin([1], [worlds.states[1].steps])
        fresh = worlds.snapshot()
        assert fresh['worlds'][1]['actions'].shape == (0, 5)
        frames_before = worlds.observe()[0]
        worlds.restore(fresh)
        assert np.array_equal(worlds.observe()[0], frames_before)
        assert snapshot['worlds'][0]['actions'].shape == (1, 5)
    finally:
        worlds.close()


def test_a_world_process_that_dies_is_named_in_a_clear_error(tmp_path):
    from pamiq.doom.training_worlds import DoomWorlds

    worlds = DoomWorlds(2, 0, 'discrete', str(tmp_path), processes=2)
    processes = [w.process for w in worlds.games.workers]
    try:
        worlds.step(np.array([[1, 0, 1, 0, 0], [1, 0, 2, 0, 0]]), 2)
        worker = worlds.games.workers[1]
        worker.process.kill()
        worker.process.wait()
        with pytest.raises(RuntimeError, match=r'worlds 1\.\.1 could not advance: its process '):
            worlds.step(np.array([[1, 0, 1, 0, 0], [1, 0, 2, 0, 0]]), 4)
    finally:
        worlds.close()
    assert all(p.poll() is not None for p in processes)  # the other one was closed too
