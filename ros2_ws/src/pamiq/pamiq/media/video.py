"""Video capture for the camera node: an OpenCV source that reopens and drops stale frames.

No ROS here: the node publishes what `VideoSource.read` returns.
"""

from __future__ import annotations

import os
import threading
import time

import cv2
import numpy as np

# Where Linux lists its video devices, one videoN/ with a `name` file each.
V4L2_SYSFS = '/sys/class/video4linux'


def find_video_device(name: str, sysfs: str = V4L2_SYSFS) -> tuple[int, str] | None:
    """(index, device name) of the lowest /dev/videoN whose name contains `name` (any case),
    e.g. OBS's virtual camera, whose v4l2loopback device is called "OBS Virtual Camera"."""
    try:
        entries = os.listdir(sysfs)
    except OSError:
        return None
    indices = sorted(int(e[5:]) for e in entries if e.startswith('video') and e[5:].isdigit())
    for index in indices:
        try:
            with open(os.path.join(sysfs, f'video{index}', 'name')) as stream:
                device = stream.read().strip()
        except OSError:
            continue
        if name.lower() in device.lower():
            return index, device
    return None


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
        try:
            while not self.stopped.is_set() and capture is self.capture:
                ok, frame = capture.read()
                with self.lock:
                    self.latest = (frame, time.time()) if ok else None
                if not ok:
                    return
        finally:
            # Closed while it read: releasing a capture under its read() crashes FFmpeg (a
            # network stream), so the reader releases it once its read has returned.
            if capture is not self.capture:
                capture.release()

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
        reader, self.thread = self.thread, None
        if reader is not None and reader.is_alive():
            reader.join(timeout=1.0)  # a live source's next frame is due within a second
            if reader.is_alive():
                return  # still in read(): it releases the capture when that returns
        if capture is not None:
            capture.release()  # (a second release of a capture is harmless)
