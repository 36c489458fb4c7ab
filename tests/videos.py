"""Generated test videos: a frame's index is encoded in its colour, so tests tell frames apart."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np


def write_video(
    path: str, frames: int = 20, width: int = 320, height: int = 240, fps: float = 30.0
) -> str:
    """Write an MJPEG AVI whose frame i is a flat colour with blue = 10 * i (mod 256)."""
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), fps, (width, height))
    assert writer.isOpened(), 'OpenCV cannot write MJPEG here'
    for index in range(frames):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :, 0] = (10 * index) % 256  # blue in OpenCV's BGR order
        frame[:, :, 1] = 128
        writer.write(frame)
    writer.release()
    return path


def frame_index(bgr: np.ndarray) -> int:
    return round(float(bgr[:, :, 0].mean()) / 10)


class NetworkStream:
    """What OBS's network output sends: MPEG-TS over UDP to 127.0.0.1:`port`, made by FFmpeg's
    libraries (PyAV), frame i coloured as write_video's, at `fps` in a thread until `stop()`."""

    def __init__(self, port: int, fps: float = 15.0, width: int = 320, height: int = 240):
        import av

        self.output = av.open(f'udp://127.0.0.1:{port}?pkt_size=1316', 'w', format='mpegts')
        self.stream = self.output.add_stream('mpeg2video', rate=round(fps))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, 'yuv420p'
        self.fps, self.sent = fps, 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.send, name='network-stream', daemon=True)
        self.thread.start()

    def send(self) -> None:
        import av

        started = time.monotonic()
        while not self.stopping.is_set():
            frame = np.zeros((self.stream.height, self.stream.width, 3), np.uint8)
            frame[:, :, 2] = (10 * self.sent) % 256  # blue, in RGB order here
            frame[:, :, 1] = 128
            for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format='rgb24')):
                self.output.mux(packet)
            self.sent += 1
            self.stopping.wait(max(0.0, started + self.sent / self.fps - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.output.close()
