"""A private PulseAudio server for tests: null sinks whose monitors audio_node can record.

Each server gets its own runtime directory, so parallel test runs never share one, and is
stopped afterwards. It needs the `pulseaudio` binary (tools/bootstrap.sh installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import numpy as np


class SoundServer:
    """`pulseaudio` with one null sink per name in `sinks` (the first is the default)."""

    def __init__(self, sinks: tuple[str, ...] = ('pamiq_test',)) -> None:
        if shutil.which('pulseaudio') is None:
            raise RuntimeError('pulseaudio is not installed (tools/bootstrap.sh installs it)')
        self.directory = tempfile.mkdtemp(prefix='pamiq-pulse-')
        self.socket = os.path.join(self.directory, 'native')
        self.env = dict(
            os.environ,
            PULSE_RUNTIME_PATH=self.directory,
            PULSE_STATE_PATH=self.directory,
            PULSE_SERVER=f'unix:{self.socket}',
            XDG_RUNTIME_DIR=self.directory,
            XDG_CONFIG_HOME=self.directory,
            HOME=self.directory,
        )
        self.sinks = sinks
        self.start()

    def start(self) -> None:
        """Start the server (again, after `kill`: the same socket and sinks)."""
        modules = [f'--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}']
        modules += [f'--load=module-null-sink sink_name={name} rate=48000' for name in self.sinks]
        self.process = subprocess.Popen(
            ['pulseaudio', '--daemonize=no', '--exit-idle-time=-1', '-n', '--log-target=stderr',
             '--disallow-exit', *modules],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.directory, 'pulseaudio.log'), 'ab'),
        )  # fmt: skip
        deadline = time.monotonic() + 20.0
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                with open(os.path.join(self.directory, 'pulseaudio.log'), 'rb') as log:
                    error = log.read().decode('utf-8', 'replace')[-500:]
                self.stop()
                raise RuntimeError(f'pulseaudio did not start: {error}')
            time.sleep(0.1)

    def ready(self) -> bool:
        result = subprocess.run(['pactl', 'info'], env=self.env, capture_output=True)
        return result.returncode == 0

    def pactl(self, *args: str) -> str:
        return subprocess.run(
            ['pactl', *args], env=self.env, capture_output=True, text=True, check=True
        ).stdout

    def play(self, path: str, sink: str, name: str = 'pamiq test') -> subprocess.Popen:
        """Play a sound file into `sink` as a stream called `name` (paplay, in the background)."""
        return subprocess.Popen(
            ['paplay', f'--device={sink}', f'--property=application.name={name}', path],
            env=self.env,
        )

    def kill(self) -> None:
        """The server goes away (as when PulseAudio or PipeWire restarts)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


def write_tone(
    path: str, frequency: float, seconds: float, rate: int = 44100, amplitude: float = 0.5
) -> str:
    """A stereo WAV of a sine tone (soundfile)."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    tone = amplitude * np.sin(2 * np.pi * frequency * t)
    soundfile.write(path, np.stack([tone, tone], axis=1).astype(np.float32), rate, 'PCM_16')
    return path


def dominant_frequency(pcm: np.ndarray, rate: int) -> float:
    """The strongest frequency of (N, C) samples (their mean over channels)."""
    mono = pcm.astype(np.float64).mean(axis=1)
    spectrum = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1.0 / rate)[np.argmax(spectrum)])
