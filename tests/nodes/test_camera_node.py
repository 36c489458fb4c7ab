"""camera_node as a real process reading a generated video file through OpenCV."""

from __future__ import annotations

import itertools
import os

import numpy as np
from pamiq.media.video import is_file, parse_source
from pamiq.ros import qos
from pamiq.ros.image_conversion import image_to_numpy
from rosgraph import NodeProcess, free_udp_port, wait_until
from sensor_msgs.msg import Image
from videos import NetworkStream, frame_index, write_video


def test_source_parsing():
    assert parse_source('0') == 0
    assert parse_source(' 2 ') == 2
    assert parse_source('/tmp/a.mp4') == '/tmp/a.mp4'
    assert is_file('/tmp/a.mp4') and is_file('clip.avi')
    assert not is_file(0) and not is_file('/dev/video0') and not is_file('rtsp://127.0.0.1/x')


def test_video_file_comes_out_at_the_publish_rate_with_stamps_and_encoding(probe, tmp_path):
    video = write_video(str(tmp_path / 'clip.avi'), frames=12, width=320, height=240)
    camera = NodeProcess('camera_node', 'camera', {'camera': video, 'publish_rate': 10.0})
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        # 30 frames of a 12-frame file: it loops, and the rate holds through the loop.
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 30, 20.0), (
            camera.output()
        )
        messages = probe.messages('camera/image_raw')
        arrivals = np.array(probe.arrivals('camera/image_raw'))
        assert {m.encoding for m in messages} == {'bgr8'}
        assert {(m.width, m.height, m.step) for m in messages} == {(320, 240, 960)}
        assert {m.header.frame_id for m in messages} == {'camera'}
        intervals = np.diff(arrivals)
        assert 0.09 <= np.median(intervals) <= 0.11, np.median(intervals)
        stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in messages])
        assert np.all(np.diff(stamps) > 0)
        assert 0.09 <= np.median(np.diff(stamps)) <= 0.11
        indices = [frame_index(image_to_numpy(m)) for m in messages]
        start = indices.index(0)
        assert indices[start : start + 12] == list(range(12))  # in order, then looped
        assert indices[start + 12] == 0
    finally:
        assert camera.stop() == 0, camera.output()


def test_a_network_stream_from_another_pc_comes_out_at_the_publish_rate(probe):
    """VRChat on another PC: OBS streams its screen to this host, camera:=udp://... reads it."""
    port = free_udp_port()
    stream = NetworkStream(port)
    camera = NodeProcess(
        'camera_node', 'camera', {'camera': f'udp://127.0.0.1:{port}', 'publish_rate': 10.0}
    )
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 10, 30.0), (
            camera.output()
        )
        probe.clear('camera/image_raw')
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 40, 10.0), (
            camera.output()
        )
        messages = probe.messages('camera/image_raw')
        arrivals = np.array(probe.arrivals('camera/image_raw'))
        assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 8.0  # of 10 Hz
        assert {(m.width, m.height, m.encoding) for m in messages} == {(320, 240, 'bgr8')}
        # The stream's own frames, in order: each index (blue = 10 i, so it wraps at 26) is the
        # one before or a few after it.
        indices = [frame_index(image_to_numpy(m)) for m in messages]
        assert all((b - a) % 26 < 8 for a, b in itertools.pairwise(indices)), indices
    finally:
        assert camera.stop() == 0, camera.output()
        stream.stop()


def test_file_that_ends_is_reopened_with_backoff(probe, tmp_path):
    video = write_video(str(tmp_path / 'short.avi'), frames=3)
    camera = NodeProcess(
        'camera_node', 'camera', {'camera': video, 'loop': False, 'max_backoff': 0.5}
    )
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 9, 20.0), (
            camera.output()
        )
        assert 'failed or ended; reopening' in camera.output()
        assert camera.process.poll() is None
    finally:
        camera.stop()


def test_source_that_disappears_and_returns(probe, tmp_path):
    video = write_video(str(tmp_path / 'clip.avi'), frames=5)
    hidden = str(tmp_path / 'hidden.avi')
    camera = NodeProcess(
        'camera_node', 'camera', {'camera': video, 'loop': False, 'max_backoff': 0.4}
    )
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 3, 20.0), (
            camera.output()
        )
        os.rename(video, hidden)
        assert wait_until(lambda: 'cannot open camera source' in camera.output(), 10.0), (
            camera.output()
        )
        probe.clear('camera/image_raw')
        os.rename(hidden, video)
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 3, 10.0), (
            camera.output()
        )
        assert camera.process.poll() is None
    finally:
        camera.stop()


def test_missing_file_is_a_clear_error(tmp_path):
    camera = NodeProcess('camera_node', 'camera', {'camera': str(tmp_path / 'nope.mp4')})
    assert camera.process.wait(15) == 1
    assert "parameter 'camera': video file" in camera.output()
    assert 'does not exist' in camera.output()


def test_device_that_never_opens_keeps_retrying_with_a_clear_error():
    camera = NodeProcess('camera_node', 'camera', {'camera': '/dev/video99', 'max_backoff': 0.5})
    try:
        assert wait_until(lambda: camera.output().count('cannot open camera source') >= 2, 15.0), (
            camera.output()
        )
        assert camera.process.poll() is None
    finally:
        assert camera.stop() == 0
