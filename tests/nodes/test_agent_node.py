"""agent_node (random policy) as a real process: frames in, observation + action out."""

from __future__ import annotations

import numpy as np
from pamiq.media.preprocessing import preprocess
from pamiq.ros import qos
from pamiq.ros.image_conversion import image_to_numpy, numpy_to_image
from pamiq.vrchat import controller
import pytest
from rosgraph import NodeProcess, wait_until
from sensor_msgs.msg import Image, JointState


def frame_msg(
    stamp_sec: int, encoding: str = 'bgr8', width: int = 640, height: int = 480
) -> Image:
    rng = np.random.default_rng(stamp_sec)
    array = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    msg = numpy_to_image(array, encoding)
    msg.header.stamp.sec = stamp_sec
    return msg


def warm_up(probe, pub) -> None:
    """Publish until an action comes back: discovery is done both ways, nothing is lost after."""
    assert wait_until(
        lambda: pub.publish(frame_msg(0)) or len(probe.messages('action')) > 0, 15.0, 0.2
    )
    wait_until(lambda: False, 0.3)
    for topic in probe.received:
        probe.clear(topic)


@pytest.mark.parametrize('action_space', ['continuous', 'discrete'])
def test_one_action_per_frame_with_the_frame_stamp(probe, action_space):
    agent = NodeProcess('agent_node', 'agent', {'action_space': action_space})
    try:
        probe.record(Image, 'agent/observation', qos.OBSERVATION)
        probe.record(JointState, 'action', qos.ACTION)
        pub = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        probe.wait_for_subscribers(pub)
        warm_up(probe, pub)
        for second in range(1, 11):
            pub.publish(frame_msg(second))
            assert wait_until(lambda s=second: len(probe.messages('action')) >= s, 5.0), (
                agent.output()
            )

        actions = probe.messages('action')
        assert [a.header.stamp.sec for a in actions] == list(range(1, 11))
        assert wait_until(lambda: len(probe.messages('agent/observation')) == 10, 5.0)
        observations = probe.messages('agent/observation')
        assert [o.header.stamp.sec for o in observations] == list(range(1, 11))
        obs = observations[0]
        assert (obs.encoding, obs.width, obs.height) == ('rgb8', 84, 84)
        # The observation is the RGB centre square of the BGR frame, resized to 84x84.
        frame = image_to_numpy(frame_msg(1), 'rgb8')
        np.testing.assert_array_equal(image_to_numpy(obs), preprocess(frame))
        centre = frame[:, 80:560].astype(np.float32).mean(axis=(0, 1))
        assert np.allclose(
            image_to_numpy(obs).astype(np.float32).mean(axis=(0, 1)), centre, atol=3.0
        )

        for a in actions:
            if action_space == 'continuous':
                assert list(a.name) == list(controller.CONTINUOUS_ACTION_NAMES)
                assert all(-1.0 < v < 1.0 for v in a.position)
            else:
                assert list(a.name) == list(controller.LOCOMOTION_BUTTONS)
                assert set(a.position) <= {0.0, 1.0}
                pressed = dict(zip(a.name, a.position))
                assert not (pressed['MoveForward'] and pressed['MoveBackward'])
    finally:
        assert agent.stop() == 0, agent.output()


def test_bad_frames_are_refused_and_the_agent_keeps_acting(probe):
    agent = NodeProcess('agent_node', 'agent')
    try:
        probe.record(JointState, 'action', qos.ACTION)
        pub = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        probe.wait_for_subscribers(pub)
        warm_up(probe, pub)
        bad = frame_msg(1)
        bad.encoding = 'yuv422'
        pub.publish(bad)
        short = frame_msg(2)
        short.data = bytes(10)
        pub.publish(short)
        assert wait_until(lambda: 'frame rejected' in agent.output(), 5.0), agent.output()
        pub.publish(frame_msg(3))
        assert wait_until(lambda: len(probe.messages('action')) == 1, 5.0)
        assert probe.messages('action')[0].header.stamp.sec == 3
        assert agent.process.poll() is None
    finally:
        agent.stop()


def test_without_frames_the_agent_says_whether_discovery_or_delivery_failed(probe):
    agent = NodeProcess('agent_node', 'agent', {'report_period': 1.0})
    topic = '/pamiq/camera/image_raw'
    try:
        # Nothing publishes frames: no publisher is even known.
        expected = f'0 publisher(s) of {topic} discovered, 0 matched'
        assert wait_until(lambda: expected in agent.output(), 15.0), agent.output()
        # One is known and matched, but sends nothing: what fails is delivery or the source.
        probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        expected = f'1 publisher(s) of {topic} discovered, 1 matched'
        assert wait_until(lambda: expected in agent.output(), 10.0), agent.output()
        assert 'acting at 0.0 Hz' in agent.output()
    finally:
        agent.stop()
