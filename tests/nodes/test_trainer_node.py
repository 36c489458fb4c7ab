"""trainer_node and the curiosity agent_node as real processes, joined by real topics."""

from __future__ import annotations

import array
import glob
import os
import signal
import time

from doom_frames import record
import numpy as np
from pamiq.learning.models import build_models
from pamiq.nodes.agent_node import WEIGHTS_WORKER_NICENESS
from pamiq.ros import messages, qos
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.storage.checkpoint import save_checkpoint
from pamiq.storage.weights import pack_weights, unpack_weights
from rosgraph import FAST_TRAINER, NodeProcess, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray


def weights_version(msg: UInt8MultiArray) -> int:
    version, _ = unpack_weights(bytes(msg.data), build_models('inverse_dynamics', 'continuous'))
    return version


def feed_steps(probe, count: int, start: int = 0) -> None:
    """Act like an agent: observation, action and step with one stamp per frame."""
    observations, actions = record('my_way_home', count, seed=start)
    pubs = [
        probe.create_publisher(Image, 'agent/observation', qos.OBSERVATION),
        probe.create_publisher(JointState, 'action', qos.ACTION),
        probe.create_publisher(JointState, 'agent/step', qos.STEP),
    ]
    for pub in pubs:
        probe.wait_for_subscribers(pub)
    for i in range(count):
        stamp = probe.get_clock().now().to_msg()
        names, values = messages.action_names_values(actions[i], 'continuous')
        action = JointState(name=names, position=values)
        action.header.stamp = stamp
        pubs[0].publish(numpy_to_image(observations[i], 'rgb8', stamp))
        pubs[1].publish(action)
        pubs[2].publish(messages.step_message(stamp, start + i, 0.01 * i, 0.0, -2.0, 0))
        time.sleep(0.01)


def test_trainer_learns_publishes_checkpoints_and_resumes_after_sigkill(probe, tmp_path):
    trainer = NodeProcess('trainer_node', 'trainer', {**FAST_TRAINER, 'run_dir': str(tmp_path)})
    try:
        probe.record(UInt8MultiArray, 'trainer/weights', qos.WEIGHTS)
        probe.record(Float32, 'trainer/forward_dynamics/loss', qos.DEFAULT)
        # Version 0 is there at start-up (transient local) for an agent that joins later.
        assert wait_until(lambda: probe.messages('trainer/weights'), 60.0), trainer.output()
        assert weights_version(probe.messages('trainer/weights')[0]) == 0
        feed_steps(probe, 60)
        assert wait_until(
            lambda: len(probe.messages('trainer/forward_dynamics/loss')) >= 2, 60.0
        ), trainer.output()
        assert all(np.isfinite(m.data) for m in probe.messages('trainer/forward_dynamics/loss'))
        versions = [weights_version(m) for m in probe.messages('trainer/weights')]
        assert versions == sorted(versions) and versions[-1] >= 2
        assert wait_until(lambda: glob.glob(str(tmp_path / 'checkpoints' / '*.safetensors')), 10.0)
    finally:
        trainer.stop(signal.SIGKILL)
    newest = max(glob.glob(str(tmp_path / 'checkpoints' / '*.safetensors')))
    saved_version = int(os.path.basename(newest).split('-')[1].split('.')[0])
    assert not glob.glob(str(tmp_path / 'checkpoints' / '*.tmp'))

    restarted = NodeProcess('trainer_node', 'trainer', {**FAST_TRAINER, 'run_dir': str(tmp_path)})
    try:
        probe.clear('trainer/weights')
        assert wait_until(lambda: f'at version {saved_version}' in restarted.output(), 60.0), (
            restarted.output()
        )
        assert wait_until(lambda: probe.messages('trainer/weights'), 30.0)
        assert weights_version(probe.messages('trainer/weights')[-1]) == saved_version
    finally:
        assert restarted.stop() == 0, restarted.output()
    # A clean stop writes a final checkpoint.
    assert 'checkpoint' in restarted.output().split('resumed from')[1]


def thread_niceness(pid: int) -> list[int]:
    values = []
    for stat in glob.glob(f'/proc/{pid}/task/*/stat'):
        try:
            with open(stat) as stream:
                fields = stream.read().rsplit(')', 1)[1].split()
        except FileNotFoundError:  # the thread ended
            continue
        values.append(int(fields[16]))  # field 19 of proc(5), counted after the name
    return values


