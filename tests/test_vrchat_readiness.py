"""Small things VRChat needs: the OBS virtual camera found by its name, and optional smoothing
of the actuator's axes and buttons for natural movement (real UDP to an OSC recorder)."""

from __future__ import annotations

import time

from pamiq.media.video import find_video_device
from pamiq.ros import qos, topics
from pamiq.ros.messages import action_message
from pamiq.vrchat.smoothing import AxisLag, ButtonHold
import pytest
from rosgraph import NodeProcess, OscRecorder, wait_until
from sensor_msgs.msg import JointState


def test_the_obs_virtual_camera_is_found_by_its_video4linux_name(tmp_path):
    # A video4linux tree as Linux lists it (no v4l2loopback module can be loaded here).
    for index, name in ((0, 'Integrated Webcam'), (2, 'OBS Virtual Camera'), (10, 'Dummy')):
        (tmp_path / f'video{index}').mkdir()
        (tmp_path / f'video{index}' / 'name').write_text(name + '\n')
    assert find_video_device('OBS Virtual Camera', str(tmp_path)) == (2, 'OBS Virtual Camera')
    assert find_video_device('obs virtual', str(tmp_path)) == (2, 'OBS Virtual Camera')
    assert find_video_device('Capture Card', str(tmp_path)) is None
    assert find_video_device('OBS', str(tmp_path / 'missing')) is None


def test_axis_lag_and_button_hold():
    lag = AxisLag(0.5)
    assert lag.command('Vertical', 1.0, now=0.0) == 0.0
    assert lag.advance(0.5)['Vertical'] == pytest.approx(1 - 1 / 2.718281828, abs=1e-6)
    assert lag.advance(5.0)['Vertical'] == pytest.approx(1.0, abs=1e-3)
    lag.reset({'Vertical': 0.0, 'Horizontal': 0.0})
    assert lag.advance(5.1) == {'Vertical': 0.0}
    # Smoothing off (the actuator then never commands the lag): going neutral leaves nothing for
    # it to send after the next unsmoothed action (it sent 0.0 right after every one).
    unsmoothed = AxisLag(0.0)
    unsmoothed.reset({'Vertical': 0.0})
    assert unsmoothed.advance(1.0) == {}
    hold = ButtonHold(0.3)
    assert hold.command('Jump', 1, now=0.0) == 1
    assert hold.command('Jump', 0, now=0.1) is None  # a press lasts 0.3 s at least
    assert hold.due(0.2) == {} and hold.due(0.31) == {'Jump': 0}
    assert hold.command('Jump', 1, now=0.4) is None and hold.due(0.62) == {'Jump': 1}


def test_the_actuator_smooths_axes_and_holds_buttons_when_asked(probe):
    osc = OscRecorder()
    actuator = NodeProcess(
        'osc_actuator_node',
        'osc_actuator',
        {'osc_port': osc.port, 'axis_time_constant': 0.3, 'button_min_hold': 0.4, 'timeout': 5.0},
    )
    pub = probe.create_publisher(JointState, topics.ACTION, qos.ACTION)
    try:
        probe.wait_for_subscribers(pub, timeout=30.0)
        osc.take()
        stamp = probe.get_clock().now().to_msg()
        pub.publish(action_message(stamp, ['Vertical', 'MoveForward'], [1.0, 1.0]))
        time.sleep(0.1)
        pub.publish(action_message(stamp, ['Vertical', 'MoveForward'], [1.0, 0.0]))  # flicker
        assert wait_until(
            lambda: any(a == '/input/Vertical' and v > 0.95 for _, a, v in osc.snapshot()), 5.0
        )
        packets = osc.snapshot()
        rise = [(t, v) for t, a, v in packets if a == '/input/Vertical']
        # A first-order lag: from 0 towards 1, never a jump, about 63 % after 0.3 s.
        values = [v for _, v in rise]
        assert values[0] < 0.3 and values == sorted(values) and len(values) >= 5
        start = rise[0][0]
        near = [v for t, v in rise if abs(t - start - 0.3) < 0.06]
        assert near and all(0.45 < v < 0.8 for v in near), rise
        forward = [(t, v) for t, a, v in packets if a == '/input/MoveForward']
        assert [v for _, v in forward] == [1, 0]  # the release waited for the hold
        assert forward[1][0] - forward[0][0] >= 0.35
    finally:
        assert actuator.stop() == 0, actuator.output()
        osc.close()
