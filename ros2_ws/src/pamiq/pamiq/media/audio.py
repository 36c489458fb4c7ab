"""What the agent hears, as one format everywhere: 16 kHz stereo int16 in chunks of 100 ms.

No ROS here. VRChat's capture, a WAV/FLAC file and ViZDoom's audio buffer all come in at their
own rate and channel count; `Resampler` and `ChunkAssembler` turn them into this one stream of
stamped chunks, and `level_dbfs` gives the loudness rqt_plot shows.
"""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

SAMPLE_RATE = 16_000  # Hz: enough for speech and most game sounds, cheap to learn from
CHANNELS = 2  # stereo: where a sound comes from is part of what is heard
CHUNK_FRAMES = 1_600  # 100 ms, one chunk per agent step at 10 Hz
CHUNK_NS = CHUNK_FRAMES * 1_000_000_000 // SAMPLE_RATE
SILENCE_DBFS = -100.0  # the level reported for digital silence
FULL_SCALE = 32768.0


def format_description(source: str) -> dict[str, object]:
    """The stream's format, as the latched audio/format topic states it once."""
    return {
        'sample_rate': SAMPLE_RATE,
        'channels': CHANNELS,
        'sample_format': 'int16',
        'chunk_frames': CHUNK_FRAMES,
        'layout': 'std_msgs/Int16MultiArray, dims [frames, channels], interleaved; '
        'the stamp of the first frame is dim[0].label "frames@<sec>.<nanosec>"',
        'source': source,
    }


def level_dbfs(chunk: np.ndarray) -> float:
    """Loudness of a chunk: RMS over every sample in dB relative to full scale (int16)."""
    if chunk.size == 0:
        return SILENCE_DBFS
    rms = math.sqrt(float(np.mean(np.square(chunk, dtype=np.float64))))
    if rms <= 0.0:
        return SILENCE_DBFS
    return max(SILENCE_DBFS, 20.0 * math.log10(rms / FULL_SCALE))


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (or int16 already) as int16, clipped."""
    if samples.dtype == np.int16:
        return samples
    return np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)


def fit_channels(samples: np.ndarray, channels: int = CHANNELS) -> np.ndarray:
    """(N,) or (N, C) samples as (N, channels): mono is copied to both ears, extra channels
    beyond the first two are dropped."""
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.shape[1] == channels:
        return samples
    if samples.shape[1] == 1:
        return np.repeat(samples, channels, axis=1)
    return samples[:, :channels]


class Resampler:
    """Streaming band-limited resampling of (N, C) blocks from one integer rate to another.

    Windowed-sinc interpolation (Blackman window): each output sample is a weighted sum of the
    input around its position, the sinc's cut-off lowered to the output's Nyquist frequency
    when downsampling so nothing aliases into the band the agent hears. Output positions fall
    on `up` distinct fractions of an input sample (up/down = to_rate/from_rate in lowest
    terms), so the weights are computed once per fraction (polyphase). Block edges keep their
    context between calls: a stream cut into blocks resamples as if it were whole.
    """

    def __init__(self, from_rate: int, to_rate: int, channels: int, zeros: int = 16) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f'sample rates must be positive, got {from_rate} -> {to_rate}')
        common = math.gcd(int(from_rate), int(to_rate))
        self.up, self.down = int(to_rate) // common, int(from_rate) // common
        cutoff = min(1.0, to_rate / from_rate) * 0.95
        self.width = math.ceil(zeros / cutoff)  # half the kernel, in input samples
        self.channels = channels
        self.offsets = np.arange(-self.width + 1, self.width + 1)
        distance = np.arange(self.up)[:, None] / self.up - self.offsets[None, :]  # (up, 2W)
        x = distance / self.width
        window = 0.42 + 0.5 * np.cos(np.pi * x) + 0.08 * np.cos(2 * np.pi * x)
        self.weights = cutoff * np.sinc(cutoff * distance) * window
        self.buffer = np.zeros((self.width, channels), np.float64)  # left context: silence
        self.position = self.width * self.up  # of the next output, in 1/up input samples

    def process(self, block: np.ndarray) -> np.ndarray:
        """Resample the next block; returns the (M, C) float64 output it completes."""
        block = np.asarray(block, np.float64).reshape(-1, self.channels)
        if self.up == self.down:
            return block
        buffer = np.concatenate([self.buffer, block])
        # An output at input position p needs samples up to floor(p) + width.
        last = (len(buffer) - self.width) * self.up - 1
        count = max(0, (last - self.position) // self.down + 1)
        positions = self.position + self.down * np.arange(count)
        base, phase = np.divmod(positions, self.up)
        index = base[:, None] + self.offsets[None, :]  # (M, 2W)
        weights = self.weights[phase]
        output = np.stack([(weights * buffer[index, c]).sum(1) for c in range(self.channels)], 1)
        self.position += self.down * count
        keep_from = max(0, self.position // self.up - self.width)
        self.buffer = buffer[keep_from:]
        self.position -= keep_from * self.up
        return output.reshape(-1, self.channels)


@dataclass(frozen=True)
class Chunk:
    stamp_ns: int  # time of its first frame
    pcm: np.ndarray  # (CHUNK_FRAMES, CHANNELS) int16


class ChunkAssembler:
    """Cuts a stream of (N, C) blocks at SAMPLE_RATE into stamped chunks of CHUNK_FRAMES.

    Each pushed block says when its first frame was; the chunks' stamps follow from the
    first block's time and the frames since. A block that does not start where the stream
    left off (by more than `tolerance_ns`: frames lost, a reconnect, a world that skipped
    ahead) starts the stream afresh at its own time; the partial chunk before it is dropped
    and the jump counted.
    """

    def __init__(self, tolerance_ns: int = 50_000_000) -> None:
        self.tolerance_ns = tolerance_ns
        self.pending = np.zeros((0, CHANNELS), np.int16)
        self.pending_start: int | None = None  # stamp of pending[0]
        self.discontinuities = 0

    def expected_ns(self) -> int | None:
        """When the next pushed block should start (None before the first)."""
        if self.pending_start is None:
            return None
        return self.pending_start + len(self.pending) * 1_000_000_000 // SAMPLE_RATE

    def push(self, block: np.ndarray, start_ns: int) -> list[Chunk]:
        expected = self.expected_ns()
        if expected is None or abs(start_ns - expected) > self.tolerance_ns:
            if expected is not None:
                self.discontinuities += 1
            self.pending = np.zeros((0, CHANNELS), np.int16)
            self.pending_start = start_ns
        self.pending = np.concatenate([self.pending, to_int16(fit_channels(block))])
        chunks = []
        while len(self.pending) >= CHUNK_FRAMES:
            chunks.append(Chunk(self.pending_start, self.pending[:CHUNK_FRAMES].copy()))
            self.pending = self.pending[CHUNK_FRAMES:]
            self.pending_start += CHUNK_NS
        return chunks


def silence() -> np.ndarray:
    """One chunk of silence."""
    return np.zeros((CHUNK_FRAMES, CHANNELS), np.int16)
