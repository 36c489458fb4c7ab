"""Tests for pamiq.ros.image_conversion (numpy path; cv_bridge is exercised with a stand-in)."""

import array
import importlib.util
import sys
import types

from builtin_interfaces.msg import Time
from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pamiq.ros.image_conversion as ic
from pamiq.ros.image_conversion import (
    SUPPORTED_ENCODINGS,
    ImageConversionError,
    image_to_numpy,
    numpy_to_image,
)
import pytest
from sensor_msgs.msg import Image

FORMATS = {
    'rgb8': ((3,), np.uint8),
    'bgr8': ((3,), np.uint8),
    'rgba8': ((4,), np.uint8),
    'bgra8': ((4,), np.uint8),
    'mono8': ((), np.uint8),
    'mono16': ((), np.uint16),
}


def random_image(rng: np.random.Generator, encoding: str, height: int, width: int) -> np.ndarray:
    extra, dtype = FORMATS[encoding]
    info = np.iinfo(dtype)
    return rng.integers(0, info.max, size=(height, width, *extra), dtype=dtype, endpoint=True)


def make_msg(
    encoding: str,
    height: int,
    width: int,
    step: int,
    data: object,
    is_bigendian: int = 0,
) -> types.SimpleNamespace:
    """An Image-like object whose fields may hold anything (a real Image checks types)."""
    return types.SimpleNamespace(
        encoding=encoding,
        height=height,
        width=width,
        step=step,
        data=data,
        is_bigendian=is_bigendian,
    )


def padded_msg(image: np.ndarray, encoding: str, padding: int, fill: int = 0xA5) -> Image:
    """Build an Image with ``padding`` garbage bytes after every row."""
    msg = numpy_to_image(image, encoding)
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
    garbage = np.full((msg.height, padding), fill, dtype=np.uint8)
    msg.step += padding
    msg.data = np.concatenate([rows, garbage], axis=1).tobytes()
    return msg


def shares_memory_with_data(result: np.ndarray, msg: object) -> bool:
    data = msg.data
    if isinstance(data, (list, tuple)):
        return False
    return np.shares_memory(result, np.frombuffer(memoryview(data).cast('B'), dtype=np.uint8))


def test_supported_encodings_and_no_cv_bridge_here():
    assert SUPPORTED_ENCODINGS == ('rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16')
    # cv_bridge has no wheel: where it cannot be found the conversions are pamiq's own (with a
    # ROS install it may be found, and is used if it imports: the stand-in tests below).
    if importlib.util.find_spec('cv_bridge') is None:
        assert ic.USING_CV_BRIDGE is False and ic._BRIDGE is None
    assert issubclass(ImageConversionError, ValueError)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
@pytest.mark.parametrize('size', [(1, 1), (2, 3), (7, 5), (24, 33), (240, 320)])
def test_round_trip(encoding, size):
    rng = np.random.default_rng(hash((encoding, size)) % 2**32)
    image = random_image(rng, encoding, *size)
    msg = numpy_to_image(image, encoding)
    channels = 1 if image.ndim == 2 else image.shape[2]
    assert isinstance(msg, Image)
    assert (msg.height, msg.width, msg.encoding) == (size[0], size[1], encoding)
    assert msg.is_bigendian == 0
    assert msg.step == size[1] * channels * image.itemsize
    assert len(msg.data) == msg.height * msg.step
    result = image_to_numpy(msg)
    assert result.dtype == image.dtype
    assert result.shape == image.shape
    np.testing.assert_array_equal(result, image)
    assert result.flags.c_contiguous and result.flags.writeable
    assert not shares_memory_with_data(result, msg)


def test_numpy_to_image_header_and_data_layout():
    image = np.arange(2 * 3, dtype=np.uint16).reshape(2, 3) * 0x0102
    msg = numpy_to_image(image, 'mono16', stamp=Time(sec=12, nanosec=34), frame_id='camera')
    assert msg.header.stamp.sec == 12 and msg.header.stamp.nanosec == 34
    assert msg.header.frame_id == 'camera'
    # little-endian bytes
    assert bytes(msg.data) == image.astype('<u2').tobytes()
    default = numpy_to_image(image, 'mono16')
    assert default.header.frame_id == '' and default.header.stamp.sec == 0