def test_every_trainer_thread_runs_at_the_trainer_niceness(probe, tmp_path):
    """Niceness is per thread on Linux: the DDS threads that send the weights must yield too."""
    trainer = NodeProcess(
        'trainer_node', 'trainer', {**FAST_TRAINER, 'nice': 7, 'run_dir': str(tmp_path)}
    )
    try:
        assert wait_until(lambda: 'training ' in trainer.output(), 30), trainer.output()
        niceness = thread_niceness(trainer.process.pid)
        assert len(niceness) > 5, niceness  # rclpy, Fast DDS and training threads
        assert set(niceness) == {7}, niceness
    finally:
        assert trainer.stop() == 0


def test_agent_swaps_in_valid_weights_and_refuses_bad_ones(probe):
    agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity'})
    try:
        probe.record(JointState, 'agent/step', qos.STEP)
        probe.record(JointState, 'action', qos.ACTION)
        frames = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        weights = probe.create_publisher(UInt8MultiArray, 'trainer/weights', qos.WEIGHTS)
        observations, _ = record('my_way_home', 5)

        def act(count: int) -> list[dict]:
            probe.clear('agent/step')
            for i in range(count):
                frames.publish(
                    numpy_to_image(observations[i % 5], 'rgb8', probe.get_clock().now().to_msg())
                )
                time.sleep(0.1)
            wait_until(lambda: len(probe.messages('agent/step')) >= count, 5.0)
            return [dict(zip(m.name, m.position)) for m in probe.messages('agent/step')]

        assert wait_until(
            lambda: (
                frames.publish(numpy_to_image(observations[0], 'rgb8')) or probe.messages('action')
            ),
            30.0,
            0.2,
        )
        steps = act(5)
        assert {s['policy_version'] for s in steps} == {0.0}
        assert all(np.isfinite(s['log_prob']) and np.isfinite(s['value']) for s in steps)

        weights.publish(
            UInt8MultiArray(
                data=array.array(
                    'B', pack_weights(build_models('inverse_dynamics', 'continuous'), 7)
                )
            )
        )
        assert wait_until(lambda: 'weights version 7 in use' in agent.output(), 20.0), (
            agent.output()
        )
        assert {s['policy_version'] for s in act(3)} == {7.0}
        # The thread that loads weights yields to acting; every other thread keeps its priority.
        niceness = thread_niceness(agent.process.pid)
        assert sorted(niceness)[-1] == WEIGHTS_WORKER_NICENESS, niceness
        assert niceness.count(WEIGHTS_WORKER_NICENESS) == 1 and niceness.count(0) > 5, niceness

        good = pack_weights(build_models('inverse_dynamics', 'continuous'), 8)
        for count, (bad, reason) in enumerate(
            [
                (good[: len(good) // 2], 'not a safetensors blob'),  # truncated
                (
                    pack_weights(build_models('inverse_dynamics', 'discrete'), 9),
                    'shape',
                ),  # mismatched
                (b'\x00' * 100, 'safetensors'),  # not safetensors at all
            ],
            start=1,
        ):
            weights.publish(UInt8MultiArray(data=array.array('B', bad)))

            def refused(count=count, reason=reason) -> bool:
                lines = [
                    line
                    for line in agent.output().splitlines()
                    if 'weights rejected, keeping version 7' in line
                ]
                return len(lines) >= count and reason in lines[-1]

            assert wait_until(refused, 20.0), agent.output()
        assert {s['policy_version'] for s in act(3)} == {7.0}
        assert agent.process.poll() is None
    finally:
        assert agent.stop() == 0, agent.output()


def test_agent_starts_from_the_newest_checkpoint_in_its_run_dir(probe, tmp_path):
    models = build_models('inverse_dynamics', 'continuous')
    save_checkpoint(str(tmp_path), 5, models, {}, {'rounds': 5})
    agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity', 'run_dir': str(tmp_path)})
    try:
        probe.record(JointState, 'agent/step', qos.STEP)
        frames = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        observations, _ = record('my_way_home', 1)
        assert wait_until(
            lambda: (
                frames.publish(numpy_to_image(observations[0], 'rgb8'))
                or probe.messages('agent/step')
            ),
            30.0,
            0.2,
        ), agent.output()
        assert (
            dict(
                zip(probe.messages('agent/step')[0].name, probe.messages('agent/step')[0].position)
            )['policy_version']
            == 5
        )
        assert 'checkpoint-00000005.safetensors (version 5)' in agent.output()
    finally:
        agent.stop()
