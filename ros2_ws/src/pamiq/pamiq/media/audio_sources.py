"""Where audio_node's sound comes from: what VRChat plays, or a WAV/FLAC file. No ROS here.

VRChat plays into an output sink of the sound server (PulseAudio, or PipeWire's PulseAudio
service); a person hears that sink, so the agent records its monitor. `find_stream_sink` finds
the sink VRChat's stream plays to among the server's sink inputs (`pactl`); without one the
default sink's monitor is taken. Capture goes through `soundcard`, imported only when a device
is opened: it connects to the sound server on import and fails without one.

Both sources give `read()` -> one chunk of the stream format (pamiq.media.audio) with the time
of its first frame, at real-time pace, and raise `AudioSourceError` when the source is gone.
"""

from __future__ import annotations

import atexit
import importlib
import os
import queue
import re
import shutil
import subprocess
import threading
import time

import numpy as np

from pamiq.media.audio import (
    CHANNELS,
    CHUNK_FRAMES,
    CHUNK_NS,
    SAMPLE_RATE,
    ChunkAssembler,
    Resampler,
    fit_channels,
    silence,
    to_int16,
)

FILE_EXTENSIONS = ('.wav', '.flac', '.ogg')


class AudioSourceError(RuntimeError):
    """The source cannot be opened or stopped delivering; the message says why."""


def is_audio_file(source: str) -> bool:
    return source.lower().endswith(FILE_EXTENSIONS)


