"""Conversion between sensor_msgs/msg/Image messages and numpy arrays.

The real ``cv_bridge`` is used when it can be imported (a ROS 2 install); otherwise, or when the
environment variable ``PAMIQ_NO_CV_BRIDGE=1`` is set, an equivalent numpy implementation is used.
Both paths run the same validation first, so results and errors do not depend on which is used:

* the encoding must be one of ``SUPPORTED_ENCODINGS``;
* height and width must be positive and ``height * width <= max_pixels``;
* ``step >= width * channels * itemsize`` and ``len(data) == height * step`` (the check that
  cv_bridge's C++ ``matFromImage`` does); rows longer than needed are cropped (row padding);
* ``is_bigendian`` is honoured for ``mono16``.

Arrays returned by :func:`image_to_numpy` are C-contiguous, native-endian, writable and never
share memory with the message; their shape is ``(H, W, C)`` for colour and ``(H, W)`` for mono.
"""

import operator
import os
import sys
from typing import Any

from builtin_interfaces.msg import Time
import numpy as np
from sensor_msgs.msg import Image

__all__ = [
    'SUPPORTED_ENCODINGS',
    'USING_CV_BRIDGE',
    'ImageConversionError',
    'image_to_numpy',
    'numpy_to_image',
]

SUPPORTED_ENCODINGS = ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16')

# encoding -> (channels, dtype); dtypes are native-endian.
_FORMATS = {
    'rgb8': (3, np.dtype(np.uint8)),
    'bgr8': (3, np.dtype(np.uint8)),
    'rgba8': (4, np.dtype(np.uint8)),
    'bgra8': (4, np.dtype(np.uint8)),
    'mono8': (1, np.dtype(np.uint8)),
    'mono16': (1, np.dtype(np.uint16)),
}

_DESIRED_ENCODINGS = ('passthrough', 'rgb8', 'bgr8', 'mono8')

_DEFAULT_MAX_PIXELS = 4096 * 4096

_HOST_IS_BIG_ENDIAN = sys.byteorder == 'big'


class ImageConversionError(ValueError):
    """An Image message or array cannot be converted (bad encoding, size, step or data)."""


def _load_cv_bridge() -> Any:
    """Return a CvBridge instance, or None when it is unavailable or disabled.

    The PyPI ``cv-bridge`` package is a ROS 1 port that can fail on import in many ways (for
    instance AttributeError under NumPy 2), so any exception means "not available".
    """
    if os.environ.get('PAMIQ_NO_CV_BRIDGE', '').strip() not in ('', '0'):
        return None
    try:
        from cv_bridge import CvBridge

        return CvBridge()
    except Exception:
        return None


_BRIDGE = _load_cv_bridge()

USING_CV_BRIDGE: bool = _BRIDGE is not None


def _check_encoding(encoding: object) -> tuple[int, np.dtype]:
    if not isinstance(encoding, str) or encoding not in _FORMATS:
        raise ImageConversionError(
            f'unsupported encoding {encoding!r}; supported: {", ".join(SUPPORTED_ENCODINGS)}'
        )
    return _FORMATS[encoding]


def _as_int(value: object, name: str) -> int:
    try:
        result = operator.index(value)
    except TypeError:
        raise ImageConversionError(f'{name} must be an integer, got {value!r}') from None
    if result < 0:
        raise ImageConversionError(f'{name} must not be negative, got {result}')
    return result


def _data_nbytes(data: object) -> tuple[int, memoryview | None]:
    """Return the byte length of message data and a byte view of it (None for a sequence)."""
    if isinstance(data, (list, tuple)):
        return len(data), None
    try:
        view = memoryview(data).cast('B')  # type: ignore[arg-type]
    except TypeError:
        raise ImageConversionError(
            f'image data must be a bytes-like object or a list of ints, got {type(data).__name__}'
        ) from None
    return view.nbytes, view


def _sequence_to_uint8(data: list | tuple) -> np.ndarray:
    try:
        values = np.asarray(data)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ImageConversionError(f'image data is not a sequence of byte values: {exc}') from None
    if values.ndim != 1 or values.dtype.kind not in 'iu':
        raise ImageConversionError('image data is not a flat sequence of integers')
    if values.size and (values.min() < 0 or values.max() > 255):
        raise ImageConversionError('image data contains values outside 0..255')
    return values.astype(np.uint8)


_CV2_NAMES = {'rgb8': 'RGB', 'bgr8': 'BGR', 'rgba8': 'RGBA', 'bgra8': 'BGRA', 'mono8': 'GRAY'}


