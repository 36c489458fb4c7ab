"""What the agent hears at a step: a stereo log-mel spectrogram of the last second. No ROS.

[Why log-mel] Mel bands space frequency as hearing does, and their log power is what sound
models commonly learn from; 40 bands of 25 ms windows every 20 ms over the last second give a
small (2, 40, 50) image per step, one per ear, so where a sound comes from is kept. The
spectrogram is built incrementally as chunks arrive (`LogMelStream`), so a step only copies it.
"""

from __future__ import annotations

import numpy as np

from pamiq.media.audio import CHANNELS, SAMPLE_RATE

MEL_BANDS = 40
WINDOW = 400  # 25 ms
HOP = 320  # 20 ms
N_FFT = 512
FRAMES = SAMPLE_RATE // HOP  # 50: one second
HEARING_SHAPE = (CHANNELS, MEL_BANDS, FRAMES)
FLOOR_DB = -100.0  # silence, and what a missing sense hears


def mel_filterbank(
    bands: int = MEL_BANDS,
    n_fft: int = N_FFT,
    rate: int = SAMPLE_RATE,
    low: float = 50.0,
    high: float = 8000.0,
) -> np.ndarray:
    """Triangular filters on the mel scale (HTK's formula): (bands, n_fft // 2 + 1)."""

    def mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(low), mel(high), bands + 2))
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / rate)
    rising = (frequencies[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    falling = (edges[2:, None] - frequencies[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    return np.maximum(0.0, np.minimum(rising, falling))


class LogMelStream:
    """The log-mel spectrogram (dB) of the last second of a stream of (N, 2) int16 chunks."""

    def __init__(self) -> None:
        self.filters = mel_filterbank()
        self.window = np.hanning(WINDOW)
        self.carry = np.zeros((0, CHANNELS))
        self.frames = np.full(HEARING_SHAPE, FLOOR_DB, np.float32)

    def push(self, pcm: np.ndarray) -> None:
        data = np.concatenate([self.carry, pcm.astype(np.float64) / 32768.0])
        count = (len(data) - WINDOW) // HOP + 1 if len(data) >= WINDOW else 0
        self.carry = data[count * HOP :]  # the next window starts there
        if count:
            starts = np.arange(count) * HOP
            windows = data[starts[:, None] + np.arange(WINDOW)[None, :]]  # (n, WINDOW, C)
            spectrum = np.fft.rfft(windows * self.window[None, :, None], N_FFT, axis=1)
            power = np.abs(spectrum) ** 2  # (n, F, C)
            mel = np.einsum('bf,nfc->cbn', self.filters, power)  # (C, bands, n)
            db = np.maximum(FLOOR_DB, 10.0 * np.log10(mel + 1e-12)).astype(np.float32)
            count = min(count, FRAMES)
            self.frames = np.concatenate([self.frames[:, :, count:], db[:, :, -count:]], axis=2)

    def spectrogram(self) -> np.ndarray:
        """(2, 40, 50) float32 dB, oldest frame first."""
        return self.frames.copy()

    def reset(self) -> None:
        """Forget what was heard (silence)."""
        self.carry = np.zeros((0, CHANNELS))
        self.frames.fill(FLOOR_DB)