def test_numpy_to_image_accepts_non_contiguous_and_big_endian_arrays():
    rng = np.random.default_rng(1)
    image = random_image(rng, 'rgb8', 6, 8)
    view = image[:, ::-1]  # negative strides
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(view, 'rgb8')), view)
    mono = random_image(rng, 'mono16', 5, 7)
    big = mono.astype('>u2')
    msg = numpy_to_image(big, 'mono16')
    assert msg.is_bigendian == 0
    assert bytes(msg.data) == mono.astype('<u2').tobytes()
    np.testing.assert_array_equal(image_to_numpy(msg), mono)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
@pytest.mark.parametrize('padding', [1, 2, 3, 8, 64])
def test_row_padding_is_cropped(encoding, padding):
    rng = np.random.default_rng(padding)
    image = random_image(rng, encoding, 9, 11)
    msg = padded_msg(image, encoding, padding)
    result = image_to_numpy(msg)
    np.testing.assert_array_equal(result, image)
    assert result.flags.c_contiguous
    assert not shares_memory_with_data(result, msg)


@pytest.mark.parametrize('kind', ['array', 'bytes', 'bytearray', 'list', 'tuple', 'memoryview'])
@pytest.mark.parametrize('encoding', ['rgb8', 'mono16'])
def test_data_types(kind, encoding):
    rng = np.random.default_rng(3)
    image = random_image(rng, encoding, 4, 5)
    msg = padded_msg(image, encoding, 3)
    raw = bytes(msg.data)
    data = {
        'array': array.array('B', raw),
        'bytes': raw,
        'bytearray': bytearray(raw),
        'list': list(raw),
        'tuple': tuple(raw),
        'memoryview': memoryview(raw),
    }[kind]
    duck = make_msg(encoding, msg.height, msg.width, msg.step, data)
    result = image_to_numpy(duck)
    np.testing.assert_array_equal(result, image)
    assert result.flags.c_contiguous and result.flags.writeable
    assert not shares_memory_with_data(result, duck)


def test_result_does_not_alias_message_buffer():
    image = np.zeros((3, 4, 3), dtype=np.uint8)
    msg = numpy_to_image(image, 'bgr8')
    result = image_to_numpy(msg)
    result[:] = 255
    assert set(bytes(msg.data)) == {0}
    msg.data[0] = 7
    assert result[0, 0, 0] == 255


@pytest.mark.parametrize('padding', [0, 1, 2])
def test_big_endian_mono16(padding):
    values = np.array([[0x0102, 0xFF00, 0x00FF], [0xABCD, 0, 0xFFFF]], dtype=np.uint16)
    rows = values.astype('>u2').tobytes()
    row_bytes = values.shape[1] * 2
    data = b''.join(
        rows[i * row_bytes : (i + 1) * row_bytes] + b'\x99' * padding for i in range(2)
    )
    msg = Image(
        height=2, width=3, encoding='mono16', is_bigendian=1, step=row_bytes + padding, data=data
    )
    result = image_to_numpy(msg)
    assert result.dtype == np.uint16 and result.dtype.isnative
    np.testing.assert_array_equal(result, values)
    little = make_msg('mono16', 2, 3, 6, values.astype('<u2').tobytes(), is_bigendian=0)
    np.testing.assert_array_equal(image_to_numpy(little), values)


def test_rgb_bgr_swap_channels():
    rng = np.random.default_rng(5)
    image = random_image(rng, 'rgb8', 7, 9)
    rgb_msg = numpy_to_image(image, 'rgb8')
    bgr = image_to_numpy(rgb_msg, 'bgr8')
    np.testing.assert_array_equal(bgr, image[..., ::-1])
    bgr_msg = numpy_to_image(np.ascontiguousarray(image[..., ::-1]), 'bgr8')
    np.testing.assert_array_equal(image_to_numpy(bgr_msg, 'rgb8'), image)
    np.testing.assert_array_equal(image_to_numpy(rgb_msg, 'rgb8'), image)


