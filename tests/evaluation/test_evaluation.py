"""The exploration yardstick (`pamiq eval`, issue 12): the map's floor cells and sectors, the
per-episode metrics, the bootstrap intervals, paired spawns, the baselines, and the command end
to end, on the real my_way_home in ViZDoom."""

from __future__ import annotations

import json
import os

from conftest import import_without
import numpy as np
from pamiq.doom.exploration import episode_metrics
from pamiq.doom.game import make_game
from pamiq.doom.geometry import CELL, Sector, read_map, segment_enters_cell
from pamiq.doom.stepping import (
    PUBLISH_RATE,
    RESOLUTION,
    TURN_RATE,
    step_tics,
)
from pamiq.evaluation.bootstrap import (
    bootstrap_mean,
    paired_difference,
    paired_ratio,
)
from pamiq.evaluation.episodes import play_episode
from pamiq.evaluation.forward_turn_policy import ForwardTurnPolicy
from pamiq.learning.random_policy import RandomPolicy
from pamiq.storage.weights import WeightsError
from pamiq.tools.cli import main as pamiq_main
from PIL import Image
import pytest

SCENARIO = 'my_way_home'


@pytest.fixture(scope='module')
def geometry(tmp_path_factory):
    return read_map(SCENARIO, str(tmp_path_factory.mktemp('engine')))


@pytest.fixture
def game(tmp_path):
    game = make_game(SCENARIO, RESOLUTION, 0, str(tmp_path))
    yield game
    game.close()


def square(x0: float, y0: float, side: float) -> np.ndarray:
    corners = [(x0, y0), (x0 + side, y0), (x0 + side, y0 + side), (x0, y0 + side)]
    return np.array([(*a, *b) for a, b in zip(corners, corners[1:] + corners[:1])], float)


# --- the map -------------------------------------------------------------------------------------


def test_a_sector_covers_the_cells_its_floor_meets_and_no_more():
    room = Sector(0, square(0.0, 0.0, 100.0), 0.0, 128.0)
    points = np.array([[50.0, 50.0], [99.0, 1.0], [101.0, 50.0], [-1.0, 50.0]])
    assert room.contains(points).tolist() == [True, True, False, False]
    assert room.cells() == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # Walls on grid lines (0 and 128) touch the cells beyond them without adding them.
    aligned = Sector(1, square(0.0, 0.0, 2 * CELL), 0.0, 128.0)
    assert aligned.cells() == {(0, 0), (0, 1), (1, 0), (1, 1)}
    # A sliver 8 units wide still meets the cells it crosses.
    sliver = Sector(2, square(60.0, 0.0, 8.0), 0.0, 128.0)
    assert sliver.cells() == {(0, 0), (1, 0)}
    assert not Sector(3, square(0, 0, 10), 64.0, 64.0).is_open  # a closed door


def test_a_segment_enters_a_cell_only_through_its_interior():
    assert segment_enters_cell(np.array([-10, 32, 80, 32]), (0, 0))
    assert segment_enters_cell(np.array([10, 10, 20, 20]), (0, 0))  # wholly inside
    assert not segment_enters_cell(np.array([64, -10, 64, 80]), (0, 0))  # along its right side
    assert not segment_enters_cell(np.array([0, 64, 64, 64]), (0, 0))  # along its top
    assert segment_enters_cell(np.array([-10, 74, 74, -10]), (0, 0))  # a diagonal across it
    assert not segment_enters_cell(np.array([54, 74, 74, 54]), (0, 0))  # through a corner only


def test_my_way_home_has_rooms_of_nine_floor_cells(geometry):
    # Sector 0 is the room spanning x 160..320, y -256..-96: its walls at x = 320 and
    # y = -256 lie on grid lines, so it meets cells 2..4 by -4..-2 and no others.
    first = geometry.sectors[0]
    assert first.cells() == {(i, j) for i in (2, 3, 4) for j in (-4, -3, -2)}
    assert geometry.open_sectors == len(geometry.sectors) >= 10
    assert first.cells() <= geometry.floor_cells
    assert [name for name, _, _ in geometry.things] == ['GreenArmor']  # the goal


