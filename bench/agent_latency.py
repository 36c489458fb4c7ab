"""Frame -> action latency of the curiosity agent, in-process and through DDS.

In-process: the whole image callback's work (conversion, crop/resize, embed, reward, policy,
forward-model prediction, message building) on frames of the Doom world's size (its default
resolution unless --resolution says otherwise), torch limited to 1 thread as
in the node. Through DDS: a real agent_node process; frames published here at 10 Hz, latency =
arrival of the action with the frame's stamp minus the publish time.

    .venv/bin/python bench/agent_latency.py [--frames 600] [--senses vision,hearing,body]
"""

from __future__ import annotations

import argparse
import time

import benchlib

benchlib.setup()

import numpy as np  # noqa: E402
from pamiq.learning.curiosity_policy import CuriosityPolicy  # noqa: E402
from pamiq.learning.hearing import LogMelStream  # noqa: E402
from pamiq.learning.senses import absent  # noqa: E402
from pamiq.media.audio import CHUNK_FRAMES  # noqa: E402
from pamiq.media.preprocessing import preprocess  # noqa: E402
from pamiq.nodes.doom_world_node import WorldConfig  # noqa: E402
from pamiq.ros import messages, qos, topics  # noqa: E402
from pamiq.ros.image_conversion import image_to_numpy, numpy_to_image  # noqa: E402
from pamiq.ros.sense_messages import audio_message  # noqa: E402
from pamiq.vocabulary import parse_senses  # noqa: E402
from pamiq.vrchat.avatar import BODY_FIELDS  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import NodeProcess, Probe, wait_until  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Int16MultiArray  # noqa: E402
import torch  # noqa: E402


def frames(count: int, resolution: str) -> list[Image]:
    width, height = map(int, resolution.split('x'))
    rng = np.random.default_rng(0)
    return [
        numpy_to_image(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), 'rgb8')
        for _ in range(count)
    ]


def sound_chunk(index: int) -> np.ndarray:
    t = (np.arange(CHUNK_FRAMES) + index * CHUNK_FRAMES) / 16000
    return np.repeat((8000 * np.sin(2 * np.pi * 440 * t))[:, None], 2, 1).astype(np.int16)


def in_process(
    count: int, senses: tuple[str, ...], resolution: str
) -> tuple[list[float], list[float]]:
    """Frame -> action and the whole step (the action, then the reward and the prediction for
    the next step), as the node does them. With hearing, each step also takes the chunk that
    came (the spectrogram's update and copy); with the body, its vector."""
    torch.set_num_threads(1)
    policy = CuriosityPolicy('inverse_dynamics', 'continuous', 0, senses)
    hearing = LogMelStream()
    to_action, whole = [], []
    for index, msg in enumerate(frames(count, resolution)):
        started = time.perf_counter()
        extras = {}
        if 'hearing' in senses:
            hearing.push(sound_chunk(index))
            extras['hearing'] = hearing.spectrogram()
        if 'body' in senses:
            extras['body'] = absent('body')
        observation = preprocess(image_to_numpy(msg, 'rgb8'))
        decision = policy.decide(observation, extras or None)
        messages.action_names_values(decision.action, 'continuous')
        to_action.append(time.perf_counter() - started)
        policy.complete()
        numpy_to_image(observation, 'rgb8')
        whole.append(time.perf_counter() - started)
    return to_action[20:], whole[20:]  # the first steps warm up torch's allocator


def through_dds(count: int, senses: tuple[str, ...], resolution: str) -> list[float]:
    rclpy.init()
    probe = Probe()
    parameters = {'policy': 'curiosity', 'report_period': 0.0, 'senses': ','.join(senses)}
    agent = NodeProcess('agent_node', 'agent', parameters)
    try:
        probe.record(JointState, 'action', qos.ACTION)
        pub = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        audio = probe.create_publisher(Int16MultiArray, topics.AUDIO_PCM, qos.SENSE)
        body = probe.create_publisher(JointState, topics.BODY_STATE, qos.SENSE)
        sent: dict[int, float] = {}
        batch = frames(50, resolution)
        assert wait_until(lambda: pub.publish(batch[0]) or probe.messages('action'), 30.0, 0.2), (
            agent.output()
        )
        time.sleep(1.0)
        probe.clear('action')
        for index in range(count):
            msg = batch[index % len(batch)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + index, 0
            if 'hearing' in senses:  # the chunk that ends as the frame comes, as a world sends
                audio.publish(audio_message(time.time_ns(), sound_chunk(index)))
            if 'body' in senses:
                body.publish(JointState(name=list(BODY_FIELDS), position=[0.0] * 10))
            sent[1000 + index] = time.monotonic()
            pub.publish(msg)
            time.sleep(0.1)
        time.sleep(0.5)
        with probe.lock:
            received = [(t, m.header.stamp.sec) for t, m in probe.received['action']]
        return [t - sent[sec] for t, sec in received if sec in sent]
    finally:
        agent.stop()
        probe.close()
        rclpy.try_shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=600, help='frames per measurement')
    parser.add_argument('--senses', default='vision', help='e.g. vision,hearing,body')
    parser.add_argument(
        '--resolution', default=WorldConfig.resolution, help='frame size, e.g. 320x240'
    )
    args = parser.parse_args()
    senses = parse_senses(args.senses)
    to_action, whole = in_process(args.frames, senses, args.resolution)
    local, step = benchlib.summary_ms(to_action), benchlib.summary_ms(whole)
    dds = benchlib.summary_ms(through_dds(args.frames, senses, args.resolution))
    rows = [
        (
            'in-process p50 / p99 (ms)',
            f'{local["p50_ms"]:.2f} / {local["p99_ms"]:.2f}  (n={local["n"]})',
        ),
        (
            'in-process whole step p50 / p99 (ms)',
            f'{step["p50_ms"]:.2f} / {step["p99_ms"]:.2f}',
        ),
        (
            'through DDS p50 / p99 (ms)',
            f'{dds["p50_ms"]:.2f} / {dds["p99_ms"]:.2f}  (n={dds["n"]} of {args.frames})',
        ),
        ('senses', ','.join(senses)),
        ('frame size', args.resolution),
        ('target p50 / p99 (ms)', '10 / 25'),
    ]
    name = 'agent_latency' if senses == ('vision',) else 'agent_latency_' + '_'.join(senses)
    benchlib.report(
        name,
        rows,
        {
            'in_process': local,
            'in_process_whole_step': step,
            'through_dds': dds,
            'frames': args.frames,
            'senses': list(senses),
            'resolution': args.resolution,
        },
    )


if __name__ == '__main__':
    main()