def test_alpha_is_dropped():
    rng = np.random.default_rng(6)
    rgba = random_image(rng, 'rgba8', 5, 3)
    rgb = image_to_numpy(numpy_to_image(rgba, 'rgba8'), 'rgb8')
    assert rgb.shape == (5, 3, 3)
    np.testing.assert_array_equal(rgb, rgba[..., :3])
    np.testing.assert_array_equal(
        image_to_numpy(numpy_to_image(rgba, 'rgba8'), 'bgr8'), rgba[..., 2::-1]
    )
    bgra_msg = numpy_to_image(rgba, 'bgra8')
    np.testing.assert_array_equal(image_to_numpy(bgra_msg, 'bgr8'), rgba[..., :3])
    np.testing.assert_array_equal(image_to_numpy(bgra_msg, 'rgb8'), rgba[..., 2::-1])


def test_colour_to_mono_and_back():
    grey = np.full((4, 6), 77, dtype=np.uint8)
    colour = np.repeat(grey[..., None], 3, axis=2)
    for encoding in ('rgb8', 'bgr8'):
        mono = image_to_numpy(numpy_to_image(colour, encoding), 'mono8')
        assert mono.shape == (4, 6)
        np.testing.assert_array_equal(mono, grey)
    for encoding in ('rgba8', 'bgra8'):
        rgba = np.concatenate([colour, np.zeros((4, 6, 1), np.uint8)], axis=2)
        np.testing.assert_array_equal(
            image_to_numpy(numpy_to_image(rgba, encoding), 'mono8'), grey
        )
    mono_msg = numpy_to_image(grey, 'mono8')
    np.testing.assert_array_equal(image_to_numpy(mono_msg, 'rgb8'), colour)
    np.testing.assert_array_equal(image_to_numpy(mono_msg, 'bgr8'), colour)
    np.testing.assert_array_equal(image_to_numpy(mono_msg, 'mono8'), grey)


def test_mono16_to_mono8_rounds_to_nearest():
    values = np.arange(0, 65536, dtype=np.uint16).reshape(256, 256)
    mono8 = image_to_numpy(numpy_to_image(values, 'mono16'), 'mono8')
    assert mono8.dtype == np.uint8 and mono8.shape == (256, 256)
    expected = np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(mono8, expected)
    assert mono8[0, 0] == 0 and mono8[-1, -1] == 255
    assert mono8.flat[128] == 0 and mono8.flat[129] == 1  # 128/257 < 0.5 < 129/257
    rgb = image_to_numpy(numpy_to_image(values, 'mono16'), 'rgb8')
    np.testing.assert_array_equal(rgb, np.repeat(expected[..., None], 3, axis=2))


@pytest.mark.parametrize('encoding', ['yuv422', '8UC3', '', 'RGB8', 'mono32', None, 3])
def test_unsupported_encoding(encoding):
    msg = make_msg(encoding, 2, 2, 6, bytes(12))
    with pytest.raises(ImageConversionError, match='unsupported encoding') as info:
        image_to_numpy(msg)
    assert 'supported: rgb8, bgr8' in str(info.value)
    with pytest.raises(ImageConversionError, match='unsupported encoding'):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), encoding)


@pytest.mark.parametrize('desired', ['rgba8', 'bgra8', 'mono16', 'yuv422', '', '16UC1'])
def test_unsupported_desired_encoding(desired):
    msg = numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'rgb8')
    with pytest.raises(ImageConversionError, match='unsupported desired_encoding'):
        image_to_numpy(msg, desired)


def test_desired_encoding_equal_to_source_is_passthrough():
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(image, 'mono16'), 'mono16'), image)


@pytest.mark.parametrize('height, width', [(0, 5), (5, 0), (0, 0)])
def test_zero_size(height, width):
    msg = Image(height=height, width=width, encoding='rgb8', step=width * 3, data=b'')
    with pytest.raises(ImageConversionError, match=r'zero size') as info:
        image_to_numpy(msg)
    assert f'{height}x{width}' in str(info.value)
    with pytest.raises(ImageConversionError, match='zero size'):
        numpy_to_image(np.zeros((height, width, 3), np.uint8), 'rgb8')


@pytest.mark.parametrize('field', ['height', 'width', 'step'])
@pytest.mark.parametrize('value', [-1, 2.0, '3', None])
def test_invalid_dimension_fields(field, value):
    fields = {'height': 2, 'width': 2, 'step': 6}
    fields[field] = value
    msg = make_msg('rgb8', data=bytes(12), **fields)
    with pytest.raises(ImageConversionError, match=field):
        image_to_numpy(msg)


