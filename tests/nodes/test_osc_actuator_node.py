"""osc_actuator_node as a real process: ROS actions in, exactly the expected OSC packets out."""

from __future__ import annotations

import math
import signal
import time

from geometry_msgs.msg import Twist
from pamiq.ros import qos
from pamiq.vrchat import controller
import pytest
from rclpy.time import Time
from rosgraph import NodeProcess, OscRecorder, wait_until
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState


@pytest.fixture
def osc():
    recorder = OscRecorder()
    yield recorder
    recorder.close()


def start_actuator(osc: OscRecorder, **parameters) -> NodeProcess:
    return NodeProcess('osc_actuator_node', 'osc_actuator', {'osc_port': osc.port, **parameters})


def action(names, values) -> JointState:
    msg = JointState()
    msg.name = list(names)
    msg.position = [float(v) for v in values]
    return msg


def publish_and_collect(probe, publisher, osc, msg, count: int, timeout: float = 5.0):
    publisher.publish(msg)
    assert wait_until(lambda: len(osc.snapshot()) >= count, timeout), osc.snapshot()
    time.sleep(0.1)  # anything more that should not be there arrives now
    return osc.take()


def approx(packets):
    return [(a, round(v, 5) if isinstance(v, float) else v) for a, v in packets]


def test_actions_become_exact_osc_packets_and_bad_values_never_go_out(probe, osc):
    node = start_actuator(osc, timeout=30.0)
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        packets = publish_and_collect(
            probe, pub, osc, action(controller.CONTINUOUS_ACTION_NAMES, [0.5, -0.25, 1.0]), 3
        )
        assert approx(packets) == [
            ('/input/Vertical', 0.5),
            ('/input/Horizontal', -0.25),
            ('/input/LookHorizontal', 1.0),
        ]
        assert all(isinstance(v, float) for _, v in packets)

        # Out of range is clamped, NaN/inf and unknown names are dropped, never forwarded raw.
        bad = action(
            ['Vertical', 'Horizontal', 'LookHorizontal', 'Fly', 'Jump'],
            [3.0, math.nan, -math.inf, 1.0, 7.0],
        )
        packets = publish_and_collect(probe, pub, osc, bad, 2)
        assert packets == [('/input/Vertical', 1.0), ('/input/Jump', 1)]
        assert isinstance(packets[1][1], int)

        # Buttons are ints 0/1.
        packets = publish_and_collect(
            probe, pub, osc, action(['MoveForward', 'Run', 'Jump'], [1, 0, 0]), 3
        )
        assert packets == [('/input/MoveForward', 1), ('/input/Run', 0), ('/input/Jump', 0)]

        # Names and positions of different lengths are refused as a whole.
        msg = action(['Vertical'], [0.1])
        msg.position = [0.1, 0.2]
        pub.publish(msg)
        time.sleep(0.3)
        assert osc.take() == []
        assert node.process.poll() is None
        assert 'Vertical: axis value 3.000 outside [-1, 1], clamped' in node.output()
    finally:
        assert node.stop() == 0


def test_held_tap_button_is_released_before_the_next_press(probe, osc):
    node = start_actuator(osc, timeout=30.0, retap_delay=0.05)
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        assert publish_and_collect(probe, pub, osc, action(['Jump'], [1]), 1) == [
            ('/input/Jump', 1)
        ]
        pub.publish(action(['Jump'], [1]))
        assert wait_until(lambda: len(osc.snapshot()) >= 2, 3.0)
        (t_release, a1, v1), (t_press, a2, v2) = osc.snapshot()[:2]
        assert (a1, v1, a2, v2) == ('/input/Jump', 0, '/input/Jump', 1)
        assert t_press - t_release >= 0.04  # VRChat sees the release before the new press
        osc.take()
        # A movement button held across steps is one continuous hold: no release in between.
        publish_and_collect(probe, pub, osc, action(['MoveForward'], [1]), 1)
        assert publish_and_collect(probe, pub, osc, action(['MoveForward'], [1]), 1) == [
            ('/input/MoveForward', 1)
        ]
    finally:
        node.stop()


def test_deadzone_and_cmd_vel_mapping(probe, osc):
    node = start_actuator(osc, timeout=30.0, deadzone=0.25)
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        packets = publish_and_collect(
            probe, pub, osc, action(controller.CONTINUOUS_ACTION_NAMES, [0.1, -0.3, -0.2]), 3
        )
        assert approx(packets) == [
            ('/input/Vertical', 0.0),
            ('/input/Horizontal', -0.3),
            ('/input/LookHorizontal', 0.0),
        ]

        twist_pub = probe.create_publisher(Twist, 'cmd_vel', 10)
        probe.wait_for_subscribers(twist_pub)
        twist = Twist()
        twist.linear.x, twist.linear.y, twist.angular.z = 0.5, 0.5, -1.0
        packets = publish_and_collect(probe, twist_pub, osc, twist, 3)
        # linear.x -> Vertical, linear.y (left) -> -Horizontal, angular.z (ccw) -> -LookHorizontal
        assert approx(packets) == [
            ('/input/Vertical', 0.5),
            ('/input/Horizontal', -0.5),
            ('/input/LookHorizontal', 1.0),
        ]
    finally:
        node.stop()


