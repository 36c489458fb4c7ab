"""recorder_node: records a pamiq session as rosbag2 bags (MCAP by default) in run_dir/bags/.

Subscribes to the session's topics and takes each message still serialized (raw CDR bytes, as
`ros2 bag record` stores them: no decode/encode round trip); a writer thread stores them, so a
slow disk never holds up the executor. Splits close at `split_size_mb` or `split_duration`.
"""

from __future__ import annotations

import datetime
import os
import queue
import threading

from rclpy.node import Node

from pamiq.ros import qos, spin
from pamiq.ros.bags import IMAGE_TOPIC, SESSION_TOPICS, STORAGES, SplitWriter, message_class
from pamiq.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from pamiq.ros.parameters import ParameterError, declare


class Recorder(Node):
    def __init__(self) -> None:
        super().__init__('recorder')
        d = lambda *a, **k: declare(self, *a, **k)
        run_dir = d(
            'run_dir', 'runs/default', 'Bags go to <run_dir>/bags/<session>/', read_only=True
        )
        output = d(
            'output', '', 'Session directory (default: <run_dir>/bags/<date-time>)', read_only=True
        )
        images = d(
            'record_images',
            False,
            'Also record camera/image_raw (large: ~2 MB/s for Doom frames)',
            read_only=True,
        )
        storage = d(
            'storage',
            'mcap',
            'rosbag2 storage of the bags',
            choices=tuple(STORAGES),
            read_only=True,
        )
        split_mb = d(
            'split_size_mb',
            256.0,
            'A split closes at this size (MB)',
            low=1.0,
            high=100000.0,
            read_only=True,
        )
        split_s = d(
            'split_duration',
            60.0,
            'A split closes after this many seconds',
            low=1.0,
            high=86400.0,
            read_only=True,
        )
        queue_size = d(
            'queue_size',
            1000,
            'Messages waiting for the disk before new ones are dropped',
            low=10,
            high=1000000,
            read_only=True,
        )

        topics = dict(SESSION_TOPICS)
        if images:
            topics[IMAGE_TOPIC[0]] = IMAGE_TOPIC[1]
        namespace = self.get_namespace().rstrip('/')
        full = {f'{namespace}/{topic}': msgtype for topic, msgtype in topics.items()}
        session = output or os.path.join(
            run_dir, 'bags', datetime.datetime.now().strftime('%Y-%m-%d_%H-%M-%S')
        )
        try:
            self.writer = SplitWriter(session, full, storage, int(split_mb * 1e6), split_s)
        except (ValueError, OSError) as error:
            raise ParameterError(f"parameter 'output'/'run_dir': {error}") from error
        self.queue: queue.Queue[tuple[str, int, bytes] | None] = queue.Queue(maxsize=queue_size)
        self.dropped = 0
        self.failed = ''
        self.thread = threading.Thread(target=self.write_loop, name='bag-writer', daemon=True)
        self.thread.start()

        self.subs = [
            self.create_subscription(
                message_class(msgtype),
                topic,
                lambda data, topic=full_name: self.enqueue(topic, data),
                qos.IMAGE if topic == IMAGE_TOPIC[0] else qos.OBSERVATION,
                raw=True,
            )
            for (topic, msgtype), full_name in zip(topics.items(), full)
        ]
        self.get_logger().info(f'recording {len(full)} topics to {session} ({storage})')
        self.diagnostics = Diagnostics(self, f'bags {storage}')
        self.diagnostics.add('recording', self.recording_check)

    def enqueue(self, topic: str, data: bytes) -> None:
        stamp = self.get_clock().now().nanoseconds  # receive time, as ros2 bag record stores
        try:
            self.queue.put_nowait((topic, stamp, data))
        except queue.Full:
            self.dropped += 1
            self.get_logger().error(
                f'disk too slow: {self.dropped} messages dropped', throttle_duration_sec=5.0
            )

    def write_loop(self) -> None:
        # The writer lives on this thread only (sqlite3 objects must stay on their thread).
        while (item := self.queue.get()) is not None:
            try:
                self.writer.write(*item)
                self.failed = ''
            except Exception as error:  # disk full, permissions: report, keep the node alive
                self.failed = str(error)
                self.get_logger().error(
                    f'cannot write the bag: {error}', throttle_duration_sec=5.0
                )
        self.writer.close()

    def recording_check(self):
        values = {
            'session': self.writer.directory,
            'messages': self.writer.messages,
            'closed splits': len(self.writer.closed),
            'dropped (disk too slow)': self.dropped,
            'queue': self.queue.qsize(),
        }
        if self.failed:
            return ERROR, f'cannot write the bag: {self.failed}', values
        if self.dropped:
            return WARN, f'{self.dropped} messages dropped: the disk is too slow', values
        return OK, f'{self.writer.messages} messages recorded', values

    def shutdown(self) -> None:
        self.queue.put(None)  # after everything already queued: nothing received is lost
        self.thread.join(timeout=30.0)
        print(
            f'[recorder] {self.writer.messages} messages in {len(self.writer.closed)} splits',
            flush=True,
        )


def main(args: list[str] | None = None) -> int:
    return spin.run(Recorder, args)


if __name__ == '__main__':
    raise SystemExit(main())
