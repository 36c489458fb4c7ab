"""Several actors, one trainer: `actors:=N`, and actors on other "hosts" (`role:=`) that join
and leave a running trainer. Real processes through `pamiq up`, as users start them."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from pamiq.learning.learner import PENDING_ROLLOUTS
from pamiq.ros import qos
from pamiq.ros.bags import read_messages
from rosgraph import NAMESPACE, diagnostic_value, free_udp_port, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32
from test_bringup import PamiqUp, fast_params, pamiq_cli
from test_lockstep import EVERYTHING


def versions(probe, actor: str) -> set[int]:
    """The policy versions an actor's agent has acted with (from its agent/step)."""
    steps = probe.messages(f'/{NAMESPACE}/{actor}/agent/step')
    return {int(dict(zip(m.name, m.position))['policy_version']) for m in steps}


def trainer_value(probe, key: str) -> str | None:
    return diagnostic_value(probe, f'{NAMESPACE}/trainer', key)


def test_two_lockstep_actors_feed_one_trainer_act_with_its_weights_and_obey_ctl(probe, tmp_path):
    for actor in ('actor0', 'actor1'):
        probe.record(JointState, f'/{NAMESPACE}/{actor}/agent/step', EVERYTHING)
    probe.record(Float32, 'trainer/update/actors', qos.DEFAULT)
    probe.record(Float32, 'trainer/update/samples', qos.DEFAULT)
    probe.record(DiagnosticArray, '/diagnostics', 100)
    up = PamiqUp(
        'world:=doom',
        'real_time_factor:=0',
        'actors:=2',
        'model:=compact',  # the actors and the trainer's intake are tested, not the model
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        f'params_file:={fast_params(tmp_path)}',
        'record:=true',
    )
    try:
        both = lambda: [m.data for m in probe.messages('trainer/update/actors')].count(2.0) >= 2
        assert wait_until(both, 180.0), up.output()[-4000:]
        # An update holds whole 32-step rollouts, at least one of each actor (more when the
        # trainer was behind, as on a slow machine), never more than each actor may keep waiting.
        counts = [m.data for m in probe.messages('trainer/update/actors')]
        samples = [m.data for m in probe.messages('trainer/update/samples')]
        for actors, held in zip(counts, samples):
            assert held % 32 == 0 and 32 * actors <= held <= 32 * actors * PENDING_ROLLOUTS, (
                counts,
                samples,
            )
        # Both agents act with the trainer's versions, not only their initial weights.
        assert wait_until(lambda: max(versions(probe, 'actor0')) >= 2, 60.0)
        assert wait_until(lambda: max(versions(probe, 'actor1')) >= 2, 60.0)
        assert trainer_value(probe, 'actors') == '2'
        # Lockstep waits for the trainer: no rollout went untrained.
        assert trainer_value(probe, 'rollouts skipped (trainer behind)') == '0'
        # Every part of every step reached the trainer through the bursts (a lost action would
        # drop its step and break the sequence).
        assert trainer_value(probe, 'dropped pairs') == '0', trainer_value(
            probe, 'parts the dropped pairs lacked'
        )
        assert trainer_value(probe, 'sequence gaps') == '0'
        # Two actors, two sequences: the same step index comes from each.
        steps = [
            {int(dict(zip(m.name, m.position))['step']) for m in probe.messages(topic)}
            for topic in (f'/{NAMESPACE}/actor0/agent/step', f'/{NAMESPACE}/actor1/agent/step')
        ]
        assert len(steps[0] & steps[1]) > 50

        # `pamiq ctl` reaches every actor: status lists both, pause stops both agents. (Status
        # first, and for long enough: lockstep nodes publish diagnostics once per simulated
        # second, and simulated time stands while the agents wait for the trainer or are paused.)
        status = pamiq_cli('ctl', 'status', '--seconds', '10')
        for actor in ('actor0', 'actor1'):
            assert f'pamiq/{actor}/world' in status.stdout, status.stdout
            assert f'pamiq/{actor}/agent' in status.stdout, status.stdout
        result = pamiq_cli('ctl', 'pause')
        assert result.returncode == 0, result.stdout + result.stderr
        for actor in ('actor0', 'actor1'):
            assert f'/pamiq/{actor}/agent: paused' in result.stdout, result.stdout
        time.sleep(1.0)
        for actor in ('actor0', 'actor1'):
            probe.clear(f'/{NAMESPACE}/{actor}/agent/step')
        time.sleep(1.5)
        assert not any(
            probe.messages(f'/{NAMESPACE}/{a}/agent/step') for a in ('actor0', 'actor1')
        )
    finally:
        code = up.stop(60.0)
    assert code == 0, up.output()[-3000:]
    out = up.output()
    assert '[actor0/world]' in out and '[actor1/agent]' in out  # output names the actor
    assert '[status] acting 2 actors' in out
    assert 'bad OSC input' not in out  # no actor's input hears another's world
    assert (tmp_path / 'run' / 'logs' / 'actor1_world.log').is_file()
    # The bags hold every actor's steps and poses, and the report draws each actor's path.
    [session] = (tmp_path / 'run' / 'bags').iterdir()
    recorded = {m.topic for m in read_messages([str(session)])}
    for actor in ('actor0', 'actor1'):
        assert {f'/pamiq/{actor}/agent/step', f'/pamiq/{actor}/world/pose'} <= recorded
    report = pamiq_cli('report', str(tmp_path / 'run'), timeout=120)
    assert report.returncode == 0, report.stdout + report.stderr
    assert 'trajectory.png' in report.stdout