def _conversion_code(source: str, desired: str) -> int | None:
    """OpenCV's colour conversion code from `source` to `desired` (rgb8, bgr8 or mono8)."""
    import cv2

    if source not in _CV2_NAMES or desired not in ('rgb8', 'bgr8', 'mono8'):
        return None
    # cv2 has COLOR_RGB2BGR, COLOR_BGRA2GRAY, ... but no COLOR_X2X: same encodings give None.
    return getattr(cv2, f'COLOR_{_CV2_NAMES[source]}2{_CV2_NAMES[desired]}', None)


def _convert(array: np.ndarray, source: str, desired: str) -> np.ndarray:
    """Convert a validated native array from ``source`` to ``desired`` like cv_bridge does."""
    if desired in ('passthrough', source):
        return array
    if source == 'mono16':
        # cv_bridge: convertTo(CV_8U, 255/65535), i.e. divide by 257 rounding to nearest; x/257
        # is never exactly halfway, so integer arithmetic gives the same result.
        array = ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
        source = 'mono8'
        if desired == source:
            return array
    import cv2

    code = _conversion_code(source, desired)
    if code is None:  # pragma: no cover - every pair of supported encodings has a code
        raise ImageConversionError(f'cannot convert {source!r} to {desired!r}')
    return np.ascontiguousarray(cv2.cvtColor(array, code))


def _expected_shape(height: int, width: int, channels: int) -> tuple[int, ...]:
    return (height, width) if channels == 1 else (height, width, channels)


def _numpy_image_to_array(
    data: object,
    view: memoryview | None,
    height: int,
    width: int,
    step: int,
    row_bytes: int,
    channels: int,
    dtype: np.dtype,
    swap: bool,
) -> np.ndarray:
    if view is None:
        raw = _sequence_to_uint8(data)  # type: ignore[arg-type]
        owned = True
    else:
        raw = np.frombuffer(view, dtype=np.uint8)
        owned = False
    rows = raw.reshape(height, step)[:, :row_bytes]
    if owned:
        rows = np.ascontiguousarray(rows)
    else:
        rows = rows.copy()  # C-contiguous, writable, no memory shared with the message
    array = rows.view(dtype).reshape(_expected_shape(height, width, channels))
    if swap:
        array.byteswap(inplace=True)
    return array


def _output_format(
    encoding: str, desired: str, height: int, width: int
) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype that converting an ``encoding`` image to ``desired`` produces."""
    target = encoding if desired == 'passthrough' else desired
    channels, dtype = _FORMATS[target]
    return _expected_shape(height, width, channels), dtype


def _bridge_image_to_array(
    msg: Image, desired: str, expected: tuple[tuple[int, ...], np.dtype]
) -> np.ndarray | None:
    """Convert with cv_bridge; None when it fails or returns something unexpected."""
    try:
        result = _BRIDGE.imgmsg_to_cv2(msg, desired_encoding=desired)
    except Exception:
        return None
    shape, dtype = expected
    if not isinstance(result, np.ndarray) or result.shape != shape:
        return None
    if result.dtype.kind != 'u' or result.dtype.itemsize != dtype.itemsize:
        return None
    if not result.dtype.isnative:
        result = result.astype(result.dtype.newbyteorder('='))
    if not result.flags.c_contiguous or not result.flags.owndata or not result.flags.writeable:
        result = np.array(result, order='C', copy=True)
    return result


def image_to_numpy(
    msg: Image, desired_encoding: str = 'passthrough', max_pixels: int = _DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Convert a sensor_msgs/msg/Image to a numpy array.

    Args:
        msg: The image message (any object with the Image fields is accepted). ``data`` may be an
            ``array.array('B')`` (as rclpy gives), ``bytes``, ``bytearray`` or a list of ints.
        desired_encoding: ``'passthrough'`` to keep the message encoding, or one of ``'rgb8'``,
            ``'bgr8'``, ``'mono8'`` (or the message's own encoding) to convert colours like
            cv_bridge does; ``mono16`` is scaled to 8 bits by dividing by 257 and rounding.
        max_pixels: Largest accepted ``height * width``, a guard against corrupt messages.

    Returns:
        A C-contiguous, native-endian array that owns its memory: ``(H, W, C)`` for colour
        encodings, ``(H, W)`` for mono; uint8, or uint16 for passthrough ``mono16``.

    Raises:
        ImageConversionError: The encoding, desired encoding, size, step or data is invalid.
    """
    encoding = getattr(msg, 'encoding', None)
    channels, dtype = _check_encoding(encoding)
    if desired_encoding not in _DESIRED_ENCODINGS and desired_encoding != encoding:
        raise ImageConversionError(
            f'unsupported desired_encoding {desired_encoding!r} for {encoding!r} images; '
            f'supported: {", ".join(_DESIRED_ENCODINGS)}'
        )
    height = _as_int(getattr(msg, 'height', None), 'height')
    width = _as_int(getattr(msg, 'width', None), 'width')
    if height == 0 or width == 0:
        raise ImageConversionError(f'image has zero size ({height}x{width}, height x width)')
    if height * width > max_pixels:
        raise ImageConversionError(
            f'image {height}x{width} (height x width) has {height * width} pixels, '
            f'which exceeds max_pixels = {max_pixels}'
        )
    step = _as_int(getattr(msg, 'step', None), 'step')
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than width*channels*itemsize = {row_bytes} '
            f'({width}*{channels}*{dtype.itemsize}) for {encoding!r}'
        )
    data = getattr(msg, 'data', None)
    nbytes, view = _data_nbytes(data)
    if nbytes != height * step:
        raise ImageConversionError(
            f'image data has {nbytes} bytes but height*step = {height * step} ({height}*{step})'
        )
    big_endian = bool(getattr(msg, 'is_bigendian', 0))
    swap = dtype.itemsize > 1 and big_endian != _HOST_IS_BIG_ENDIAN

    if _BRIDGE is not None and view is not None and step == row_bytes and not swap:
        # cv_bridge's Python side differs between releases for lists of ints, row padding and
        # byte swapping (ndarray.newbyteorder is gone in NumPy 2), so those cases always take
        # the numpy path; any failure or unexpected result from cv_bridge falls back to it too.
        converted = _bridge_image_to_array(
            msg, desired_encoding, _output_format(encoding, desired_encoding, height, width)
        )
        if converted is not None:
            return converted
    array = _numpy_image_to_array(
        data, view, height, width, step, row_bytes, channels, dtype, swap
    )
    return _convert(array, encoding, desired_encoding)