class FileAudioSource:
    """A WAV/FLAC file played at real-time pace in chunks, looped (like the camera's video)."""

    def __init__(self, path: str, loop: bool = True) -> None:
        self.path, self.loop = path, loop
        self.description = f'file {path}'
        self.sound = None
        self.underruns = 0  # a file never runs dry; kept so both sources report the same
        self.pending: list = []

    def open(self) -> None:
        import soundfile

        try:
            self.sound = soundfile.SoundFile(self.path)
        except (
            OSError,
            RuntimeError,
        ) as error:  # soundfile raises LibsndfileError (a RuntimeError)
            raise AudioSourceError(f'cannot open {self.path}: {error}') from error
        self.resampler = Resampler(self.sound.samplerate, SAMPLE_RATE, CHANNELS)
        self.assembler = ChunkAssembler()
        self.started = time.time_ns()
        self.produced = 0  # chunks handed out since open

    def read(self) -> tuple[np.ndarray, int]:
        if self.sound is None:
            raise AudioSourceError(f'{self.path} is not open')
        while not self.pending:
            block = self.sound.read(self.sound.samplerate // 10, dtype='float32', always_2d=True)
            if len(block) == 0:
                # An open file reads on after it was deleted: loop only while it is still there.
                if not self.loop or not os.path.exists(self.path):
                    raise AudioSourceError(f'{self.path} ended')
                self.sound.seek(0)
                continue
            resampled = self.resampler.process(fit_channels(block))
            start = self.assembler.expected_ns() or 0
            self.pending.extend(self.assembler.push(to_int16(resampled), start))
        chunk = self.pending.pop(0)
        stamp = self.started + self.produced * CHUNK_NS
        self.produced += 1
        # Real-time pace: a chunk is handed out once its last frame would have been played.
        delay = (stamp + CHUNK_NS - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        return chunk.pcm, stamp

    def close(self) -> None:
        if self.sound is not None:
            self.sound.close()
            self.sound = None
        self.pending = []


# The properties of a sink input that can name VRChat (under Proton: VRChat.exe, wine64...).
PROPERTIES = ('application.name', 'application.process.binary', 'media.name')


def pactl(*args: str) -> str:
    """Output of `pactl` in the C locale; raises AudioSourceError when it cannot run."""
    if shutil.which('pactl') is None:
        raise AudioSourceError('pactl is not installed (apt package pulseaudio-utils)')
    result = subprocess.run(
        ['pactl', *args],
        capture_output=True,
        text=True,
        timeout=5.0,
        env=dict(os.environ, LC_ALL='C'),
    )
    if result.returncode != 0:
        raise AudioSourceError(f'pactl {" ".join(args)}: {result.stderr.strip()}')
    return result.stdout


def parse_sink_inputs(text: str) -> list[dict[str, str]]:
    """`pactl list sink-inputs` as one dict per stream: 'sink' (its index) and properties."""
    streams: list[dict[str, str]] = []
    for line in text.splitlines():
        if line.startswith('Sink Input #'):
            streams.append({})
        elif streams and (match := re.match(r'\s+Sink: (\d+)$', line)):
            streams[-1]['sink'] = match.group(1)
        elif streams and (match := re.match(r'\s+([\w.]+) = "(.*)"$', line)):
            streams[-1][match.group(1)] = match.group(2)
    return streams


def find_stream_sink(pattern: str) -> str | None:
    """The name of the sink a stream matching `pattern` plays to (application name, binary or
    media name, case-insensitive), or None when no such stream plays now."""
    wanted = pattern.lower()
    sinks = {}
    for line in pactl('list', 'short', 'sinks').splitlines():
        fields = line.split('\t')
        if len(fields) >= 2:
            sinks[fields[0]] = fields[1]
    for stream in parse_sink_inputs(pactl('list', 'sink-inputs')):
        names = (stream.get(key, '') for key in PROPERTIES)
        if any(wanted in name.lower() for name in names) and stream.get('sink') in sinks:
            return sinks[stream['sink']]
    return None


class PulseAudioSource:
    """The monitor of an output sink, captured with soundcard at the stream format.

    `device` names a sink (its monitor is recorded) or a source; empty: the sink VRChat's
    stream plays to (`stream_match`), else the default sink. A reader thread records chunks;
    `read` waits at most `underrun_after` seconds for one, and hands out silence (counted as an
    underrun) when none came: the agent hears nothing rather than stalling. A capture failure
    (device removed, server gone) raises AudioSourceError; open() again reconnects.
    """

    def __init__(
        self, device: str = '', stream_match: str = 'VRChat', underrun_after: float = 0.25
    ) -> None:
        self.device, self.stream_match, self.underrun_after = device, stream_match, underrun_after
        self.description = 'sound server (not connected)'
        self.underruns = 0
        self.late_frames = 0  # frames still owed after an underrun's silence: dropped
        self.chunks: queue.Queue = queue.Queue(maxsize=50)
        self.failure: Exception | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None
        self.recorder = None
        self.started = False  # a chunk arrived since open: only then is a wait an underrun

    def choose(self, pulse) -> tuple[str, str]:
        """(source id, why): the monitor or source to record."""
        if self.device:
            sinks = {speaker.id for speaker in pulse.all_speakers()}
            if self.device in sinks:
                return self.device + '.monitor', f'monitor of sink {self.device}'
            return self.device, f'source {self.device}'
        try:
            sink = find_stream_sink(self.stream_match) if self.stream_match else None
        except (AudioSourceError, OSError, subprocess.TimeoutExpired):
            sink = None  # no pactl: the default sink is the best guess
        if sink is not None:
            return sink + '.monitor', f'monitor of {sink}, where {self.stream_match} plays'
        default = pulse.default_speaker().id
        return default + '.monitor', f'monitor of the default sink {default}'

    def open(self) -> None:
        pulse = connect_sound_server()
        source, why = self.choose(pulse)
        try:
            microphone = pulse.get_microphone(source, include_loopback=True)
            self.recorder = microphone.recorder(
                samplerate=SAMPLE_RATE, channels=CHANNELS, blocksize=CHUNK_FRAMES
            )
            self.recorder.__enter__()
        except Exception as error:  # soundcard raises IndexError, RuntimeError, ...
            self.recorder = None
            raise AudioSourceError(f'cannot record {source}: {error}') from error
        self.description = why
        self.failure = None
        self.started = False
        self.stopped.clear()
        self.chunks = queue.Queue(maxsize=50)
        self.thread = threading.Thread(target=self.record_loop, name='audio-capture', daemon=True)
        self.thread.start()

    def record_loop(self) -> None:
        recorder = self.recorder
        next_stamp = None
        while not self.stopped.is_set():
            try:
                data = recorder.record(numframes=CHUNK_FRAMES)
            except Exception as error:  # the stream failed: the device or server went away
                self.failure = error
                return
            # The server hands chunks over in bursts: stamps follow the samples' own clock
            # (100 ms a chunk), set again from the wall clock when they drift half a second.
            heard = time.time_ns() - CHUNK_NS
            if next_stamp is None or abs(heard - next_stamp) > 5 * CHUNK_NS:
                next_stamp = heard
            try:
                self.chunks.put((to_int16(data.reshape(-1, CHANNELS)), next_stamp))
            except queue.Full:
                pass  # nobody reads: keep the newest second only
            next_stamp += CHUNK_NS

    def read(self) -> tuple[np.ndarray, int]:
        if self.recorder is None:
            raise AudioSourceError('not connected to a sound server')
        while True:
            try:
                pcm, stamp = self.chunks.get(timeout=self.underrun_after)
            except queue.Empty:
                if self.failure is not None or not self.thread.is_alive():
                    raise AudioSourceError(f'capture failed: {self.failure}') from None
                if not self.started:
                    continue  # the server takes a moment to start a new stream
                self.underruns += 1
                self.late_frames += CHUNK_FRAMES
                return silence(), time.time_ns() - CHUNK_NS
            self.started = True
            if self.late_frames:  # the silence already stood in for it
                self.late_frames -= CHUNK_FRAMES
                continue
            return pcm, stamp

    def close(self) -> None:
        self.stopped.set()
        recorder, self.recorder = self.recorder, None
        stuck = False
        if self.thread is not None:
            self.thread.join(timeout=2.0)
            # Still in record() on a server that went away: closing the stream would wait on
            # the soundcard lock that call holds, and the node would never exit.
            stuck = self.thread.is_alive()
            self.thread = None
        if recorder is not None and not stuck:
            try:
                recorder.__exit__(None, None, None)
            except Exception:  # a dead server: the stream is gone with it
                pass


def connect_sound_server():
    """soundcard's PulseAudio backend with a live server connection.

    soundcard connects once, when its module is imported, and asserts when no server runs; a
    connection that broke (the server restarted) never recovers. So the module is imported on
    first use and imported afresh whenever its connection is no longer ready.

    Raises:
        AudioSourceError: No sound server answers.
    """
    try:
        pulse = importlib.import_module('soundcard.pulseaudio')
        if not connection_ready(pulse):
            # The dead connection's exit handler would fail against the reloaded module.
            atexit.unregister(pulse._pulse._shutdown)
            pulse = importlib.reload(pulse)
    except (AssertionError, RuntimeError, OSError, AttributeError) as error:
        server = os.environ.get('PULSE_SERVER', 'the default PulseAudio/PipeWire server')
        raise AudioSourceError(f'no sound server at {server} ({error!r})') from error
    return pulse


def connection_ready(pulse) -> bool:
    client = pulse._pulse  # soundcard keeps its one connection here
    try:
        return client._pa_context_get_state(client.context) == pulse._pa.PA_CONTEXT_READY
    except Exception:  # a reload that failed half-way left the module's parts mismatched
        return False