# --- the metrics ---------------------------------------------------------------------------------


def test_metrics_of_a_hand_made_path(geometry):
    # Three positions in the first room's cells (2, -4) and (3, -4), then the corridor east.
    path = np.array([[170.0, -250.0], [200.0, -250.0], [250.0, -200.0], [350.0, -176.0]])
    sectors = geometry.sector_of(path)
    assert sectors[0] == sectors[1] == sectors[2] == 0 and sectors[3] not in (-1, 0)
    metrics = episode_metrics(path, False, geometry)
    assert (metrics.cells, metrics.sectors, metrics.goal) == (3, 2, False)
    assert metrics.floor_fraction == pytest.approx(3 / len(geometry.floor_cells))
    assert 0.0 < metrics.floor_fraction <= 1.0
    everywhere = [((i + 0.5) * CELL, (j + 0.5) * CELL) for i, j in geometry.floor_cells]
    assert episode_metrics(np.array(everywhere), True, geometry).floor_fraction == 1.0


def test_a_path_off_the_map_is_refused(geometry):
    with pytest.raises(ValueError, match='not floor cells'):
        episode_metrics(np.array([[170.0, -250.0], [5000.0, 5000.0]]), False, geometry)
    with pytest.raises(ValueError, match='spawn'):
        episode_metrics(np.zeros((0, 2)), False, geometry)


# --- the bootstrap -------------------------------------------------------------------------------


def test_the_interval_holds_the_mean_and_narrows_with_more_episodes():
    rng = np.random.default_rng(1)
    few, many = rng.poisson(20, 25), rng.poisson(20, 400)
    small, large = bootstrap_mean(few), bootstrap_mean(many)
    assert small.value == pytest.approx(few.mean())
    assert small.low < small.value < small.high
    assert large.low < large.value < large.high
    assert large.high - large.low < 0.5 * (small.high - small.low)
    assert bootstrap_mean(few) == small  # seeded: the same report twice


def test_paired_comparisons_keep_each_spawn_with_its_pair():
    rng = np.random.default_rng(2)
    baseline = rng.uniform(5, 50, 100)  # spawns differ a lot
    method = 2 * baseline + rng.normal(0, 0.5, 100)
    ratio = paired_ratio(method, baseline)
    assert ratio.low < 2.0 < ratio.high and ratio.high - ratio.low < 0.05
    difference = paired_difference(method + 1.0, method)
    assert difference.value == pytest.approx(1.0) and difference.high - difference.low < 1e-9
    # Unpaired, the spread of the spawns would swamp a difference this small.
    spread = bootstrap_mean(method)
    assert spread.high - spread.low > 100 * (difference.high - difference.low + 1e-9)
    assert paired_ratio(baseline, baseline).as_dict() == {'value': 1.0, 'low': 1.0, 'high': 1.0}
    with pytest.raises(ValueError, match='differ in number'):
        paired_ratio(method[:10], baseline)


# --- the episodes --------------------------------------------------------------------------------


def test_steps_are_the_worlds():
    from pamiq.nodes.doom_world_node import WorldConfig

    world = WorldConfig()
    assert (
        world.publish_rate,
        world.turn_rate,
        world.resolution,
    ) == (PUBLISH_RATE, TURN_RATE, RESOLUTION)
    # DoomWorld.step advances to round(steps * 3.5) tics: Python rounds halves to even.
    assert [step_tics(k) for k in range(1, 11)] == [4, 3, 3, 4, 4, 3, 3, 4, 4, 3]
    assert sum(step_tics(k) for k in range(1, 601)) == 2100  # a whole my_way_home episode


