"""camera_node: publishes what a video source shows on `camera/image_raw` (the agent's eyes).

The source is an OpenCV VideoCapture (pamiq.media.video): a device index (the OBS virtual camera
that shows VRChat), a video file (looped by default) or a URL. Frames go out as bgr8 at capture
size, at a fixed rate, stamped with their capture time. When the source fails or ends the node
reopens it with exponential backoff and never dies on a bad frame.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import time

import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image

from pamiq.media.video import V4L2_SYSFS, VideoSource, find_video_device, is_file, parse_source
from pamiq.ros import qos, spin, topics
from pamiq.ros.diagnostics import ERROR, Diagnostics, RateMeter, rate_level
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.settings import setting


@dataclass(frozen=True)
class CameraConfig:
    camera: str = setting(
        '', 'Video source: device index, file path or URL; empty: the device named camera_name'
    )
    camera_name: str = setting(
        'OBS Virtual Camera',
        "With camera '': the video4linux device whose name contains this (else index 0)",
    )
    width: int = setting(0, 'Requested capture width in px (0: source default)', low=0, high=8192)
    height: int = setting(
        0, 'Requested capture height in px (0: source default)', low=0, high=8192
    )
    fps: float = setting(
        0.0, 'Requested capture rate of a device (0: the source default)', low=0.0, high=240.0
    )
    publish_rate: float = setting(10.0, 'Frames published per second (Hz)', low=0.1, high=120.0)
    loop: bool = setting(True, 'Start a video file again when it ends')
    max_backoff: float = setting(
        5.0,
        'Longest wait in seconds between two attempts to reopen the source',
        low=0.1,
        high=300.0,
        dynamic=True,
    )
    frame_id: str = setting('camera', 'frame_id of the published images')


PARAMETERS = (CameraConfig,)


class Camera(Node):
    def __init__(self) -> None:
        super().__init__('camera')
        config = self.config = declare_settings(self, CameraConfig, self.reconfigure)
        source = parse_source(config.camera) if config.camera else self.find_device()
        if is_file(source) and not os.path.exists(source):
            raise ParameterError(f"parameter 'camera': video file {source!r} does not exist")
        self.video = VideoSource(source, config.width, config.height, config.fps, config.loop)
        self.backoff = 0.5
        self.next_attempt = 0.0
        self.published = 0
        self.bad_frames = 0
        self.failures = 0

        self.image_pub = qos.publisher(self, Image, topics.IMAGE, qos.IMAGE_PUBLISHER)
        self.timer = self.create_timer(1.0 / config.publish_rate, self.timer_callback)
        self.meter = RateMeter(self.get_clock())
        self.diagnostics = Diagnostics(self, f'camera {config.camera}')
        self.diagnostics.add('camera', self.camera_check)
        self.open_source()

    def reconfigure(self, config: CameraConfig) -> None:
        self.config = config

    def find_device(self) -> int:
        """The index of the device named camera_name (OBS's virtual camera), said in the log."""
        found = find_video_device(self.config.camera_name)
        if found is None:
            self.get_logger().warning(
                f'no video device named {self.config.camera_name!r} '
                f'(in {V4L2_SYSFS}); trying index 0: set camera:= to choose one'
            )
            return 0
        index, name = found
        self.get_logger().info(f'camera: /dev/video{index} ({name!r}), found by its name')
        return index

    def open_source(self) -> None:
        if self.video.open():
            self.get_logger().info(f'opened camera source {self.video.source!r}')
            self.backoff = 0.5
            return
        self.failures += 1
        self.next_attempt = time.monotonic() + self.backoff
        self.get_logger().error(
            f'cannot open camera source {self.video.source!r} (attempt {self.failures}); '
            f'retrying in {self.backoff:.1f} s',
            throttle_duration_sec=self.config.max_backoff,
        )
        self.backoff = min(self.backoff * 2, self.config.max_backoff)

    def timer_callback(self) -> None:
        if self.video.capture is None:
            if time.monotonic() >= self.next_attempt:
                self.open_source()
            return
        frame, captured = self.video.read()
        if frame is None:
            self.get_logger().warning(
                f'camera source {self.video.source!r} failed or ended; reopening'
            )
            self.video.close()
            self.open_source()
            return
        if frame.size == 0:
            return  # a live source has no new frame yet
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            self.bad_frames += 1
            self.get_logger().warning(
                f'dropped a bad frame {frame.shape} {frame.dtype} ({self.bad_frames} so far)',
                throttle_duration_sec=5.0,
            )
            return
        # Stamp = capture time (system clock); under use_sim_time, the simulated now.
        if self.get_parameter('use_sim_time').value:
            stamp = self.get_clock().now().to_msg()
        else:
            stamp = Time(nanoseconds=int(captured * 1e9)).to_msg()
        self.image_pub.publish(numpy_to_image(frame, 'bgr8', stamp, self.config.frame_id))
        self.published += 1
        self.meter.tick()

    def camera_check(self):
        values = {
            'source': str(self.video.source),
            'rate (Hz)': self.meter.rate(),
            'published': self.published,
            'bad frames': self.bad_frames,
            'open failures': self.failures,
        }
        source = f'camera source {self.video.source!r}'
        if self.video.capture is None:
            return ERROR, f'{source} lost or not open; retrying (attempt {self.failures})', values
        if self.meter.age() > 2.0:
            return ERROR, f'{source} gives no frames for {self.meter.age():.0f} s', values
        level = rate_level(self.meter, self.config.publish_rate)
        return level, f'{source} at {self.meter.rate():.1f} Hz', values

    def shutdown(self) -> None:
        self.video.stopped.set()
        self.video.close()


def main(args: list[str] | None = None) -> int:
    return spin.run(Camera, args)


if __name__ == '__main__':
    raise SystemExit(main())
