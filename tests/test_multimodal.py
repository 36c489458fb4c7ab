"""One multimodal agent: per-sense networks fused into one embedding whose reward splits into
each sense's share; weights and checkpoints that carry them; a sense that goes silent leaves
the agent acting on the others; and world:=vrchat with a video, a WAV file and avatar
parameters on OSC runs the whole multimodal graph, whose bags then train, export and report."""

from __future__ import annotations

import glob
import os
import threading
import time
import wave

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
from pamiq.learning.config import LearnerConfig
from pamiq.learning.curiosity import curiosity_reward
from pamiq.learning.curiosity_policy import CuriosityPolicy
from pamiq.learning.hearing import FLOOR_DB
from pamiq.learning.learner import Learner, Step
from pamiq.learning.models import build_models
from pamiq.learning.multimodal import per_sense_rewards
from pamiq.learning.senses import absent, dummy_inputs
from pamiq.media.audio import CHUNK_FRAMES
from pamiq.ros import qos, topics
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.sense_messages import audio_message, hearing_input
from pamiq.storage.weights import WeightsError, pack_weights
from pamiq.tools.cli import main as pamiq
from pamiq.vrchat.avatar import BODY_FIELDS
from pamiq.vrchat.osc import OscSender
import pytest
from rosgraph import (
    FAST_TRAINER,
    NAMESPACE,
    NodeProcess,
    OscRecorder,
    free_udp_port,
    statuses,
    wait_until,
)
from sensor_msgs.msg import Image, JointState
from soundserver import dominant_frequency, write_tone
from std_msgs.msg import Int16MultiArray
from test_bringup import PamiqUp, fast_params
import torch
from videos import write_video

ALL = ('vision', 'hearing', 'body')


def test_the_fused_reward_is_the_mean_of_each_senses_share():
    torch.manual_seed(0)
    predicted, target = torch.randn(4, 704), torch.randn(4, 704)
    shares = per_sense_rewards(predicted, target, ALL)
    assert set(shares) == set(ALL)
    mean = torch.stack(list(shares.values())).mean(0)
    assert torch.allclose(mean, curiosity_reward(predicted, target), atol=1e-5)


def test_vision_alone_keeps_the_original_models_and_a_vae_cannot_hear():
    vision = build_models('inverse_dynamics', 'continuous')
    assert 'encoder.net.0.weight' in vision['encoder'].state_dict()  # the original's keys
    fused = build_models('inverse_dynamics', 'continuous', ALL)
    keys = fused['encoder'].state_dict()
    assert {'encoder.nets.hearing.out.weight', 'encoder.nets.body.net.0.weight'} <= set(keys)
    assert fused['forward_dynamics'].fc_out.out_features == 512 + 128 + 64
    with pytest.raises(ValueError, match='need encoder inverse_dynamics'):
        build_models('vae', 'continuous', ('vision', 'hearing'))


def test_weights_of_other_senses_are_refused_with_the_reason():
    fused = build_models('inverse_dynamics', 'continuous', ALL)
    vision_only = CuriosityPolicy('inverse_dynamics', 'continuous')
    with pytest.raises(WeightsError, match='hearing'):
        vision_only.load_weights(pack_weights(fused, 3))
    multimodal = CuriosityPolicy('inverse_dynamics', 'continuous', 0, ALL)
    assert multimodal.load_weights(pack_weights(fused, 3)) == 3
    frame, senses = dummy_inputs(ALL)
    multimodal.step(frame, senses)
    result = multimodal.step(frame, senses)
    assert set(result.sense_rewards) == set(ALL)
    assert np.mean(list(result.sense_rewards.values())) == pytest.approx(result.reward, rel=1e-4)


