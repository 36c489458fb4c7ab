"""rosbag2 bags of pamiq sessions, written and read with the `rosbags` library (no ROS install).

A recording session is a directory of *splits*; each split is a complete rosbag2 bag (its own
metadata.yaml and one .mcap or .db3 file), closed when it reaches its size or duration limit. A
crash loses at most the open split, and every closed split plays with `ros2 bag play`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import importlib
import os

from rclpy.serialization import deserialize_message
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from pamiq.ros import qos, topics
from pamiq.vocabulary import MODEL_LOSSES, SENSES

TYPESTORE = get_typestore(Stores.ROS2_JAZZY)

# What a session records of each actor (relative to the actor's namespace) and of the trainer
# (relative to the graph's), with the message type of each; the recorder adds camera/image_raw
# (sensor_msgs/msg/Image) when asked to.
ACTOR_TOPICS: dict[str, str] = {
    topics.OBSERVATION: 'sensor_msgs/msg/Image',
    topics.ACTION: 'sensor_msgs/msg/JointState',
    topics.STEP: 'sensor_msgs/msg/JointState',
    topics.REWARD: 'std_msgs/msg/Float32',
    topics.POSE: 'geometry_msgs/msg/PoseStamped',
    topics.CMD_VEL: 'geometry_msgs/msg/Twist',
    # Hearing and the body sense (published only when the agent has them).
    topics.AUDIO_PCM: 'std_msgs/msg/Int16MultiArray',
    topics.AUDIO_LEVEL: 'std_msgs/msg/Float32',
    topics.AUDIO_FORMAT: 'std_msgs/msg/String',
    topics.BODY_STATE: 'sensor_msgs/msg/JointState',
    topics.BODY_TWIST: 'geometry_msgs/msg/TwistStamped',
    topics.AGENT_HEARING: 'sensor_msgs/msg/Image',
    topics.AGENT_BODY: 'sensor_msgs/msg/JointState',
}
TRAINER_TOPICS: dict[str, str] = {
    topics.trainer_metric(loss): 'std_msgs/msg/Float32' for loss in MODEL_LOSSES
} | {topics.trainer_metric(f'reward/{sense}'): 'std_msgs/msg/Float32' for sense in SENSES}
SESSION_TOPICS: dict[str, str] = {**ACTOR_TOPICS, **TRAINER_TOPICS}


def subscription_qos(topic: str):
    """What a recorder asks of a session topic (a full name): frames best effort, the latched
    audio format from before it joined, everything else reliable and deep."""
    if topics.matches(topic, topics.IMAGE):
        return qos.IMAGE
    return qos.LATCHED if topics.matches(topic, topics.AUDIO_FORMAT) else qos.OBSERVATION


STORAGES = {'mcap': StoragePlugin.MCAP, 'sqlite3': StoragePlugin.SQLITE3}

_NO_TIME = QosTime(sec=0, nsec=0)


def offered_qos(image: bool) -> Qos:
    """The QoS the recorded publishers offered (all reliable, images too, as pamiq.ros.qos), so
    `ros2 bag play` re-offers one that both reliable and best-effort subscribers accept."""
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=5 if image else 10,
        reliability=QosReliability.RELIABLE,
        durability=QosDurability.VOLATILE,
        deadline=_NO_TIME,
        lifespan=_NO_TIME,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_NO_TIME,
        avoid_ros_namespace_conventions=False,
    )


class SplitWriter:
    """Writes one session as numbered splits, each closed at `max_bytes` or `max_seconds`.

    `topics` may grow while the session runs (an actor joins): a topic gets its connection in
    the open split when its first message comes, and one in every split after.
    """

    def __init__(
        self,
        directory: str,
        topics: dict[str, str],
        storage: str,
        max_bytes: int,
        max_seconds: float,
        custom_data: dict[str, str] | None = None,
    ) -> None:
        """`custom_data` goes into every split's metadata.yaml (rosbag2's custom_data)."""
        if storage not in STORAGES:
            raise ValueError(f'storage {storage!r} is not one of {", ".join(STORAGES)}')
        if os.path.exists(directory) and os.listdir(directory):
            raise ValueError(f'{directory} exists and is not empty')
        os.makedirs(directory, exist_ok=True)
        self.directory, self.topics, self.storage = directory, topics, storage
        self.custom_data = dict(custom_data or {})
        self.max_bytes, self.max_seconds = max_bytes, max_seconds
        self.writer: Writer | None = None
        self.path = ''
        self.connections: dict[str, object] = {}
        self.index = -1
        self.bytes = 0
        self.first_stamp = 0
        self.closed: list[str] = []
        self.messages = 0

    def open_split(self) -> None:
        self.index += 1
        self.path = os.path.join(self.directory, f'split_{self.index:04d}')
        self.writer = Writer(self.path, version=9, storage_plugin=STORAGES[self.storage])
        self.writer.open()
        for key, value in self.custom_data.items():
            self.writer.set_custom_data(key, value)
        self.connections = {}
        for topic in list(self.topics):
            self.connect(topic)
        self.bytes = 0
        self.first_stamp = 0

    def connect(self, topic: str) -> object:
        self.connections[topic] = self.writer.add_connection(
            topic,
            self.topics[topic],
            typestore=TYPESTORE,
            offered_qos_profiles=[offered_qos(topics.matches(topic, topics.IMAGE))],
        )
        return self.connections[topic]

    def write(self, topic: str, stamp_ns: int, data: bytes) -> None:
        if self.writer is None:
            self.open_split()
        elif (
            self.bytes >= self.max_bytes or (stamp_ns - self.first_stamp) / 1e9 >= self.max_seconds
        ):
            self.close_split()
            self.open_split()
        if not self.first_stamp:
            self.first_stamp = stamp_ns
        connection = self.connections.get(topic) or self.connect(topic)
        self.writer.write(connection, stamp_ns, data)
        self.bytes += len(data)
        self.messages += 1

    def close_split(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.closed.append(self.path)
            self.writer = None

    def close(self) -> None:
        self.close_split()


def split_paths(path: str) -> list[str]:
    """The bags in `path`: itself if it is a bag (has metadata.yaml), else its splits in order."""
    if os.path.isfile(os.path.join(path, 'metadata.yaml')) or os.path.isfile(path):
        return [path]
    splits = sorted(
        os.path.join(path, name)
        for name in os.listdir(path)
        if os.path.isfile(os.path.join(path, name, 'metadata.yaml'))
    )
    if not splits:
        raise FileNotFoundError(
            f'{path} holds no readable bag (no metadata.yaml in it or its splits)'
        )
    return splits


@dataclass(frozen=True)
class BagMessage:
    topic: str
    msgtype: str
    timestamp: int  # receive time, ns
    data: bytes  # CDR, as rclpy serializes it


def read_messages(paths: list[str], topics: set[str] | None = None) -> Iterator[BagMessage]:
    """Every message of the bags (or session directories) in time order, split after split."""
    for path in paths:
        for split in split_paths(path):
            with Reader(split) as reader:
                connections = [
                    c for c in reader.connections if topics is None or c.topic in topics
                ]
                for connection, timestamp, data in reader.messages(connections=connections):
                    yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> the rclpy class sensor_msgs.msg.Image."""
    package, _, name = msgtype.split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def deserialize(message: BagMessage):
    """The rclpy message (so the project's own conversions apply to it)."""
    return deserialize_message(message.data, message_class(message.msgtype))
