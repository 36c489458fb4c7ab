"""Faults a days-long run meets, each injected into real processes with its expected outcome."""

from __future__ import annotations

import array
import glob
import os
import signal
import subprocess
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from doom_frames import record
import numpy as np
from pamiq.learning.learner import Learner, LearnerConfig
from pamiq.ros import qos
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.storage.checkpoint import save_checkpoint
from pamiq.vrchat import controller
import pytest
from rosgraph import (
    FAST_TRAINER,
    NodeProcess,
    OscRecorder,
    diagnostic_value,
    free_udp_port,
    statuses,
    versions_acted,
    wait_until,
)
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import UInt8MultiArray
from std_srvs.srv import Trigger


class FramePump:
    """A 10 Hz camera in the test process (real Doom frames, looped)."""

    def __init__(self, probe) -> None:
        self.pub = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        self.frames, _ = record('my_way_home', 40)
        self.stop_event = threading.Event()
        self.probe = probe
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        i = 0
        while not self.stop_event.wait(0.1):
            stamp = self.probe.get_clock().now().to_msg()
            self.pub.publish(numpy_to_image(self.frames[i % len(self.frames)], 'rgb8', stamp))
            i += 1

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join()


def test_killed_trainer_resumes_mid_round_and_killed_agent_goes_neutral_and_restarts(
    probe, tmp_path
):
    """One set of processes for both kills: the trainer SIGKILLed mid-round (the agent acts on
    throughout, the restart resumes from the checkpoint), then the agent SIGKILLed (the
    actuator goes neutral, the restart gets the latest weights)."""
    probe.record(JointState, 'action', qos.ACTION)
    probe.record(JointState, 'agent/step', qos.STEP)
    probe.record(DiagnosticArray, '/diagnostics', 10)
    osc = OscRecorder()
    actuator = NodeProcess(
        'osc_actuator_node', 'osc_actuator', {'osc_port': osc.port, 'timeout': 0.5}
    )
    # Rounds of several seconds, so "mid-round" is a state the test can see and hit.
    slow_rounds = {**FAST_TRAINER, 'dynamics_batches': 400, 'run_dir': str(tmp_path)}
    trainer = NodeProcess('trainer_node', 'trainer', slow_rounds)
    agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity'})
    pump = FramePump(probe)

    def round_in_progress() -> float:
        value = diagnostic_value(probe, 'pamiq/trainer', 'round in progress (s)')
        return float(value) if value else 0.0

    restarted = restarted_agent = None
    try:
        assert wait_until(lambda: 1 in versions_acted(probe), 120.0), (
            agent.output() + trainer.output()
        )
        first = str(tmp_path / 'checkpoints' / 'checkpoint-00000001.*')
        assert wait_until(lambda: glob.glob(first), 30.0), trainer.output()
        assert wait_until(lambda: round_in_progress() > 0.5, 30.0), trainer.output()
        assert 'round 2 in' not in trainer.output()  # round 2 has begun and not ended
        trainer.stop(signal.SIGKILL)

        # The agent goes on at 10 Hz with version 1 while no trainer exists.
        probe.clear('action')
        probe.clear('agent/step')
        time.sleep(3.0)
        assert 27 <= len(probe.messages('action')) <= 33, len(probe.messages('action'))
        assert versions_acted(probe) == {1}

        # Fast rounds now: what is tested is that it resumes, not how long a round takes.
        fast_rounds = {**FAST_TRAINER, 'run_dir': str(tmp_path)}
        restarted = NodeProcess('trainer_node', 'trainer', fast_rounds)
        assert wait_until(lambda: 'resumed from' in restarted.output(), 30.0), restarted.output()
        assert 'checkpoint-00000001' in restarted.output()
        assert 'at version 1' in restarted.output()
        assert wait_until(lambda: 2 in versions_acted(probe), 120.0), restarted.output()

        # The agent killed: the actuator's watchdog sends neutral inputs within its timeout.
        agent.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        neutral = [(controller.address(n), v) for n, v in controller.NEUTRAL_VALUES.items()]
        assert wait_until(
            lambda: [(a, v) for _, a, v in osc.snapshot()][-len(neutral) :] == neutral, 3.0
        )
        neutral_at = osc.snapshot()[-len(neutral)][0]
        assert neutral_at - killed_at <= 0.5 + 0.15, neutral_at - killed_at
        version = max(
            int(line.split('version ')[1].split(',')[0])
            for line in restarted.output().splitlines()
            if 'round ' in line
        )
        restarted_agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity'})
        # Transient local: the newest blob waits for the new subscriber. (The trainer may
        # finish another round while the new agent starts: newer is as good.)
        assert wait_until(lambda: 'in use' in restarted_agent.output(), 60.0), (
            restarted_agent.output()
        )
        first_used = restarted_agent.output().split(' in use')[0].rsplit('weights version ', 1)
        assert int(first_used[1]) >= version, restarted_agent.output()
    finally:
        pump.stop()
        for process in (restarted_agent, agent, restarted, trainer, actuator):
            if process is not None:
                process.stop()
        osc.close()