def test_a_multimodal_learner_trains_checkpoints_and_resumes(tmp_path):
    config = LearnerConfig(senses='vision,hearing,body', **{
        k: v for k, v in FAST_TRAINER.items() if k in ('rollout_length', 'batch_size',
                                                       'encoder_batches', 'dynamics_batches',
                                                       'min_buffer_size')
    })  # fmt: skip
    learner = Learner(config)
    rng = np.random.default_rng(0)
    for index in range(40):
        hearing = absent('hearing') + rng.normal(0, 5, absent('hearing').shape).astype(np.float32)
        body = rng.normal(0, 1, len(BODY_FIELDS)).astype(np.float32)
        shares = {'vision': 0.1, 'hearing': 0.3, 'body': 0.2}
        learner.add(
            Step(
                index,
                rng.integers(0, 256, (84, 84, 3), dtype=np.uint8),
                np.tanh(rng.normal(size=3)).astype(np.float32),
                0.2,
                0.0,
                -1.0,
                0,
                {'hearing': hearing, 'body': body},
                shares,
            )
        )
    assert learner.ready()
    metrics = learner.train_round()
    assert set(learner.metrics()) == set(metrics)
    assert metrics['reward/hearing'] == pytest.approx(0.3)
    path = learner.save_checkpoint(str(tmp_path), keep=2)
    resumed = Learner(config)
    assert resumed.load_checkpoint(str(tmp_path), print) == path and resumed.version == 1
    for name, model in learner.models.items():
        for key, value in model.state_dict().items():
            assert torch.equal(value, resumed.models[name].state_dict()[key]), key
    agent = CuriosityPolicy('inverse_dynamics', 'continuous', 0, ALL)
    assert agent.load_checkpoint(str(tmp_path), print) == path


def test_a_sense_that_goes_silent_leaves_the_agent_acting_on_the_others(probe):
    agent = NodeProcess('agent_node', 'agent', {'senses': 'vision,hearing,body'})
    frames = probe.create_publisher(Image, topics.IMAGE, qos.IMAGE_PUBLISHER)
    audio = probe.create_publisher(Int16MultiArray, topics.AUDIO_PCM, qos.SENSE)
    body = probe.create_publisher(JointState, topics.BODY_STATE, qos.SENSE)
    probe.record(JointState, topics.ACTION, qos.ACTION)
    probe.record(Image, topics.AGENT_HEARING, qos.OBSERVATION)
    probe.record(JointState, topics.AGENT_BODY, qos.OBSERVATION)
    probe.record(DiagnosticArray, topics.DIAGNOSTICS, 50)
    stop, hearing_on = threading.Event(), threading.Event()
    hearing_on.set()
    t = np.arange(CHUNK_FRAMES) / 16000
    chirp = (np.repeat(np.sin(2 * np.pi * 2000 * t)[:, None], 2, 1) * 16000).astype(np.int16)

    def feed() -> None:
        while not stop.is_set():
            now = probe.get_clock().now()
            frame = np.full((120, 160, 3), 80, np.uint8)
            if hearing_on.is_set():
                audio.publish(audio_message(now.nanoseconds, chirp))
            state = JointState(name=list(BODY_FIELDS), position=[1.5] + [0.0] * 9)
            state.header.stamp = now.to_msg()
            body.publish(state)
            frames.publish(numpy_to_image(frame, 'rgb8', now.to_msg(), 'camera'))
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()

    def senses_status():
        found = statuses(probe, f'{NAMESPACE}/agent: senses')
        return found[-1] if found else None

    try:
        assert wait_until(lambda: len(probe.messages(topics.AGENT_HEARING)) >= 20, 60.0), (
            agent.output()
        )
        heard = hearing_input(probe.messages(topics.AGENT_HEARING)[-1])
        assert heard.max() > FLOOR_DB + 60  # the 2 kHz tone, loud
        felt = probe.messages(topics.AGENT_BODY)[-1]
        assert dict(zip(felt.name, felt.position))['VelocityX'] == pytest.approx(1.5)
        assert wait_until(lambda: senses_status() is not None, 5.0)
        assert senses_status().level == b'\x00'
        hearing_on.clear()  # the device is unplugged
        assert wait_until(lambda: 'missing: hearing' in senses_status().message, 10.0), (
            senses_status()
        )
        probe.clear(topics.ACTION)
        probe.clear(topics.AGENT_HEARING)
        time.sleep(2.0)
        assert len(probe.messages(topics.ACTION)) >= 15  # acting goes on, on the others
        heard = hearing_input(probe.messages(topics.AGENT_HEARING)[-1])
        assert heard.max() == FLOOR_DB  # silence, not the last second again and again
        assert 'senses missing: hearing' in agent.output()
    finally:
        stop.set()
        feeder.join()
        assert agent.stop() == 0, agent.output()