def test_the_same_seed_gives_every_method_the_same_spawn(game, tmp_path):
    seeds = [1000, 1001, 1002, 1003]
    spawns = {}
    for name, policy in (
        ('random', RandomPolicy('continuous', 0)),
        ('forward_turn', ForwardTurnPolicy('continuous', 0)),
    ):
        spawns[name] = [play_episode(game, policy, s, 'continuous', 5).poses[0] for s in seeds]
    (tmp_path / 'other').mkdir()
    other = make_game(SCENARIO, RESOLUTION, 77, str(tmp_path / 'other'))
    try:
        # Another game, the seeds in another order.
        spawns['again'] = [
            play_episode(other, RandomPolicy('continuous', 9), s, 'continuous', 1).poses[0]
            for s in reversed(seeds)
        ][::-1]
    finally:
        other.close()
    assert np.array_equal(spawns['random'], spawns['forward_turn'])
    assert np.array_equal(spawns['random'], spawns['again'])
    assert len({tuple(p) for p in spawns['random']}) >= 3  # the seed does choose the spawn


def test_an_episode_runs_to_its_end_and_knows_the_goal(game, geometry):
    outcomes = []
    for seed in range(1000, 1005):
        episode = play_episode(game, RandomPolicy('continuous', seed), seed, 'continuous')
        reward = game.get_total_reward()  # my_way_home: +1 at the goal vest only
        outcomes.append(episode.goal)
        assert episode.goal == (reward > 0.5)
        assert len(episode.poses) == episode.steps + 1
        if not episode.goal:
            assert (episode.steps, episode.tics) == (600, 2100)  # the timeout, 60 s
        metrics = episode_metrics(episode.poses[:, :2], episode.goal, geometry)
        assert metrics.cells >= 2
    assert True in outcomes and False in outcomes


def test_the_same_seeds_replay_the_same_episode(game):
    first = play_episode(game, ForwardTurnPolicy('continuous', 3), 1004, 'continuous', 60)
    second = play_episode(game, ForwardTurnPolicy('continuous', 3), 1004, 'continuous', 60)
    assert np.array_equal(first.poses, second.poses)
    assert np.ptp(first.poses[:, :2], axis=0).max() > 100  # it walked


# --- the forward-turn policy ---------------------------------------------------------------------


def test_forward_turn_walks_forward_and_holds_each_turn_for_a_while():
    policy = ForwardTurnPolicy('continuous', 0, turn_scale=0.5, mean_hold_steps=10)
    actions = np.array([policy.step(None).action for _ in range(2000)])
    assert (actions[:, 0] == 1.0).all() and (actions[:, 1] == 0.0).all()
    assert np.abs(actions[:, 2]).max() <= 0.5
    changes = np.count_nonzero(np.diff(actions[:, 2]))
    assert 150 < changes < 250  # a new turn every ~10 steps
    policy.reset()
    assert policy.step(None).action[2] != actions[-1, 2]
    discrete = ForwardTurnPolicy('discrete', 0)
    indices = np.array([discrete.step(None).action for _ in range(500)])
    assert (indices[:, 0] == 1).all() and set(indices[:, 2]) == {0, 1, 2}
    assert not indices[:, [1, 3, 4]].any()
    with pytest.raises(WeightsError):
        policy.load_weights(b'')
    with pytest.raises(ValueError, match='mean_hold_steps'):
        ForwardTurnPolicy('continuous', 0, mean_hold_steps=0.5)


# --- the command ---------------------------------------------------------------------------------


@pytest.fixture(scope='module')
def trained_run(tmp_path_factory):
    """A run directory holding a checkpoint whose weights differ from a fresh policy's."""
    from pamiq.learning.curiosity_policy import CuriosityPolicy
    from pamiq.storage.checkpoint import save_checkpoint

    run_dir = tmp_path_factory.mktemp('run')
    models = CuriosityPolicy('inverse_dynamics', 'continuous', seed=5).models
    path = save_checkpoint(str(run_dir), 7, models, {}, {})
    return run_dir, path, models


