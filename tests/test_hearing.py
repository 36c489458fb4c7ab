"""Hearing with real parts: a private PulseAudio server with null sinks, a WAV played into the
sink VRChat's stream uses, captured by audio_node and checked by frequency and level; the sound
server going away and coming back; a looped file; Doom's audio buffer; the stream format."""

from __future__ import annotations

import itertools
import json
import os
import tempfile

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import numpy as np
from pamiq.doom.game import TICRATE, DoomHearing, doom_command, make_game
from pamiq.learning.hearing import FLOOR_DB, LogMelStream, mel_filterbank
from pamiq.media.audio import (
    CHUNK_FRAMES,
    CHUNK_NS,
    SAMPLE_RATE,
    ChunkAssembler,
    Resampler,
    level_dbfs,
)
from pamiq.ros import qos, topics
from pamiq.ros.sense_messages import audio_chunk, audio_message
import pytest
from rosgraph import NAMESPACE, NodeProcess, statuses, wait_until
from soundserver import SoundServer, dominant_frequency, write_tone
from std_msgs.msg import Int16MultiArray, MultiArrayDimension, String

ERROR = DiagnosticStatus.ERROR


def tone(frequency: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((amplitude * np.sin(2 * np.pi * frequency * t))[:, None], 2, axis=1)


@pytest.mark.parametrize('rate', [8000, 22050, 44100, 48000])
def test_resampling_keeps_a_tone_and_removes_what_would_alias(rate):
    resampler = Resampler(rate, SAMPLE_RATE, 2)
    signal = tone(1000.0, 1.0, rate)
    blocks = [
        resampler.process(signal[i : i + rate // 7]) for i in range(0, len(signal), rate // 7)
    ]
    heard = np.concatenate(blocks)
    assert abs(len(heard) - SAMPLE_RATE) < 40  # the filter's delay keeps back its last few
    assert dominant_frequency(heard[500:], SAMPLE_RATE) == pytest.approx(1000.0, abs=2.0)
    assert np.std(heard[500:, 0]) * np.sqrt(2) == pytest.approx(0.5, rel=0.01)
    if rate > SAMPLE_RATE:  # above 8 kHz nothing may fold back into what the agent hears
        high = Resampler(rate, SAMPLE_RATE, 2).process(tone(0.45 * rate, 1.0, rate))
        assert np.std(high[500:]) < 1e-3


def test_chunks_are_stamped_from_the_stream_and_a_jump_restarts_it():
    assembler = ChunkAssembler()
    chunks = assembler.push(np.zeros((2500, 2), np.int16), 1_000_000_000)
    assert [c.stamp_ns for c in chunks] == [1_000_000_000]
    chunks = assembler.push(np.zeros((800, 2), np.int16), assembler.expected_ns())
    assert [c.stamp_ns for c in chunks] == [1_000_000_000 + CHUNK_NS]
    chunks = assembler.push(np.zeros((1600, 2), np.int16), 5_000_000_000)  # 3.8 s later
    assert [c.stamp_ns for c in chunks] == [5_000_000_000] and assembler.discontinuities == 1
    assert all(c.pcm.shape == (CHUNK_FRAMES, 2) for c in chunks)


def test_loudness_and_spectrogram_of_a_tone():
    pcm = (tone(1000.0, 1.0, SAMPLE_RATE) * 32767).astype(np.int16)
    assert level_dbfs(pcm) == pytest.approx(-9.03, abs=0.05)  # 0.5 amplitude sine: -9 dBFS
    assert level_dbfs(np.zeros((10, 2), np.int16)) == -100.0
    stream = LogMelStream()
    for start in range(0, len(pcm), CHUNK_FRAMES):
        stream.push(pcm[start : start + CHUNK_FRAMES])
    heard = stream.spectrogram()
    assert heard.shape == (2, 40, 50)
    centres = mel_filterbank().argmax(axis=1) * SAMPLE_RATE / 512
    assert abs(centres[heard[0, :, -1].argmax()] - 1000.0) < 150.0
    stream.reset()
    assert (stream.spectrogram() == FLOOR_DB).all()


def test_audio_messages_carry_their_stamp_and_bad_ones_are_refused():
    pcm = np.arange(3200, dtype=np.int16).reshape(1600, 2)
    stamp, back = audio_chunk(audio_message(12_345_678_901, pcm))
    assert stamp == 12_345_678_901 and np.array_equal(back, pcm)
    bad = audio_message(0, pcm)
    bad.layout.dim[0].label = 'frames'
    with pytest.raises(ValueError, match='no stamp'):
        audio_chunk(bad)
    bad = audio_message(0, pcm)
    bad.data = bad.data[:-2]
    with pytest.raises(ValueError, match='samples'):
        audio_chunk(bad)
    bad = Int16MultiArray()
    bad.layout.dim = [MultiArrayDimension(label='frames@0.000000000', size=5, stride=5)]
    with pytest.raises(ValueError, match='layout'):
        audio_chunk(bad)


def test_doom_hears_its_monsters_and_the_grunt_of_the_use_key():
    with tempfile.TemporaryDirectory() as engine_dir:
        game = make_game('defend_the_center', '160x120', 0, engine_dir, audio=True)
        hearing, chunks = DoomHearing(), []
        for step in range(30):
            game.advance_action(4)
            chunks += hearing.take(game.get_state().audio_buffer, 4, step * 4 * 10**9 // TICRATE)
        game.close()
        assert len(chunks) >= 20 and max(level_dbfs(c.pcm) for c in chunks) > -40.0
        # my_way_home is nearly silent: walking into a wall and pressing use makes a sound.
        game = make_game('my_way_home', '160x120', 0, engine_dir, audio=True)
        game.set_action(doom_command({'Vertical': 1.0}, 0.0))
        game.advance_action(240)
        quiet = np.abs(game.get_state().audio_buffer[-4 * 630 :]).max()
        game.set_action(doom_command({'UseRight': 1}, 0.0))
        game.advance_action(4)
        grunt = np.abs(game.get_state().audio_buffer[-4 * 630 :]).max()
        game.close()
    assert quiet < 100 and grunt > 5000


def test_the_silence_of_a_loading_world_continues_the_stream_where_its_sound_stopped():
    hearing = DoomHearing()
    loud = np.full((TICRATE * 630, 2), 8000, np.int16)
    heard = hearing.take(loud, 7, 0)  # 0.2 s of sound: two chunks
    tic_ns = 10**9 // TICRATE
    silent = hearing.silence(14, 7 * tic_ns) + hearing.silence(0, 21 * tic_ns)
    stamps = [c.stamp_ns for c in heard + silent]  # 0.6 s less the resampler's delay
    assert len(stamps) >= 5 and stamps == [i * 100_000_000 for i in range(len(stamps))]
    assert hearing.assembler.discontinuities == 0
    assert all(level_dbfs(c.pcm) > -20.0 for c in heard)
    assert level_dbfs(silent[-1].pcm) < -80.0  # the resampler's tail of the sound has passed


@pytest.fixture
def sound_server():
    server = SoundServer(('speakers', 'vrchat_out'))
    yield server
    server.stop()


def hearing_values(probe, key: str) -> list[str]:
    return [
        pair.value
        for status in statuses(probe, f'{NAMESPACE}/audio')
        for pair in status.values
        if pair.key == key
    ]


def test_audio_node_hears_what_vrchat_plays_and_survives_the_server_going_away(
    probe, sound_server, tmp_path
):
    wav = write_tone(str(tmp_path / 'tone.wav'), 440.0, 30.0)
    player = sound_server.play(wav, 'vrchat_out', name='VRChat')  # not the default sink
    probe.record(Int16MultiArray, topics.AUDIO_PCM, qos.SENSE)
    probe.record(String, topics.AUDIO_FORMAT, qos.LATCHED)
    probe.record(DiagnosticArray, topics.DIAGNOSTICS, 50)
    audio = NodeProcess('audio_node', 'audio', {'max_backoff': 0.5}, env=sound_server.env)
    try:
        assert wait_until(lambda: len(probe.messages(topics.AUDIO_PCM)) >= 15, 30.0), (
            audio.output()
        )
        chunks = [audio_chunk(m) for m in probe.messages(topics.AUDIO_PCM)[-10:]]
        pcm = np.concatenate([c[1] for c in chunks])
        assert dominant_frequency(pcm, SAMPLE_RATE) == pytest.approx(440.0, abs=5.0)
        assert level_dbfs(pcm) == pytest.approx(-9.0, abs=2.0)  # the WAV's 0.5 amplitude
        stamps = [c[0] for c in chunks]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert all(gap > 0 for gap in gaps) and abs(np.median(gaps) - 1e8) < 1e7, gaps
        source = json.loads(probe.messages(topics.AUDIO_FORMAT)[-1].data)
        assert source['sample_rate'] == 16000 and source['channels'] == 2
        assert 'vrchat_out' in source['source'], source
        # The server goes away: diagnostics say so, the node lives; it comes back: sound again.
        player.terminate()
        sound_server.kill()
        assert wait_until(
            lambda: any(s.level == ERROR for s in statuses(probe, f'{NAMESPACE}/audio')), 15.0
        ), audio.output()
        assert audio.process.poll() is None
        sound_server.start()
        probe.clear(topics.AUDIO_PCM)
        sound_server.play(wav, 'vrchat_out', name='VRChat')
        assert wait_until(lambda: len(probe.messages(topics.AUDIO_PCM)) >= 5, 30.0), audio.output()
        assert 'hearing monitor of vrchat_out' in audio.output()
        assert int(hearing_values(probe, 'reconnects')[-1]) >= 1
    finally:
        assert audio.stop() == 0, audio.output()
    assert 'Traceback' not in audio.output(), audio.output()[-3000:]


def test_audio_node_plays_a_file_looped_at_ten_chunks_a_second(probe, tmp_path):
    wav = write_tone(str(tmp_path / 'tone.wav'), 1000.0, 0.35, rate=22050)  # loops thrice a second
    probe.record(Int16MultiArray, topics.AUDIO_PCM, qos.SENSE)
    audio = NodeProcess('audio_node', 'audio', {'file': wav})
    try:
        assert wait_until(lambda: len(probe.messages(topics.AUDIO_PCM)) >= 25, 30.0), (
            audio.output()
        )
        arrivals = probe.arrivals(topics.AUDIO_PCM)[-20:]
        assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) == pytest.approx(10.0, rel=0.15)
        pcm = np.concatenate([audio_chunk(m)[1] for m in probe.messages(topics.AUDIO_PCM)[-10:]])
        assert dominant_frequency(pcm, SAMPLE_RATE) == pytest.approx(1000.0, abs=5.0)
    finally:
        assert audio.stop() == 0, audio.output()


def test_a_missing_audio_file_is_a_clear_error(tmp_path):
    audio = NodeProcess('audio_node', 'audio', {'file': str(tmp_path / 'none.wav')})
    assert audio.process.wait(30.0) == 1
    assert "parameter 'file'" in audio.output() and 'does not exist' in audio.output()
    assert not os.path.exists(tmp_path / 'none.wav')
