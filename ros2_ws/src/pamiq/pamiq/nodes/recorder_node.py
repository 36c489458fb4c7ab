"""recorder_node: records a pamiq session as rosbag2 bags (MCAP by default) in run_dir/bags/.

Subscribes to the trainer's topics and to every actor's (pamiq.ros.actors: an actor that joins
later is recorded from then on) and takes each message still serialized (raw CDR bytes, as
`ros2 bag record` stores them: no decode/encode round trip); a writer thread stores them, so a
slow disk never holds up the executor. Splits close at `split_size_mb` or `split_duration`.
"""

from __future__ import annotations

from dataclasses import dataclass
import os
import queue
import threading

from rclpy.node import Node

from pamiq import run_dir as layout
from pamiq.learning.config import (
    action_space_setting,
    model_setting,
    recurrent_setting,
    reward_setting,
)
from pamiq.ros import spin, topics
from pamiq.ros.actors import ActorDiscovery
from pamiq.ros.bags import (
    ACTOR_TOPICS,
    STORAGES,
    TRAINER_TOPICS,
    SplitWriter,
    message_class,
    subscription_qos,
)
from pamiq.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.settings import setting


@dataclass(frozen=True)
class RecorderConfig:
    run_dir: str = setting('runs/default', 'Bags go to <run_dir>/bags/<session>/')
    output: str = setting('', 'Session directory (default: <run_dir>/bags/<date-time>)')
    record_images: bool = setting(
        False, 'Also record camera/image_raw (large: ~2 MB/s for Doom frames)'
    )
    storage: str = setting('mcap', 'rosbag2 storage of the bags', choices=tuple(STORAGES))
    split_size_mb: float = setting(
        256.0, 'A split closes at this size (MB)', low=1.0, high=100000.0
    )
    split_duration: float = setting(
        60.0, 'A split closes after this many seconds', low=1.0, high=86400.0
    )
    queue_size: int = setting(
        1000, 'Messages waiting for the disk before new ones are dropped', low=10, high=1000000
    )
    # What made the recorded actions: each split's metadata says it (custom_data, pamiq.*).
    model: str = model_setting()
    reward: str = reward_setting()
    recurrent: bool = recurrent_setting()
    action_space: str = action_space_setting()


PARAMETERS = (RecorderConfig,)


class Recorder(Node):
    def __init__(self) -> None:
        super().__init__('recorder')
        config = declare_settings(self, RecorderConfig)
        self.actor_topics = dict(ACTOR_TOPICS)
        if config.record_images:
            self.actor_topics[topics.IMAGE] = 'sensor_msgs/msg/Image'
        namespace = self.get_namespace()
        trainer = {
            topics.namespaced(namespace, t): msgtype for t, msgtype in TRAINER_TOPICS.items()
        }
        session = config.output or os.path.join(config.run_dir, layout.BAGS, layout.timestamp())
        try:
            self.writer = SplitWriter(
                session,
                dict(trainer),
                config.storage,
                int(config.split_size_mb * 1e6),
                config.split_duration,
                {
                    'pamiq.model': config.model,
                    'pamiq.reward': config.reward,
                    'pamiq.recurrent': str(config.recurrent).lower(),
                    'pamiq.action_space': config.action_space,
                },
            )
        except (ValueError, OSError) as error:
            raise ParameterError(f"parameter 'output'/'run_dir': {error}") from error
        self.queue: queue.Queue[tuple[str, int, bytes] | None] = queue.Queue(
            maxsize=config.queue_size
        )
        self.dropped = 0
        self.failed = ''
        self.thread = threading.Thread(target=self.write_loop, name='bag-writer', daemon=True)
        self.thread.start()

        self.subs = [self.subscribe(topic, msgtype) for topic, msgtype in trainer.items()]
        self.recorded_actors: set[str] = set()
        # The namespace's own actor (the default graph's) from the start, actors below it
        # once they show up.
        self.record_actor(topics.namespaced(namespace, '').rstrip('/'))
        self.discovery = ActorDiscovery(self, self.record_actor, self.actor_left)
        self.get_logger().info(f'recording to {session} ({config.storage})')
        self.diagnostics = Diagnostics(self, f'bags {config.storage}')
        self.diagnostics.add('recording', self.recording_check)

    def subscribe(self, topic: str, msgtype: str):
        """Take `topic` (a full name) still serialized into the bag."""
        self.writer.topics[topic] = msgtype  # before its first message reaches the writer
        return self.create_subscription(
            message_class(msgtype),
            topic,
            lambda data: self.enqueue(topic, data),
            subscription_qos(topic),
            raw=True,
        )

    def record_actor(self, actor: str) -> None:
        if actor in self.recorded_actors:
            return  # recorded already (or back after leaving): its subscriptions are there
        self.recorded_actors.add(actor)
        self.subs += [
            self.subscribe(f'{actor}/{topic}', msgtype)
            for topic, msgtype in self.actor_topics.items()
        ]
        self.get_logger().info(f'recording {actor} ({len(self.actor_topics)} topics)')

    def actor_left(self, actor: str) -> None:
        self.get_logger().info(f'actor {actor} left; its bag topics stay open should it return')

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
            'actors recorded': ' '.join(sorted(self.recorded_actors)),
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
        self.thread.join()  # a disk that never answers: SIGTERM ends it, with its stack
        print(
            f'[recorder] {self.writer.messages} messages in {len(self.writer.closed)} splits',
            flush=True,
        )


def main(args: list[str] | None = None) -> int:
    return spin.run(Recorder, args)


if __name__ == '__main__':
    raise SystemExit(main())
