"""camera_node: publishes what a video source shows on `camera/image_raw` (the agent's eyes).

The source is an OpenCV VideoCapture: a device index (the OBS virtual camera that shows
VRChat), a video file (looped by default) or a URL. Frames go out as bgr8 at capture size, at a
fixed rate, stamped with their capture time. When the source fails or ends the node reopens it
with exponential backoff and never dies on a bad frame.
"""

from __future__ import annotations

import os
import threading
import time

import cv2
import numpy as np
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image

from pamiq.ros import qos, spin
from pamiq.ros.diagnostics import ERROR, Diagnostics, RateMeter, rate_level
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.parameters import ParameterError, declare


def parse_source(source: str) -> int | str:
    """'0' -> device index 0; anything else is a path or URL, passed to OpenCV as is."""
    return int(source) if source.strip().isdigit() else source


def is_file(source: int | str) -> bool:
    return isinstance(source, str) and '://' not in source and not source.startswith('/dev/')


class VideoSource:
    """One cv2.VideoCapture with reopen-on-failure; a live source is drained by a thread.

    A device delivers frames at its own pace and buffers them, so a reader thread keeps only
    the newest one (no stale frames). A file is read one frame per publish instead, which plays
    it at the publish rate.
    """

    def __init__(self, source: int | str, width: int, height: int, fps: float, loop: bool) -> None:
        self.source, self.width, self.height, self.fps, self.loop = (
            source,
            width,
            height,
            fps,
            loop,
        )
        self.capture: cv2.VideoCapture | None = None
        self.live = not is_file(source)
        self.lock = threading.Lock()
        self.latest: tuple[np.ndarray, float] | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def open(self) -> bool:
        capture = cv2.VideoCapture(self.source)
        if not capture.isOpened():
            capture.release()
            return False
        if self.width > 0 and self.height > 0:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        if self.fps > 0:
            capture.set(cv2.CAP_PROP_FPS, self.fps)
        self.capture = capture
        if self.live:
            self.latest = None
            self.thread = threading.Thread(target=self.drain, name='camera-reader', daemon=True)
            self.thread.start()
        return True

    def drain(self) -> None:
        capture = self.capture
        while not self.stopped.is_set() and capture is self.capture:
            ok, frame = capture.read()
            with self.lock:
                self.latest = (frame, time.time()) if ok else None
            if not ok:
                return

    def read(self) -> tuple[np.ndarray | None, float]:
        """Return (frame or None, capture time). None means the source failed or ended."""
        if self.capture is None:
            return None, 0.0
        if self.live:
            with self.lock:
                latest, self.latest = self.latest, None
            if latest is None and (self.thread is None or not self.thread.is_alive()):
                return None, 0.0
            return latest if latest is not None else (np.empty(0), 0.0)
        ok, frame = self.capture.read()
        # An open file reads on after it was deleted: loop only while it is still there.
        if (
            not ok
            and self.loop
            and os.path.exists(self.source)
            and self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        ):
            ok, frame = self.capture.read()
        return (frame if ok else None), time.time()

    def close(self) -> None:
        capture, self.capture = self.capture, None
        if capture is not None:
            capture.release()
        if self.thread is not None:
            self.thread.join(timeout=1.0)
            self.thread = None


class Camera(Node):
    def __init__(self) -> None:
        super().__init__('camera')
        camera = declare(
            self, 'camera', '0', 'Video source: device index, file path or URL', read_only=True
        )
        width = declare(
            self,
            'width',
            0,
            'Requested capture width in pixels (0: the source default)',
            low=0,
            high=8192,
            read_only=True,
        )
        height = declare(
            self,
            'height',
            0,
            'Requested capture height in pixels (0: the source default)',
            low=0,
            high=8192,
            read_only=True,
        )
        fps = declare(
            self,
            'fps',
            0.0,
            'Requested capture rate of a device (0: the source default)',
            low=0.0,
            high=240.0,
            read_only=True,
        )
        rate = declare(
            self,
            'publish_rate',
            10.0,
            'Frames published per second (Hz)',
            low=0.1,
            high=120.0,
            read_only=True,
        )
        loop = declare(self, 'loop', True, 'Start a video file again when it ends', read_only=True)
        self.max_backoff = declare(
            self,
            'max_backoff',
            5.0,
            'Longest wait in seconds between two attempts to reopen the source',
            low=0.1,
            high=300.0,
        )
        self.frame_id = declare(
            self, 'frame_id', 'camera', 'frame_id of the published images', read_only=True
        )

        source = parse_source(camera)
        if is_file(source) and not os.path.exists(source):
            raise ParameterError(f"parameter 'camera': video file {source!r} does not exist")
        self.video = VideoSource(source, width, height, fps, loop)
        self.backoff = 0.5
        self.next_attempt = 0.0
        self.published = 0
        self.bad_frames = 0
        self.failures = 0

        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        self.timer = self.create_timer(1.0 / rate, self.timer_callback)
        self.rate, self.meter = rate, RateMeter()
        self.diagnostics = Diagnostics(self, f'camera {camera}')
        self.diagnostics.add('camera', self.camera_check)
        self.open_source()

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
            throttle_duration_sec=self.max_backoff,
        )
        self.backoff = min(self.backoff * 2, self.max_backoff)

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
        self.image_pub.publish(numpy_to_image(frame, 'bgr8', stamp, self.frame_id))
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
        level = rate_level(self.meter.rate(), self.rate, self.meter.started)
        return level, f'{source} at {self.meter.rate():.1f} Hz', values

    def shutdown(self) -> None:
        self.video.stopped.set()
        self.video.close()


def main(args: list[str] | None = None) -> int:
    return spin.run(Camera, args)


if __name__ == '__main__':
    raise SystemExit(main())