def test_an_actor_that_joins_later_is_picked_up_and_one_that_leaves_is_reported(probe, tmp_path):
    params = fast_params(tmp_path)
    run_dir = tmp_path / 'run'
    probe.record(Float32, 'trainer/update/actors', qos.DEFAULT)
    probe.record(DiagnosticArray, '/diagnostics', 100)
    for actor in ('actor0', 'actor1'):
        probe.record(JointState, f'/{NAMESPACE}/{actor}/agent/step', EVERYTHING)
    trainer = PamiqUp('role:=trainer', f'run_dir:={run_dir}', f'params_file:={params}')
    first = second = None
    try:
        assert wait_until(lambda: 'waiting for an actor' in trainer_status(probe), 60.0)
        first = PamiqUp(
            'role:=actor',
            f'osc_port:={free_udp_port()}',
            f'run_dir:={run_dir}',
            f'params_file:={params}',
        )
        assert wait_until(lambda: 'actor /pamiq/actor0 joined' in trainer.output(), 60.0)
        second = PamiqUp(
            'role:=actor',
            'first_actor:=1',
            f'osc_port:={free_udp_port() - 2}',  # actor i listens on osc_port + 2i
            f'run_dir:={run_dir}',
            f'params_file:={params}',
        )
        assert wait_until(lambda: 'actor /pamiq/actor1 joined' in trainer.output(), 60.0)
        assert wait_until(lambda: versions(probe, 'actor0') - {0}, 90.0), trainer.output()
        held = lambda: 2.0 in [m.data for m in probe.messages('trainer/update/actors')]
        assert wait_until(held, 90.0), trainer.output()[-3000:]

        assert first.stop(60.0) == 0, first.output()[-3000:]
        assert wait_until(lambda: 'actor /pamiq/actor0 left' in trainer.output(), 30.0)
        assert wait_until(lambda: 'actor(s) left: /pamiq/actor0' in trainer_status(probe), 10.0)
        # The rest go on: the trainer updates on actor1's rollouts alone. (A rollout actor0
        # finished before leaving may still be in the next update.)
        probe.clear('trainer/update/actors')
        alone = lambda: 1.0 in [m.data for m in probe.messages('trainer/update/actors')]
        assert wait_until(alone, 90.0), trainer.output()[-3000:]
        assert trainer.process.poll() is None  # never restarted
    finally:
        for up in (second, first):
            if up is not None:
                up.stop(60.0)
        code = trainer.stop(60.0)
    assert code == 0, trainer.output()[-3000:]


def trainer_status(probe) -> str:
    for array in reversed(probe.messages('/diagnostics')):
        for status in array.status:
            if status.name.startswith(f'{NAMESPACE}/trainer:'):
                return status.message
    return ''
