"""Frame -> action latency of the curiosity agent, in-process and through DDS.

In-process: the whole image callback's work (conversion, crop/resize, embed, reward, policy,
forward-model prediction, message building) on Doom-sized frames, torch limited to 1 thread as
in the node. Through DDS: a real agent_node process; frames published here at 10 Hz, latency =
arrival of the action with the frame's stamp minus the publish time.

    .venv/bin/python bench/agent_latency.py [--frames 600]
"""

from __future__ import annotations

import argparse
import time

import benchlib

benchlib.setup()

import numpy as np  # noqa: E402
from pamiq.learning.curiosity_policy import CuriosityPolicy  # noqa: E402
from pamiq.learning.preprocessing import preprocess  # noqa: E402
from pamiq.ros import messages, qos  # noqa: E402
from pamiq.ros.image_conversion import image_to_numpy, numpy_to_image  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import NodeProcess, Probe, wait_until  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
import torch  # noqa: E402


def frames(count: int) -> list[Image]:
    rng = np.random.default_rng(0)
    return [
        numpy_to_image(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8), 'rgb8')
        for _ in range(count)
    ]


def in_process(count: int) -> list[float]:
    torch.set_num_threads(1)
    policy = CuriosityPolicy('inverse_dynamics', 'continuous')
    latencies = []
    for msg in frames(count):
        started = time.perf_counter()
        observation = preprocess(image_to_numpy(msg, 'rgb8'))
        result = policy.step(observation)
        messages.action_names_values(result.action, 'continuous')
        numpy_to_image(observation, 'rgb8')
        latencies.append(time.perf_counter() - started)
    return latencies[20:]  # the first steps warm up torch's allocator


def through_dds(count: int) -> list[float]:
    rclpy.init()
    probe = Probe()
    agent = NodeProcess('agent_node', 'agent', {'policy': 'curiosity', 'report_period': 0.0})
    try:
        probe.record(JointState, 'action', qos.ACTION)
        pub = probe.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        sent: dict[int, float] = {}
        batch = frames(50)
        assert wait_until(lambda: pub.publish(batch[0]) or probe.messages('action'), 30.0, 0.2), (
            agent.output()
        )
        time.sleep(1.0)
        probe.clear('action')
        for index in range(count):
            msg = batch[index % len(batch)]
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + index, 0
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
    args = parser.parse_args()
    local = benchlib.summary_ms(in_process(args.frames))
    dds = benchlib.summary_ms(through_dds(args.frames))
    rows = [
        (
            'in-process p50 / p99 (ms)',
            f'{local["p50_ms"]:.2f} / {local["p99_ms"]:.2f}  (n={local["n"]})',
        ),
        (
            'through DDS p50 / p99 (ms)',
            f'{dds["p50_ms"]:.2f} / {dds["p99_ms"]:.2f}  (n={dds["n"]} of {args.frames})',
        ),
        ('target p50 / p99 (ms)', '10 / 25'),
    ]
    benchlib.report(
        'agent_latency', rows, {'in_process': local, 'through_dds': dds, 'frames': args.frames}
    )


if __name__ == '__main__':
    main()