def test_a_checkpoint_acts_through_the_curiosity_policy_with_its_weights(trained_run):
    from pamiq.evaluation.evaluate import checkpoint_method
    import torch

    run_dir, path, models = trained_run
    for where in (str(run_dir), path):
        method = checkpoint_method(where, 'inverse_dynamics', 'continuous', print)
        assert method.name == 'checkpoint v7'
        policy = method.policy_for(1000)
        loaded = policy.models['policy'].state_dict()
        for key, tensor in models['policy'].state_dict().items():
            assert torch.equal(loaded[key], tensor), key


@pytest.mark.filterwarnings('error::UserWarning')  # e.g. matplotlib's layout giving up
def test_pamiq_eval_writes_its_table_json_and_pictures(trained_run, tmp_path, capsys):
    run_dir, _, _ = trained_run
    out = tmp_path / 'eval'
    code = pamiq_main(
        [
            'eval', '--policies', 'random', 'forward_turn', '--checkpoint', str(run_dir),
            '--episodes', '2', '--first-seed', '1000', '--max-steps', '40', '--resamples', '200',
            '--out', str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0
    assert 'cells/episode [95% CI]' in printed and 'cells vs random' in printed
    assert 'random: 2/2 episodes' in printed and 'checkpoint v7: 2/2 episodes' in printed
    results = json.loads((out / 'eval.json').read_text())
    assert list(results['methods']) == ['random', 'forward_turn', 'checkpoint v7']
    assert results['seeds'] == [1000, 1001] and results['max_steps'] == 40
    assert results['command'].startswith('pamiq eval --policies random forward_turn')
    for name, method in results['methods'].items():
        assert [e['seed'] for e in method['episodes']] == [1000, 1001]
        assert all(e['steps'] == 40 and e['cells'] >= 1 for e in method['episodes'])
        summary = method['summary']
        assert summary['cells']['low'] <= summary['cells']['value'] <= summary['cells']['high']
        assert ('cells_ratio_to_random' in summary) == (name != 'random')
        assert len(method['trajectories']) == 2 and len(method['trajectories'][0]) == 41
    # Paired spawns: every method's first position of an episode is the same.
    starts = {tuple(m['trajectories'][0][0]) for m in results['methods'].values()}
    assert len(starts) == 1
    for picture in ('coverage.png', 'trajectories.png'):
        with Image.open(out / picture) as image:
            assert image.format == 'PNG' and image.width > 400


def test_pamiq_eval_refuses_bad_checkpoints_and_unknown_policies(tmp_path, capsys):
    out = str(tmp_path / 'out')
    missing = str(tmp_path / 'nothing-here')
    assert pamiq_main(['eval', '--checkpoint', missing, '--out', out]) == 2
    assert f'no checkpoint at {missing}' in capsys.readouterr().err
    empty_run = tmp_path / 'empty-run'
    empty_run.mkdir()
    assert pamiq_main(['eval', '--checkpoint', str(empty_run), '--out', out]) == 2
    assert 'no usable checkpoint in' in capsys.readouterr().err
    garbage = tmp_path / 'checkpoint-00000001.safetensors'
    garbage.write_bytes(b'not a checkpoint')
    assert pamiq_main(['eval', '--checkpoint', str(garbage), '--out', out]) == 2
    assert 'is unusable' in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        pamiq_main(['eval', '--policies', 'wander', '--out', out])
    assert exit_info.value.code == 2
    assert "invalid choice: 'wander'" in capsys.readouterr().err
    assert pamiq_main(['eval', '--policies', '--out', out]) == 2
    assert 'nothing to evaluate' in capsys.readouterr().err
    assert not os.path.exists(out)  # nothing half-written


def test_the_measuring_modules_need_no_torch(tmp_path):
    modules = (
        'pamiq.doom.geometry, pamiq.doom.exploration, pamiq.evaluation.bootstrap, '
        'pamiq.doom.stepping, pamiq.evaluation.episodes'
    )
    result = import_without('torch', modules, tmp_path)
    assert result.returncode == 0, result.stderr
