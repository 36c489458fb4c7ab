"""The in-process training harness of issue 12 (bench/train_in_process.py), on the real
my_way_home in ViZDoom: every reward trains and leaves checkpoints `pamiq eval` loads, the
learner gets the reward that was chosen (zero: only zeros, with finite losses; oracle_count:
falling for revisited cells), training episodes use their own seeds, and the script runs end to
end.

The function-level runs use a small LearnerConfig (short rollouts, few minibatches) so that
160 steps hold several rounds, the encoder's freeze included, in seconds; the code path is the
one the default configuration takes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
from pamiq.doom import training_worlds
from pamiq.learning.config import LearnerConfig, PPOConfig
from pamiq.learning.curiosity import RewardNormalizer
from pamiq.learning.learner import Learner
from pamiq.learning.policy import StepResult
from pamiq.tools.cli import main as pamiq_main
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'bench'))

import train_in_process as harness  # noqa: E402

STEPS = 160
EPISODE_TICS = 210  # 60 steps: a 160-step run crosses episode boundaries
SMALL = LearnerConfig(
    rollout_length=16,
    batch_size=8,
    encoder_batches=2,
    dynamics_batches=2,
    min_buffer_size=16,
    encoder_rounds=2,
    ppo=PPOConfig(update_epochs=1, num_minibatches=4),
)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """reward -> (summary, the rewards the learner was fed, every round's metrics)."""
    out = str(tmp_path_factory.mktemp('runs'))
    torch.set_num_threads(1)
    results = {}
    add = Learner.add
    for reward in harness.REWARDS:
        fed: list[float] = []
        rounds: list[dict[str, float]] = []

        def recording_add(self, step, actor='', fed=fed):
            fed.append(step.reward)
            add(self, step, actor)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(Learner, 'add', recording_add)
            summary = harness.train(
                STEPS,
                0,
                reward,
                out,
                (80,),
                SMALL,
                progress=lambda line: None,
                on_round=rounds.append,
                episode_tics=EPISODE_TICS,
            )
        results[reward] = (summary, fed, rounds)
    return out, results


@pytest.mark.parametrize('reward', harness.REWARDS)
def test_each_reward_trains_every_rollout_and_checkpoints_its_milestones(runs, reward):
    out, results = runs
    summary, fed, rounds = results[reward]
    assert summary['steps'] == STEPS and len(fed) == STEPS
    assert summary['rounds'] == len(rounds) >= 5 and summary['skipped_rollouts'] == 0
    assert summary['version'] == summary['rounds']
    assert set(summary['checkpoints']) == {'80', '160'}
    middle, end = summary['checkpoints']['80'], summary['checkpoints']['160']
    assert middle != end and os.path.isfile(middle) and os.path.isfile(end)
    with open(os.path.join(harness.run_dir_for(out, reward, 0), 'summary.json')) as stream:
        assert json.load(stream)['checkpoints'] == summary['checkpoints']


def test_pamiq_eval_loads_and_evaluates_every_rewards_checkpoints(runs, tmp_path):
    """One `pamiq eval` for all: each run directory (its newest) and a milestone's file."""
    out, results = runs
    paths = [harness.run_dir_for(out, reward, 0) for reward in harness.REWARDS]
    paths.append(results['zero'][0]['checkpoints']['80'])
    arguments = ['--policies', '--max-steps', '20', '--episodes', '2', '--resamples', '200']
    assert pamiq_main(['eval', '--checkpoint', *paths, '--out', str(tmp_path), *arguments]) == 0
    with open(tmp_path / 'eval.json') as stream:
        methods = json.load(stream)['methods']
    versions = [results[reward][0]['version'] for reward in harness.REWARDS]
    middle = int(os.path.basename(paths[-1]).removeprefix('checkpoint-').split('.')[0])
    assert [int(name.split()[1].removeprefix('v')) for name in methods] == [*versions, middle]
    assert middle < versions[1]
    assert all([e['steps'] for e in m['episodes']] == [20, 20] for m in methods.values())


def test_zero_feeds_the_learner_only_zeros_and_its_losses_stay_finite(runs):
    _, fed, rounds = runs[1]['zero']
    assert fed == [0.0] * STEPS
    assert all(r['reward/mean'] == 0.0 for r in rounds)
    assert all(math.isfinite(value) for r in rounds for value in r.values())
    assert any(r['ppo/value_loss'] > 0 for r in rounds)  # PPO did learn something (values)


def test_zero_rewards_keep_the_reward_normaliser_finite():
    """All-zero rewards shrink the running variance towards 0; r / (std + 1e-8) stays 0."""
    normalizer = RewardNormalizer()
    for _ in range(4000):  # 5e5 steps of 128-step rollouts
        normalized = normalizer.normalize(torch.zeros(128))
    assert torch.equal(normalized, torch.zeros(128))
    assert math.isfinite(normalizer.var) and normalizer.var >= 0.0


def test_prediction_error_feeds_the_policys_own_reward(runs):
    _, fed, _ = runs[1]['prediction_error']
    assert fed[0] == 0.0  # no prediction before the first step
    assert all(r > 0.0 for r in fed[1:])  # the forward model's squared error


def test_oracle_count_rewards_fall_for_a_revisited_cell():
    counts = harness.reward_function('oracle_count')
    result = StepResult(np.zeros(3, np.float32), 0.7, 0.0, 0.0, 0)
    visits = [counts(result, (10.0, 10.0)) for _ in range(4)]
    assert visits == [1.0, 1 / math.sqrt(2), 1 / math.sqrt(3), 0.5]
    assert counts(result, (70.0, 10.0)) == 1.0  # the next 64x64 cell: a first visit
    assert counts(result, (63.0, 1.0)) == 1 / math.sqrt(5)  # the first cell again


def test_oracle_count_in_training_rewards_first_visits_and_revisits_less(runs):
    summary, fed, _ = runs[1]['oracle_count']
    first_visits = sum(r == 1.0 for r in fed)
    cells_per_episode = [e['cells'] for e in summary['episodes']]
    assert 1 <= first_visits <= sum(cells_per_episode) + summary['unfinished_episode']['cells']
    assert all(any(math.isclose(r, 1 / math.sqrt(n)) for n in range(1, STEPS + 1)) for r in fed)
    assert min(fed) < 0.3  # a cell held for more than 11 steps


def test_training_episodes_restart_on_seeds_of_their_own(runs):
    summary, _, _ = runs[1]['zero']
    seeds = [e['seed'] for e in summary['episodes']]
    assert len(seeds) >= 2
    assert seeds == [harness.episode_seed(0, k) for k in range(len(seeds))]
    assert all(e['steps'] <= 60 for e in summary['episodes'])


def test_episode_seeds_of_training_seeds_never_meet_each_other_or_evaluation():
    last_of_seed_0 = training_worlds.episode_seed(0, training_worlds.EPISODES_PER_SEED - 1)
    assert training_worlds.episode_seed(0, 0) >= 1_000_000  # pamiq eval's seeds start at 1000
    assert last_of_seed_0 < training_worlds.episode_seed(1, 0)
    assert (
        training_worlds.episode_seed(
            training_worlds.MAX_TRAINING_SEED, training_worlds.EPISODES_PER_SEED - 1
        )
        < 2**31
    )
    for seed, episode in ((-1, 0), (training_worlds.MAX_TRAINING_SEED + 1, 0), (0, -1)):
        with pytest.raises(ValueError):
            training_worlds.episode_seed(seed, episode)
    with pytest.raises(ValueError, match='unknown reward'):
        harness.reward_function('rnd')


def test_the_script_end_to_end(tmp_path):
    out = tmp_path / 'runs'
    completed = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, 'bench', 'train_in_process.py'),
            *('--steps', '60', '--seed', '3', '--reward', 'oracle_count'),
            *('--checkpoints-at', '30', '--out', str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    summary = json.loads(completed.stdout)
    assert summary['steps'] == 60 and summary['reward'] == 'oracle_count'
    assert summary['rounds'] == 0  # 60 steps do not complete a 128-step rollout
    assert set(summary['checkpoints']) == {'30', '60'}
    run_dir = out / 'oracle_count_seed3'
    arguments = ['--policies', '--max-steps', '20', '--episodes', '2', '--resamples', '200']
    arguments += ['--out', str(tmp_path)]
    assert pamiq_main(['eval', '--checkpoint', summary['checkpoints']['60'], *arguments]) == 0
    assert os.path.isfile(run_dir / 'summary.json')
    again = ['--steps', '60', '--seed', '3', '--reward', 'oracle_count', '--out', str(out)]
    assert harness.main(again) == 2  # its checkpoints would mix with the first run's
