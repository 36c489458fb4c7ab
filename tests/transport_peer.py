"""A stand-in for one side of pamiq's cross-host traffic, run as its own process in a namespace.

`trainer` publishes one weights-sized blob on trainer/weights (pamiq's WEIGHTS QoS) and records
the agent/step messages it receives; `actor` publishes agent/step at 10 Hz (pamiq's STEP QoS) and
records the blobs it receives; `intruder` does both; `watcher` only records agent/step (a real
agent's, with its named values). Each writes what it saw to a JSON report twice a second, so a
test in another namespace can watch it. Times are CLOCK_MONOTONIC, which network namespaces
share, so reports of different processes compare.

    python tests/transport_peer.py trainer --report trainer.json [--blob-mb 29] [--wait-for 1]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import threading
import time

ORIGINS = ('trainer', 'actor', 'intruder')
ROLES = (*ORIGINS, 'watcher')


def blob(size: int, origin: str) -> bytes:
    """`size` deterministic bytes of `origin` (a receiver checks them by digest)."""
    seed = hashlib.sha256(origin.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('role', choices=ROLES)
    parser.add_argument('--report', required=True, help='JSON file rewritten twice a second')
    parser.add_argument('--blob-mb', type=float, default=29.0, help='size of the weights blob')
    parser.add_argument('--rate', type=float, default=10.0, help='agent/step messages per second')
    parser.add_argument(
        '--wait-for',
        type=int,
        default=0,
        help='publish the blob once this many subscribers match (0: at once)',
    )
    parser.add_argument(
        '--every', type=float, default=0.0, help='publish the blob again every this many seconds'
    )
    parser.add_argument('--namespace', default='pamiq')
    options = parser.parse_args()

    from pamiq.ros import qos, topics
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import JointState
    from std_msgs.msg import MultiArrayDimension, UInt8MultiArray

    rclpy.init()
    node = Node(f'{options.role}_standin', namespace=options.namespace)
    lock = threading.Lock()
    report: dict = {
        'role': options.role,
        'pid': os.getpid(),
        'started': time.monotonic(),
        'steps_sent': [],
        'steps_received': [],
        'weights_sent': [],
        'weights_received': [],
    }

    def on_step(msg: JointState) -> None:
        with lock:
            report['steps_received'].append({
                't': time.monotonic(),
                'origin': msg.header.frame_id,
                'values': dict(zip(msg.name, msg.position)),
            })  # fmt: skip

    def on_weights(msg: UInt8MultiArray) -> None:
        arrived = time.monotonic()
        origin = msg.layout.dim[0].label if msg.layout.dim else ''
        data = bytes(msg.data)
        intact = origin in ORIGINS and data == blob(len(data), origin)
        with lock:
            report['weights_received'].append(
                {'t': arrived, 'origin': origin, 'bytes': len(data), 'intact': intact}
            )

    weights_out = steps_out = None
    if options.role in ('trainer', 'intruder'):
        weights_out = node.create_publisher(UInt8MultiArray, topics.WEIGHTS, qos.WEIGHTS)
    if options.role in ('trainer', 'intruder', 'watcher'):
        node.create_subscription(JointState, topics.STEP, on_step, qos.STEP)
    if options.role in ('actor', 'intruder'):
        steps_out = node.create_publisher(JointState, topics.STEP, qos.STEP)
        node.create_subscription(UInt8MultiArray, topics.WEIGHTS, on_weights, qos.WEIGHTS)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()

    def publish_blob() -> None:
        while options.wait_for and weights_out.get_subscription_count() < options.wait_for:
            if stop.wait(0.05):
                return
        data = blob(int(options.blob_mb * 1e6), options.role)
        msg = UInt8MultiArray()
        msg.layout.dim = [MultiArrayDimension(label=options.role, size=len(data), stride=1)]
        msg.data = data
        while True:
            started = time.monotonic()
            weights_out.publish(msg)
            with lock:
                report['weights_sent'].append(
                    {'t': started, 'returned': time.monotonic(), 'bytes': len(data)}
                )
            if not options.every or stop.wait(options.every):
                return

    if weights_out is not None:
        threading.Thread(target=publish_blob, daemon=True).start()

    def write_report() -> None:
        # What this participant has discovered: a failed test shows who saw whom.
        nodes = sorted(
            f'{ns.rstrip("/")}/{name}' for name, ns in node.get_node_names_and_namespaces()
        )
        with lock:
            report['nodes_discovered'] = nodes
            text = json.dumps(report)
        partial = options.report + '.part'
        with open(partial, 'w') as stream:
            stream.write(text)
        os.replace(partial, options.report)

    period = 1.0 / options.rate
    next_step = time.monotonic()
    next_report = 0.0
    step = 0
    while not stop.is_set():
        now = time.monotonic()
        if steps_out is not None and now >= next_step:
            msg = JointState(name=['step'], position=[float(step)])
            msg.header.frame_id = options.role
            steps_out.publish(msg)
            with lock:
                report['steps_sent'].append({'t': now, 'step': step})
            step += 1
            next_step += period
        if now >= next_report:
            write_report()
            next_report = now + 0.5
        stop.wait(max(0.0, min(next_step, next_report) - time.monotonic()))
    write_report()
    executor.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == '__main__':
    main()