def numpy_to_image(
    array: np.ndarray, encoding: str, stamp: Time | None = None, frame_id: str = ''
) -> Image:
    """Convert a numpy array to a sensor_msgs/msg/Image.

    Args:
        array: ``(H, W, 3)`` uint8 for ``rgb8``/``bgr8``, ``(H, W, 4)`` uint8 for
            ``rgba8``/``bgra8``, ``(H, W)`` uint8 for ``mono8`` or ``(H, W)`` uint16 for
            ``mono16``; any memory layout and byte order.
        encoding: One of ``SUPPORTED_ENCODINGS``.
        stamp: Header stamp (a builtin_interfaces/msg/Time, or anything with ``to_msg()``).
        frame_id: Header frame id.

    Returns:
        An Image with little-endian data (``is_bigendian = 0``) and no row padding
        (``step = width * channels * itemsize``).

    Raises:
        ImageConversionError: The encoding is unsupported or the array does not match it.
    """
    channels, dtype = _check_encoding(encoding)
    if not isinstance(array, np.ndarray):
        raise ImageConversionError(
            f'expected a numpy array for {encoding!r}, got {type(array).__name__}'
        )
    if array.dtype.kind != 'u' or array.dtype.itemsize != dtype.itemsize:
        raise ImageConversionError(
            f'dtype {array.dtype} does not match encoding {encoding!r} (expected {dtype.name})'
        )
    if channels == 1:
        shape_ok = array.ndim == 2
        expected = '(H, W)'
    else:
        shape_ok = array.ndim == 3 and array.shape[2] == channels
        expected = f'(H, W, {channels})'
    if not shape_ok:
        raise ImageConversionError(
            f'shape {array.shape} does not match encoding {encoding!r} (expected {expected})'
        )
    height, width = int(array.shape[0]), int(array.shape[1])
    if height == 0 or width == 0:
        raise ImageConversionError(f'image has zero size ({height}x{width}, height x width)')
    little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder('<'))

    msg = None
    if _BRIDGE is not None and not _HOST_IS_BIG_ENDIAN:
        try:
            msg = _BRIDGE.cv2_to_imgmsg(little, encoding=encoding)
        except Exception:
            msg = None
    if msg is None:
        msg = Image()
        msg.height = height
        msg.width = width
        msg.encoding = encoding
        msg.is_bigendian = 0
        msg.step = width * channels * dtype.itemsize
        msg.data = little.tobytes()
    if stamp is not None:
        msg.header.stamp = stamp.to_msg() if hasattr(stamp, 'to_msg') else stamp
    msg.header.frame_id = frame_id
    return msg