@pytest.mark.parametrize(
    'encoding, width, step, row',
    [('rgb8', 4, 11, 12), ('rgba8', 3, 0, 12), ('mono8', 5, 4, 5), ('mono16', 5, 9, 10)],
)
def test_step_too_small(encoding, width, step, row):
    msg = make_msg(encoding, 2, width, step, bytes(2 * step))
    with pytest.raises(ImageConversionError) as info:
        image_to_numpy(msg)
    assert f'step {step} is smaller than width*channels*itemsize = {row}' in str(info.value)


@pytest.mark.parametrize('delta', [-1, 1, -12, 100])
@pytest.mark.parametrize('data_kind', ['bytes', 'list', 'array'])
def test_data_length_mismatch(delta, data_kind):
    height, width = 4, 3
    step = width * 3
    n = height * step + delta
    data = {'bytes': bytes(n), 'list': [0] * n, 'array': array.array('B', bytes(n))}[data_kind]
    msg = make_msg('bgr8', height, width, step, data)
    with pytest.raises(ImageConversionError) as info:
        image_to_numpy(msg)
    assert f'image data has {n} bytes but height*step = {height * step}' in str(info.value)


def test_data_length_mismatch_with_real_message():
    msg = Image(height=10, width=10, encoding='rgb8', step=40, data=bytes(1000))
    with pytest.raises(ImageConversionError, match='data has 1000 bytes but height\\*step = 400'):
        image_to_numpy(msg)


def test_too_many_pixels():
    msg = Image(height=20000, width=20000, encoding='mono8', step=20000)  # no data needed
    with pytest.raises(ImageConversionError, match='exceeds max_pixels') as info:
        image_to_numpy(msg)
    assert '20000x20000' in str(info.value)
    small = numpy_to_image(np.zeros((10, 10), np.uint8), 'mono8')
    with pytest.raises(ImageConversionError, match='max_pixels = 99'):
        image_to_numpy(small, max_pixels=99)
    assert image_to_numpy(small, max_pixels=100).shape == (10, 10)


@pytest.mark.parametrize(
    'data, problem',
    [
        ([0, 256], 'outside 0..255'),
        ([-1, 0], 'outside 0..255'),
        ([0.5, 1.0], 'integers'),
        (['a', 'b'], 'integers'),
        ('ab', 'bytes-like'),
        (None, 'bytes-like'),
        (12, 'bytes-like'),
    ],
)
def test_bad_data_values(data, problem):
    msg = make_msg('mono8', 1, 2, 2, data)
    with pytest.raises(ImageConversionError, match=problem):
        image_to_numpy(msg)


@pytest.mark.parametrize(
    'encoding, array_, problem',
    [
        ('rgb8', np.zeros((2, 2, 3), np.uint16), 'dtype uint16'),
        ('rgb8', np.zeros((2, 2, 3), np.float32), 'dtype float32'),
        ('rgb8', np.zeros((2, 2, 3), np.int8), 'dtype int8'),
        ('rgb8', np.zeros((2, 2, 4), np.uint8), r'shape \(2, 2, 4\)'),
        ('bgr8', np.zeros((2, 2), np.uint8), r'shape \(2, 2\)'),
        ('rgba8', np.zeros((2, 2, 3), np.uint8), r'expected \(H, W, 4\)'),
        ('bgra8', np.zeros((2, 2, 4, 1), np.uint8), 'shape'),
        ('mono8', np.zeros((2, 2, 1), np.uint8), r'expected \(H, W\)'),
        ('mono8', np.zeros((2, 2), np.uint16), 'expected uint8'),
        ('mono16', np.zeros((2, 2), np.uint8), 'expected uint16'),
        ('mono16', np.zeros((2, 2), np.int16), 'dtype int16'),
        ('mono16', np.zeros(4, np.uint16), 'shape'),
        ('mono8', [[0, 1], [2, 3]], 'numpy array'),
    ],
)
def test_numpy_to_image_rejects_mismatched_arrays(encoding, array_, problem):
    with pytest.raises(ImageConversionError, match=problem) as info:
        numpy_to_image(array_, encoding)
    assert encoding in str(info.value)


PROPERTY_ENCODINGS = st.sampled_from(SUPPORTED_ENCODINGS)


