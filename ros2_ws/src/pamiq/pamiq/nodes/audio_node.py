"""audio_node: what VRChat plays, as the agent's ears, on `audio/pcm` (pamiq.media.audio's format).

It records the monitor of the output sink VRChat's stream plays to (PulseAudio, or PipeWire's
PulseAudio service): the sink is found among the sound server's streams by `stream_match`,
else the default sink is taken, or `device` names one. `file` plays a WAV/FLAC file instead,
looped, as camera_node plays a video. Chunks of 100 ms go out stamped with the time of their
first frame, with their loudness on `audio/level` and the format once on `audio/format`. A
lost device or server is reopened with backoff (diagnostics ERROR meanwhile); when no sound
comes for `underrun_after` seconds a chunk of silence stands in, counted, and capture goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import threading

from rclpy.node import Node

from pamiq.media.audio import Chunk
from pamiq.media.audio_sources import AudioSourceError, FileAudioSource, PulseAudioSource
from pamiq.ros import spin
from pamiq.ros.audio_publisher import AudioPublisher
from pamiq.ros.diagnostics import ERROR, WARN, Diagnostics, rate_level
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.settings import setting


@dataclass(frozen=True)
class AudioConfig:
    device: str = setting(
        '',
        'Sink (its monitor is recorded) or source to capture; empty: the sink the stream '
        'matching stream_match plays to, else the default sink',
    )
    file: str = setting('', 'A WAV/FLAC file to play instead of a device (empty: a device)')
    stream_match: str = setting(
        'VRChat', "Names VRChat's stream among the sound server's (application or media name)"
    )
    loop: bool = setting(True, 'Start the file again when it ends')
    underrun_after: float = setting(
        0.25,
        'Seconds without captured sound before a chunk of silence stands in (an underrun)',
        low=0.05,
        high=5.0,
    )
    max_backoff: float = setting(
        5.0,
        'Longest wait in seconds between two attempts to reopen the device',
        low=0.1,
        high=300.0,
        dynamic=True,
    )


PARAMETERS = (AudioConfig,)
RATE = 10.0  # chunks per second


class Audio(Node):
    def __init__(self) -> None:
        super().__init__('audio')
        config = self.config = declare_settings(self, AudioConfig, self.reconfigure)
        if config.file and not os.path.isfile(config.file):
            raise ParameterError(f"parameter 'file': {config.file!r} does not exist")
        self.source = (
            FileAudioSource(config.file, config.loop)
            if config.file
            else PulseAudioSource(config.device, config.stream_match, config.underrun_after)
        )
        self.connected = False
        self.failures = 0
        self.reconnects = 0
        self.last_error = ''
        self.reported_underruns = 0
        self.publisher = AudioPublisher(self, self.source.description)
        self.diagnostics = Diagnostics(self, 'audio')
        self.diagnostics.add('hearing', self.hearing_check)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.capture_loop, name='audio', daemon=True)
        self.thread.start()

    def reconfigure(self, config: AudioConfig) -> None:
        self.config = config

    def capture_loop(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            if not self.connected:
                try:
                    self.source.open()
                except AudioSourceError as error:
                    self.failures += 1
                    self.last_error = str(error)
                    self.get_logger().error(
                        f'cannot hear: {error}; retrying in {backoff:.1f} s',
                        throttle_duration_sec=self.config.max_backoff,
                    )
                    self.stopping.wait(backoff)
                    backoff = min(backoff * 2, self.config.max_backoff)
                    continue
                self.connected, backoff, self.last_error = True, 0.5, ''
                self.publisher.announce(self.source.description)
                self.get_logger().info(f'hearing {self.source.description}')
            try:
                pcm, stamp = self.source.read()
            except AudioSourceError as error:
                self.connected = False
                self.reconnects += 1
                self.last_error = str(error)
                self.get_logger().warning(f'lost {self.source.description}: {error}; reopening')
                self.source.close()
                continue
            try:
                self.publisher.publish(Chunk(stamp, pcm))
            except Exception:
                if self.context.ok():
                    raise
                return  # shutting down: the node's publishers are gone
            if self.source.underruns > self.reported_underruns:
                self.reported_underruns = self.source.underruns
                self.get_logger().warning(
                    f'no sound for {self.config.underrun_after:g} s: silence stands in '
                    f'({self.source.underruns} underruns so far)',
                    throttle_duration_sec=5.0,
                )

    def hearing_check(self):
        values = {
            **self.publisher.values(),
            'connected': self.connected,
            'underruns': self.source.underruns,
            'open failures': self.failures,
            'reconnects': self.reconnects,
        }
        if not self.connected:
            return ERROR, f'no sound: {self.last_error or "connecting"}; retrying', values
        if self.publisher.meter.age() > 2.0:
            return ERROR, f'{self.source.description} gives no sound', values
        if self.source.underruns and self.publisher.meter.rate() < 0.8 * RATE:
            return WARN, f'underruns: {self.source.underruns} chunks of silence', values
        return rate_level(self.publisher.meter, RATE), f'hearing {self.source.description}', values

    def shutdown(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=3.0)
        self.source.close()


def main(args: list[str] | None = None) -> int:
    return spin.run(Audio, args)


if __name__ == '__main__':
    raise SystemExit(main())
