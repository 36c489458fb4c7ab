"""Frame preprocessing as the original did it: centre square crop, resize to 84x84, RGB."""

from __future__ import annotations

import cv2
import numpy as np

OBSERVATION_SIZE = 84


def center_square_crop(frame: np.ndarray) -> np.ndarray:
    """Keep the central square of an (H, W, ...) frame (e.g. 1920x1080 -> central 1080x1080)."""
    height, width = frame.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return frame[top : top + side, left : left + side]


def preprocess(frame_rgb: np.ndarray, size: int = OBSERVATION_SIZE) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (size, size, 3) uint8 RGB, bilinear like cv2.resize's default."""
    square = center_square_crop(frame_rgb)
    if square.shape[0] == size:
        return np.ascontiguousarray(square)
    # INTER_AREA would alias less when shrinking, but the original used the bilinear default.
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)