@settings(max_examples=200, deadline=None)
@given(
    height=st.integers(1, 32),
    width=st.integers(1, 32),
    encoding=PROPERTY_ENCODINGS,
    padding=st.integers(0, 7),
    fill=st.integers(0, 255),
    seed=st.integers(0, 2**32 - 1),
    as_list=st.booleans(),
)
def test_property_round_trip(height, width, encoding, padding, fill, seed, as_list):
    image = random_image(np.random.default_rng(seed), encoding, height, width)
    msg = padded_msg(image, encoding, padding, fill)
    if as_list:
        msg = make_msg(encoding, msg.height, msg.width, msg.step, list(msg.data))
    result = image_to_numpy(msg)
    assert result.shape == image.shape and result.dtype == image.dtype
    np.testing.assert_array_equal(result, image)
    assert result.flags.c_contiguous
    assert not shares_memory_with_data(result, msg)


GARBAGE_ENCODINGS = list(SUPPORTED_ENCODINGS) + ['yuv422', '8UC3', '', 'MONO8', 'rgb16', None]
# Mostly small plausible sizes, sometimes zero, negative or huge.
SIZES = st.integers(1, 8) | st.integers(0, 40) | st.integers(-3, 2**40)
STEP_BYTES = {'rgb8': 3, 'bgr8': 3, 'rgba8': 4, 'bgra8': 4, 'mono8': 1, 'mono16': 2}


@settings(max_examples=200, deadline=None)
@given(
    encoding=st.sampled_from(list(SUPPORTED_ENCODINGS) * 3 + GARBAGE_ENCODINGS),
    desired=st.sampled_from(['passthrough', 'rgb8', 'bgr8', 'mono8'] * 4 + ['rgba8', 'x']),
    height=SIZES,
    width=SIZES,
    step_padding=st.integers(-3, 7) | st.none(),  # None: a random step
    random_step=SIZES,
    length_delta=st.sampled_from([0] * 6 + [-1, 1, -7, 40]) | st.none(),
    data_kind=st.sampled_from(['bytes', 'array', 'list'] * 3 + ['bad_list', 'none']),
    is_bigendian=st.integers(0, 1),
    max_pixels=st.sampled_from([4096 * 4096, 4096 * 4096, 16]),
)
def test_property_garbage_messages(
    encoding,
    desired,
    height,
    width,
    step_padding,
    random_step,
    length_delta,
    data_kind,
    is_bigendian,
    max_pixels,
):
    if step_padding is None:
        step = random_step
    else:
        step = width * STEP_BYTES.get(encoding, 3) + step_padding
    nbytes = height * step + (length_delta or 0)
    if length_delta is None or not 0 <= nbytes <= 8192:
        nbytes = abs(random_step) % 400
    raw = bytes(range(256)) * 32
    data = {
        'bytes': raw[:nbytes],
        'array': array.array('B', raw[:nbytes]),
        'list': list(raw[:nbytes]),
        'bad_list': [300] * nbytes,
        'none': None,
    }[data_kind]
    msg = make_msg(encoding, height, width, step, data, is_bigendian)
    try:
        result = image_to_numpy(msg, desired, max_pixels=max_pixels)
    except ImageConversionError as exc:
        assert str(exc)
        return
    assert isinstance(result, np.ndarray)
    assert result.shape[:2] == (height, width)
    assert result.flags.c_contiguous


@settings(max_examples=100, deadline=None)
@given(
    encoding=st.sampled_from(GARBAGE_ENCODINGS),
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=4),
    dtype=st.sampled_from([np.uint8, np.uint16, np.int16, np.float32, np.dtype('>u2')]),
)
def test_property_numpy_to_image_garbage(encoding, shape, dtype):
    array_ = np.zeros(shape, dtype=dtype)
    try:
        msg = numpy_to_image(array_, encoding)
    except ImageConversionError as exc:
        assert str(exc)
        return
    np.testing.assert_array_equal(image_to_numpy(msg), array_)


# --- cv_bridge selection -------------------------------------------------------------------


