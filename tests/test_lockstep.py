"""Simulated time in the Doom world: lockstep (every frame gets exactly one action) and faster
than real time, with /clock and use_sim_time for every node, started through `pamiq up`."""

from __future__ import annotations

from collections import Counter
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
import numpy as np
from pamiq.doom.game import TICRATE
from pamiq.ros import topics
from pamiq.vrchat.osc import HeldInputs
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph import NAMESPACE, diagnostic_value, free_udp_port, wait_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from test_bringup import PamiqUp

# Deep enough that the test's own executor, not the graph, is never what loses a message.
EVERYTHING = QoSProfile(depth=20000, reliability=ReliabilityPolicy.RELIABLE)


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def test_a_marker_answers_only_the_frame_it_names():
    inputs = HeldInputs()
    inputs.expect(7_000_000_000)
    assert not inputs.wait(0.01)
    inputs.handle_frame('/pamiq/frame', 6, 0)  # an older frame: stray, not an answer
    assert not inputs.wait(0.01) and inputs.stray_markers == 1
    threading.Timer(0.05, inputs.handle_frame, ('/pamiq/frame', 7, 0)).start()
    assert inputs.wait(2.0)
    inputs.handle_frame('/pamiq/frame', 7, 0)  # the same frame again: doubled, not applied
    assert inputs.stray_markers == 2
    inputs.handle_frame('/pamiq/frame', 'x', 0.5)  # malformed: ignored
    assert inputs.stray_markers == 2


def world_counter(probe, key: str) -> int:
    value = diagnostic_value(probe, f'{NAMESPACE}/world', key)
    return int(value) if value is not None else 0


def frames_after_first_action(probe) -> int:
    """Distinct frames the test heard from the first action it heard on (the ones it can check)."""
    actions = probe.messages(topics.ACTION)
    if not actions:
        return 0
    first = min(stamp_ns(m) for m in actions)
    return len({s for s in map(stamp_ns, probe.messages(topics.POSE)) if s >= first})


def unanswered(poses, actions) -> list[int]:
    """The frames before the last one heard, from the first action heard on, without one."""
    if not actions:
        return [stamp_ns(m) for m in poses]
    answered = {stamp_ns(m) for m in actions}
    first = min(answered)
    return [s for s in map(stamp_ns, poses[:-1]) if s >= first and s not in answered]


def test_lockstep_gives_every_frame_exactly_one_action_over_5000_steps(probe, tmp_path):
    probe.record(JointState, topics.ACTION, EVERYTHING)
    probe.record(PoseStamped, topics.POSE, EVERYTHING)
    probe.record(DiagnosticArray, topics.DIAGNOSTICS, 100)
    started = time.monotonic()
    up = PamiqUp(
        'world:=doom',
        'agent:=random',
        'real_time_factor:=0',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
    )
    try:
        # Counted from the first action heard: the test's subscriptions may match the agent
        # some hundred frames after its own to the world.
        enough = wait_until(lambda: frames_after_first_action(probe) >= 5002, 150.0, 0.5)
        assert enough, up.output()[-3000:]
        # What the graph did while it ran (stopping it stops the agent first, and then the
        # world rightly sends its last frame again).
        poses = probe.messages(topics.POSE)
        # A sample the test's reader lost on the way is repaired at the writer's next
        # heartbeat (Fast DDS: every 3 s), and reliable delivery holds back the ones after it
        # until then: on a loaded machine the test heard the actions of its last 448 frames
        # only later. They are taken once each frame heard has its action, or after 20 s.
        wait_until(lambda: not unanswered(poses, probe.messages(topics.ACTION)), 20.0, 0.5)
        action_messages = probe.messages(topics.ACTION)
        assert wait_until(lambda: world_counter(probe, 'simulated steps') >= 5000, 5.0)
        resent = world_counter(probe, 'lockstep frames sent again')
        stray = world_counter(probe, 'stray frame markers')
    finally:
        assert up.stop(60.0) == 0, up.output()[-3000:]
    # Progress lines are paced by the wall clock, not the simulated one (45x faster here).
    wall = time.monotonic() - started
    for progress in ('[status]', 'acting at', ': avatar at'):
        lines = [line for line in up.output().splitlines() if progress in line]
        assert len(lines) <= wall / 2 + 1, (progress, len(lines), wall)
    assert '[status]' in up.output()  # (the status line comes every 5 s of wall time)
    actions = Counter(stamp_ns(m) for m in action_messages)
    # The first frame goes out again until the rest of the graph is up to answer it.
    frames = [stamp_ns(m) for m in poses]
    frames = frames[frames.count(frames[0]) - 1 :]
    assert len(frames) == len(set(frames)), 'a frame was sent twice (no action for it in time)'
    # Each copy of the first frame is answered: the first answers may have found no actuator yet.
    doubled = [s for s, n in actions.items() if n > 1 and s != frames[0]]
    assert not doubled, f'{len(doubled)} frames got two actions'
    # The last frame may still have been waiting for its action; frames before the first
    # action the test heard were answered before its subscription matched the agent (the
    # world's counters below speak for those).
    answered = [f for f in frames[:-1] if f >= min(actions)]
    missing = [s for s in answered if s not in actions]
    assert not missing, (
        f'{len(missing)} of {len(answered)} frames got no action: '
        f'{[answered.index(s) for s in missing][:20]}... (first heard {min(actions)})'
    )
    assert len(answered) >= 5000
    # Each step is 35 / 10 tics of simulated time: 3 or 4 tics, 0.1 s on average.
    steps = np.diff(frames) * TICRATE / 1e9
    assert set(np.round(steps).astype(int)) <= {3, 4}, sorted(set(np.round(steps)))
    assert abs(np.mean(steps) - TICRATE / 10) < 0.01
    misses = [line for line in up.output().splitlines() if 'no action for step' in line]
    assert (resent, stray) == (0, 0), misses


def test_faster_than_real_time_publishes_clock_and_keeps_simulated_stamps(probe, tmp_path):
    probe.record(PoseStamped, topics.POSE, EVERYTHING)
    probe.record(Clock, topics.CLOCK, EVERYTHING)
    probe.record(JointState, topics.ACTION, EVERYTHING)
    up = PamiqUp(
        'world:=doom',
        'agent:=random',
        'real_time_factor:=4',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        '--quiet',
    )
    try:
        assert wait_until(lambda: len(probe.messages(topics.POSE)) >= 50, 60.0), up.output()
        probe.clear(topics.POSE)
        probe.clear(topics.ACTION)
        assert wait_until(lambda: len(probe.messages(topics.POSE)) >= 200, 30.0)
    finally:
        assert up.stop(60.0) == 0, up.output()[-3000:]
    arrivals = np.array(probe.arrivals(topics.POSE))
    wall_rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert 32.0 <= wall_rate <= 44.0, wall_rate  # 10 Hz of simulated time, 4x faster
    stamps = np.array([stamp_ns(m) for m in probe.messages(topics.POSE)]) / 1e9
    assert abs(np.mean(np.diff(stamps)) - 0.1) < 0.01  # simulated, not wall, spacing
    clock = [m.clock.sec + m.clock.nanosec / 1e9 for m in probe.messages(topics.CLOCK)]
    assert clock and max(clock) >= stamps[-1] - 0.2
    # The agent, on simulated time too, stamps each action with its frame's simulated stamp.
    frames = {stamp_ns(m) for m in probe.messages(topics.POSE)}
    actions = [stamp_ns(m) for m in probe.messages(topics.ACTION)]
    assert sum(a in frames for a in actions) >= 0.9 * len(actions)