def test_vrchat_with_a_video_a_wav_and_avatar_osc_runs_the_multimodal_agent(probe, tmp_path):
    video = write_video(str(tmp_path / 'screen.avi'), frames=30)
    wav = write_tone(str(tmp_path / 'world.wav'), 660.0, 2.0, rate=48000)
    osc, body_port = OscRecorder(), free_udp_port()
    run_dir = tmp_path / 'run'
    up = PamiqUp(
        'world:=vrchat',
        f'camera:={video}',
        f'audio:={wav}',
        'senses:=vision,hearing,body',
        f'osc_port:={osc.port}',
        f'body_port:={body_port}',
        f'run_dir:={run_dir}',
        f'params_file:={fast_params(tmp_path)}',
        'record:=true',
    )
    probe.record(JointState, topics.STEP, qos.STEP)
    probe.record(Image, topics.AGENT_HEARING, qos.OBSERVATION)
    probe.record(JointState, topics.AGENT_BODY, qos.OBSERVATION)
    vrchat = OscSender('127.0.0.1', body_port)  # what VRChat sends on 9001
    try:
        assert wait_until(lambda: len(probe.messages(topics.AGENT_BODY)) >= 5, 90.0), up.output()
        # The recorder follows the actor (it names it with the count of its topics).
        assert wait_until(lambda: ' topics)' in up.output(), 60.0), up.output()
        assert wait_until(lambda: 'listening for VRChat avatar' in up.output(), 60.0)
        recorded_from = len(probe.messages(topics.STEP))
        vrchat.send_message('/avatar/change', ('avtr_test',))
        for name, value in (('VelocityZ', 2.5), ('AngularY', -45.0), ('Grounded', True)):
            vrchat.send_message('/avatar/parameters/' + name, (value,))

        def felt() -> dict[str, float]:
            msg = probe.messages(topics.AGENT_BODY)[-1]
            return dict(zip(msg.name, msg.position))

        assert wait_until(lambda: felt()['VelocityZ'] == pytest.approx(2.5), 10.0), felt()
        assert felt()['AngularY'] == pytest.approx(-45.0)
        # The tone in what the agent heard lately: the newest input alone was silent once in a
        # fresh-clone run (2026-12-04, never alone). On a loaded machine a second without audio
        # chunks rightly makes hearing "missing" for a moment, its input silence (docs/senses.md).
        recent = probe.messages(topics.AGENT_HEARING)[-50:]
        loudest = max(hearing_input(m).max() for m in recent)
        assert loudest > FLOOR_DB + 60, up.output()[-4000:]
        # (Live training on paired senses: the topic-reference test's multimodal graph.)
        step = probe.messages(topics.STEP)[-1]
        assert {'reward_vision', 'reward_hearing', 'reward_body'} <= set(step.name)
        # Three seconds in the bags at least, for the offline steps below.
        assert wait_until(lambda: len(probe.messages(topics.STEP)) > recorded_from + 30, 30.0)
        times = [t for t, address, _ in osc.snapshot() if address == '/input/Vertical'][-30:]
        assert (len(times) - 1) / (times[-1] - times[0]) >= 9.0  # acting at 10 Hz
    finally:
        assert up.stop(60.0) == 0, up.output()
        osc.close()
    session = glob.glob(str(run_dir / 'bags' / '*'))[0]
    # The bags hold both senses; they train offline, export with sound and make the report.
    assert pamiq(['bag', 'info', session]) == 0
    assert pamiq([
        'train', '--from-bag', session, '--run-dir', str(tmp_path / 'offline'),
        '--senses', 'vision,hearing,body', '--epochs', '0.2', '--batch-size', '8',
    ]) == 0  # fmt: skip
    assert glob.glob(str(tmp_path / 'offline' / 'checkpoints' / '*.safetensors'))
    assert pamiq(['bag', 'export', session, '-o', str(tmp_path / 'seen.mp4')]) == 0
    with wave.open(str(tmp_path / 'seen.wav')) as sound:
        assert sound.getframerate() == 16000 and sound.getnchannels() == 2
        pcm = np.frombuffer(sound.readframes(sound.getnframes()), np.int16).reshape(-1, 2)
    assert dominant_frequency(pcm, 16000) == pytest.approx(660.0, abs=5.0)
    assert pamiq(['report', str(run_dir)]) == 0
    for name in ('hearing.png', 'body.png'):
        assert os.path.getsize(run_dir / 'report' / name) > 10_000
