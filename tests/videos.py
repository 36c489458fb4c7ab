"""Generated test videos: a frame's index is encoded in its colour, so tests tell frames apart."""

from __future__ import annotations

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