def test_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    learner = Learner(LearnerConfig())
    save_checkpoint(str(tmp_path), 3, learner.models, learner.optimizers, {'rounds': 3})
    newest = save_checkpoint(str(tmp_path), 4, learner.models, learner.optimizers, {'rounds': 4})
    with open(newest, 'r+b') as stream:
        stream.truncate(os.path.getsize(newest) // 2)
    trainer = NodeProcess('trainer_node', 'trainer', {**FAST_TRAINER, 'run_dir': str(tmp_path)})
    try:
        assert wait_until(lambda: 'resumed from' in trainer.output(), 60.0), trainer.output()
        out = trainer.output()
        assert 'checkpoint-00000004.safetensors is unusable' in out
        assert 'trying the previous one' in out
        assert 'checkpoint-00000003.safetensors at version 3' in out
    finally:
        trainer.stop()


# 198.51.100.7 is in TEST-NET-2 (RFC 5737): no real host. An "unreachable" route for it makes the
# kernel refuse every send with EHOSTUNREACH, so nothing leaves the machine.
UNREACHABLE = '198.51.100.7'


@pytest.fixture
def destination(request):
    """(host, port, expected error text) of a closed port or an unreachable host."""
    if request.param == 'closed-port':
        yield '127.0.0.1', free_udp_port(), 'Connection refused'
        return
    route = ['ip', 'route', 'add', 'unreachable', f'{UNREACHABLE}/32']
    try:
        result = subprocess.run(route, capture_output=True)
    except FileNotFoundError:
        pytest.skip('no `ip` command (iproute2) to make a host unreachable')
    if result.returncode != 0:
        pytest.skip(f'cannot add an unreachable route (needs root): {result.stderr.decode()}')
    try:
        yield UNREACHABLE, 9000, 'No route to host'
    finally:
        subprocess.run(['ip', 'route', 'del', 'unreachable', f'{UNREACHABLE}/32'], check=False)


@pytest.mark.parametrize('destination', ['closed-port', 'unreachable-host'], indirect=True)
def test_osc_destination_failure_is_reported_and_the_actuator_keeps_running(probe, destination):
    host, port, error = destination
    probe.record(DiagnosticArray, '/diagnostics', 10)
    actuator = NodeProcess(
        'osc_actuator_node',
        'osc_actuator',
        {'osc_host': host, 'osc_port': port, 'timeout': 30.0},
    )
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        for _ in range(10):
            pub.publish(JointState(name=['Vertical'], position=[0.5]))
            time.sleep(0.1)
        assert wait_until(
            lambda: any(
                s.level == DiagnosticStatus.ERROR and 'OSC send failing' in s.message
                for s in statuses(probe, 'pamiq/osc_actuator')
            ),
            5.0,
        ), actuator.output()
        assert error in actuator.output()
        assert actuator.process.poll() is None
        # It still takes commands and keeps counting failures. (A closed port answers with ICMP,
        # which the kernel rate-limits: not every send fails, so keep sending for a while.)
        failures = int(diagnostic_value(probe, 'pamiq/osc_actuator', 'send errors') or 0)

        def counted_more() -> bool:
            pub.publish(JointState(name=['Vertical'], position=[0.5]))
            errors = diagnostic_value(probe, 'pamiq/osc_actuator', 'send errors')
            return int(errors or 0) > failures

        assert wait_until(counted_more, 10.0, interval=0.2), actuator.output()
    finally:
        assert actuator.stop() == 0


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs: far too small for a ~90 MB checkpoint."""
    mount = tmp_path / 'disk'
    mount.mkdir()
    result = subprocess.run(
        ['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)], capture_output=True
    )
    if result.returncode != 0:
        pytest.skip(
            f'cannot mount a small tmpfs here (needs root): {result.stderr.decode().strip()}'
        )
    yield mount
    subprocess.run(['umount', '-l', str(mount)], check=False)


def test_disk_full_is_a_clear_error_without_a_corrupt_checkpoint(probe, full_disk):
    probe.record(DiagnosticArray, '/diagnostics', 10)
    trainer = NodeProcess('trainer_node', 'trainer', {**FAST_TRAINER, 'run_dir': str(full_disk)})
    try:
        client = probe.create_client(Trigger, 'trainer/save')
        assert client.wait_for_service(timeout_sec=60.0), trainer.output()
        future = client.call_async(Trigger.Request())
        assert wait_until(future.done, 60.0)
        reply = future.result()
        assert not reply.success
        assert 'No space left on device' in reply.message
        assert wait_until(
            lambda: any(
                s.level == DiagnosticStatus.ERROR and 'No space left' in s.message
                for s in statuses(probe, 'pamiq/trainer')
            ),
            5.0,
        )
        assert trainer.process.poll() is None  # it goes on
        leftovers = glob.glob(str(full_disk / 'checkpoints' / '*'))
        assert leftovers == [], leftovers  # no partial file, no temp file
    finally:
        trainer.stop()


def test_a_barrage_of_bad_input_is_refused_counted_and_crashes_nothing(probe):
    probe.record(DiagnosticArray, '/diagnostics', 10)
    osc = OscRecorder()
    actuator = NodeProcess(
        'osc_actuator_node', 'osc_actuator', {'osc_port': osc.port, 'timeout': 30.0}
    )
    agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity'})
    try:
        images = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        actions = probe.create_publisher(JointState, 'action', qos.ACTION)
        weights = probe.create_publisher(UInt8MultiArray, 'trainer/weights', qos.WEIGHTS)
        probe.wait_for_subscribers(images)
        probe.wait_for_subscribers(actions)
        good = numpy_to_image(np.zeros((120, 160, 3), np.uint8), 'rgb8')
        # Frames are best effort: first make sure they reach the agent (it acts on a good one).
        probe.record(JointState, 'action', qos.ACTION)
        assert wait_until(lambda: images.publish(good) or probe.messages('action'), 30.0, 0.2)
        bad_images = []
        for encoding in ('yuv422', '16UC3', 'bayer_rggb8', '', 'RGB8'):
            msg = numpy_to_image(np.zeros((120, 160, 3), np.uint8), 'rgb8')
            msg.encoding = encoding
            bad_images.append(msg)
        zero = Image(encoding='rgb8')
        mismatch = numpy_to_image(np.zeros((120, 160, 3), np.uint8), 'rgb8')
        mismatch.step = 100
        huge = Image(encoding='mono8', height=100000, width=100000, step=100000)
        bad_images += [zero, mismatch, huge]
        for msg in bad_images:
            images.publish(msg)
            time.sleep(0.05)
        bad_actions = [
            JointState(name=['Vertical'], position=[float('nan')]),
            JointState(name=['Horizontal'], position=[float('inf')]),
            JointState(name=['LookHorizontal'], position=[float('-inf')]),
            JointState(name=['Teleport'], position=[1.0]),
            JointState(name=['Vertical', 'Horizontal'], position=[0.1]),
        ]
        for msg in bad_actions:
            actions.publish(msg)
            time.sleep(0.05)
        for blob in (b'', b'\x00' * 64, b'{"not": "safetensors"}' * 10):
            weights.publish(UInt8MultiArray(data=array.array('B', blob)))
            time.sleep(0.3)
        images.publish(good)

        def counts(prefix: str, key: str) -> int:  # counters only grow: the newest is the most
            return int(diagnostic_value(probe, prefix, key) or 0)

        assert wait_until(
            lambda: counts('pamiq/agent', 'rejected frames') == len(bad_images), 10.0
        ), agent.output()
        assert wait_until(lambda: counts('pamiq/agent', 'rejected weights') >= 2, 10.0), (
            agent.output()
        )
        assert wait_until(
            lambda: counts('pamiq/osc_actuator', 'rejected inputs') == len(bad_actions), 10.0
        ), actuator.output()
        # Only the agent's own action for the good frame went out; nothing bad reached VRChat.
        for address, value in osc.take():
            name = address.removeprefix('/input/')
            assert (
                name in controller.CONTINUOUS_ACTION_NAMES
                and np.isfinite(value)
                and -1 <= value <= 1
            )
        assert agent.process.poll() is None and actuator.process.poll() is None
    finally:
        agent.stop()
        actuator.stop()
        osc.close()