class FakeCvBridge:
    """Mimics the ROS 2 cv_bridge Python side for the encodings used here."""

    calls: list = []

    def imgmsg_to_cv2(self, img_msg, desired_encoding='passthrough'):
        FakeCvBridge.calls.append(('imgmsg_to_cv2', desired_encoding))
        extra, dtype = FORMATS[img_msg.encoding]
        channels = extra[0] if extra else 1
        shape = (img_msg.height, img_msg.width) + ((channels,) if extra else ())
        buffer = img_msg.data
        im = np.ndarray(shape=shape, dtype=np.dtype(dtype).newbyteorder('<'), buffer=buffer)
        if desired_encoding == 'passthrough':
            return im  # shares memory with the message, like the real one
        if desired_encoding == 'bgr8' and img_msg.encoding == 'rgb8':
            return im[..., ::-1]  # a non-contiguous view
        raise RuntimeError('conversion not implemented in the fake')

    def cv2_to_imgmsg(self, cvim, encoding='passthrough'):
        FakeCvBridge.calls.append(('cv2_to_imgmsg', encoding))
        msg = Image()
        msg.height, msg.width = cvim.shape[:2]
        msg.encoding = encoding
        msg.is_bigendian = 0
        msg.data = cvim.tobytes()
        msg.step = len(msg.data) // msg.height
        return msg


def load_fresh_module(monkeypatch, cv_bridge_module, env=None):
    """Import a private copy of image_conversion with a given cv_bridge module."""
    if env is None:
        monkeypatch.delenv('PAMIQ_NO_CV_BRIDGE', raising=False)
    else:
        monkeypatch.setenv('PAMIQ_NO_CV_BRIDGE', env)
    monkeypatch.setitem(sys.modules, 'cv_bridge', cv_bridge_module)
    spec = importlib.util.spec_from_file_location('_pamiq_image_conversion_copy', ic.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BrokenCvBridgeModule(types.ModuleType):
    def __getattr__(self, name):
        raise AttributeError('`np.float` was a deprecated alias')  # PyPI port under NumPy 2


def test_broken_or_missing_cv_bridge_falls_back(monkeypatch):
    broken = load_fresh_module(monkeypatch, BrokenCvBridgeModule('cv_bridge'))
    assert broken.USING_CV_BRIDGE is False
    missing = load_fresh_module(monkeypatch, None)  # None in sys.modules -> ImportError
    assert missing.USING_CV_BRIDGE is False
    image = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    np.testing.assert_array_equal(
        broken.image_to_numpy(broken.numpy_to_image(image, 'rgb8')), image
    )


def test_fake_cv_bridge_is_used_and_validated(monkeypatch):
    fake = types.ModuleType('cv_bridge')
    fake.CvBridge = FakeCvBridge
    disabled = load_fresh_module(monkeypatch, fake, env='1')
    assert disabled.USING_CV_BRIDGE is False
    module = load_fresh_module(monkeypatch, fake)
    assert module.USING_CV_BRIDGE is True
    FakeCvBridge.calls.clear()

    rng = np.random.default_rng(9)
    image = random_image(rng, 'rgb8', 6, 5)
    msg = module.numpy_to_image(image, 'rgb8', frame_id='f')
    assert msg.header.frame_id == 'f'
    assert FakeCvBridge.calls == [('cv2_to_imgmsg', 'rgb8')]

    result = module.image_to_numpy(msg)
    np.testing.assert_array_equal(result, image)
    assert result.flags.c_contiguous and not shares_memory_with_data(result, msg)
    bgr = module.image_to_numpy(msg, 'bgr8')
    np.testing.assert_array_equal(bgr, image[..., ::-1])
    assert bgr.flags.c_contiguous
    # The fake fails on this conversion; the numpy path takes over.
    np.testing.assert_array_equal(
        module.image_to_numpy(msg, 'mono8'), image_to_numpy(msg, 'mono8')
    )
    assert [c[0] for c in FakeCvBridge.calls].count('imgmsg_to_cv2') == 3

    # Padded, list and big-endian data never reach cv_bridge; errors come from validation.
    FakeCvBridge.calls.clear()
    np.testing.assert_array_equal(module.image_to_numpy(padded_msg(image, 'rgb8', 2)), image)
    short = make_msg('rgb8', 6, 5, 15, bytes(89))
    with pytest.raises(module.ImageConversionError, match='data has 89 bytes'):
        module.image_to_numpy(short)
    assert FakeCvBridge.calls == []