def test_watchdog_sends_neutral_inputs_after_timeout(probe, osc):
    node = start_actuator(osc, timeout=0.5)
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        pub.publish(
            action(controller.CONTINUOUS_ACTION_NAMES + ('MoveForward',), [0.7, 0.2, -0.4, 1])
        )
        assert wait_until(lambda: len(osc.snapshot()) >= 4, 3.0)
        sent_at = osc.snapshot()[-1][0]
        assert wait_until(lambda: len(osc.snapshot()) >= 4 + len(controller.NEUTRAL_VALUES), 3.0)
        time.sleep(0.7)  # neutral goes out once, not again and again
        neutral = osc.snapshot()[4:]
        assert [(a, v) for _, a, v in neutral] == [
            (controller.address(n), v) for n, v in controller.NEUTRAL_VALUES.items()
        ]
        delay = neutral[0][0] - sent_at
        assert 0.45 <= delay <= 0.5 + 0.3, delay
    finally:
        node.stop()


def test_under_simulated_time_the_watchdog_and_re_presses_follow_the_clock(probe, osc):
    node = start_actuator(osc, timeout=0.5, use_sim_time=True)
    try:
        clock_pub = probe.create_publisher(Clock, '/clock', qos.CLOCK)
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        probe.wait_for_subscribers(clock_pub)

        def tick(step: int) -> None:  # one lockstep world step: 4 tics of simulated time
            clock_pub.publish(Clock(clock=Time(nanoseconds=step * 4 * 10**9 // 35).to_msg()))
            time.sleep(0.05)

        for _ in range(5):  # the first may go out before the node's reader has matched
            tick(1)
        pub.publish(action(['Jump'], [1]))
        assert wait_until(lambda: len(osc.snapshot()) >= 1, 3.0)
        pub.publish(action(['Jump'], [1]))  # a repeated tap: released now, pressed a step later
        assert wait_until(lambda: len(osc.snapshot()) >= 2, 3.0)
        time.sleep(1.0)  # wall time alone re-presses nothing and releases nothing
        assert osc.take() == [('/input/Jump', 1), ('/input/Jump', 0)]
        tick(2)
        assert wait_until(lambda: len(osc.snapshot()) >= 1, 3.0)
        assert osc.take() == [('/input/Jump', 1)]
        # No action for 0.5 s of simulated time: inputs back to neutral, once.
        for step in range(3, 6):
            tick(step)
        assert osc.take() == []  # 0.34 s since the last command
        for step in range(6, 12):
            tick(step)
        assert wait_until(lambda: len(osc.snapshot()) >= len(controller.NEUTRAL_VALUES), 3.0)
        assert osc.take() == [
            (controller.address(n), v) for n, v in controller.NEUTRAL_VALUES.items()
        ]
    finally:
        node.stop()


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM])
def test_shutdown_sends_every_vrchat_reset_value(probe, osc, sig):
    node = start_actuator(osc, timeout=30.0)
    pub = probe.create_publisher(JointState, 'action', qos.ACTION)
    probe.wait_for_subscribers(pub)
    publish_and_collect(probe, pub, osc, action(['Vertical'], [0.9]), 1)
    assert node.stop(sig) == 0, node.output()
    packets = osc.take()
    assert packets == [(controller.address(n), v) for n, v in controller.RESET_VALUES.items()]
    assert len(packets) == 29
    assert 'sent VRChat reset values' in node.output()


def test_a_second_ctrl_c_does_not_cut_the_reset_short(probe, osc):
    # A terminal's Ctrl-C reaches every node, and `ros2 launch` forwards SIGINT once more.
    node = start_actuator(osc, timeout=30.0)
    pub = probe.create_publisher(JointState, 'action', qos.ACTION)
    probe.wait_for_subscribers(pub)
    publish_and_collect(probe, pub, osc, action(['Vertical'], [0.9]), 1)
    deadline = time.monotonic() + 1.5
    while node.process.poll() is None and time.monotonic() < deadline:
        node.process.send_signal(signal.SIGINT)
        time.sleep(0.01)
    assert node.stop() == 0, node.output()
    assert osc.take() == [(controller.address(n), v) for n, v in controller.RESET_VALUES.items()]
    assert 'Traceback' not in node.output()


def test_bad_parameter_exits_with_its_name(osc):
    node = start_actuator(osc, timeout=-1.0)
    assert node.process.wait(15) == 1
    assert "parameter 'timeout'" in node.output()
