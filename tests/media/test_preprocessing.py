"""The original's frame preprocessing: centre square crop, resize to 84x84."""

from __future__ import annotations

import numpy as np
from pamiq.media.preprocessing import center_square_crop, preprocess


def test_center_square_crop_keeps_the_middle():
    wide = np.arange(1080 * 1920).reshape(1080, 1920)
    crop = center_square_crop(wide)
    assert crop.shape == (1080, 1080)
    assert crop[0, 0] == wide[0, 420]
    tall = np.zeros((300, 100, 3))
    assert center_square_crop(tall).shape == (100, 100, 3)


def test_preprocess_gives_84x84_rgb_uint8():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[:, 40:280, 0] = 255  # the centre square is pure red
    observation = preprocess(frame)
    assert observation.shape == (84, 84, 3) and observation.dtype == np.uint8
    assert observation.flags['C_CONTIGUOUS']
    assert (observation[:, :, 0] == 255).all() and (observation[:, :, 1:] == 0).all()
    already = np.full((84, 84, 3), 7, np.uint8)
    np.testing.assert_array_equal(preprocess(already), already)
