"""QoS profiles of pamiq's topic contract (docs/architecture.md), and its publishers' events."""

from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Frames are replaceable: a late frame is worth less than the next one, so the agent reads them
# best effort (depth 5). They are *published* reliable: a reliable publisher serves best-effort
# and reliable subscribers alike (rqt_image_view and `ros2 topic hz` ask for reliable by
# default), and with KEEP_LAST a slow reliable reader never blocks the publisher.
IMAGE = qos_profile_sensor_data
IMAGE_PUBLISHER = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
# Observations and steps are training data: keep them all, with room for a busy trainer.
OBSERVATION = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)
STEP = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)
ACTION = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# ...but the agent keeps a second of lockstep actions (~1,100/s): a KEEP_LAST writer drops its
# oldest sample when full, acknowledged or not. At 10 a busy, niced trainer lost one whose
# observation and step it still got (one frame in ~10 two-actor lockstep runs); at 64 a reader
# in a loaded 2-core test process lost 3 of 5,368 (a recorder or rqt would lose them alike).
ACTION_PUBLISHER = QoSProfile(depth=1024, reliability=ReliabilityPolicy.RELIABLE)
# The world's poses too: the record of where the agent went (bags, report's trajectories); at 10
# a loaded test reader in lockstep missed 15 in a row.
POSE_PUBLISHER = ACTION_PUBLISHER
# The newest weights wait for a late-joining (or restarted) agent.
WEIGHTS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Audio chunks and body states are a stream the agent reads in order: reliable, a second deep.
SENSE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Stated once, for whoever joins later (the audio format): kept as the weights are.
LATCHED = WEIGHTS
# /clock as ROS time sources read it (rclpy's TimeSource subscribes best effort, depth 1).
CLOCK = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
DEFAULT = 10

# rclpy gives every publisher two default event handlers (incompatible QoS, incompatible type),
# each a waitable that a Python executor polls at every wake-up, whether it ever fires or not:
# the trainer's metric publishers alone brought it ~40. pamiq's publishers go without them, and
# a lockstep step cost the world, actuator and agent together 2.1 instead of 3.4 ms of CPU.
# Nothing goes unreported: the subscriber's side of an incompatible pair, ours or rqt's or
# `ros2 topic`'s, keeps its handlers and logs it.
PUBLISHER_EVENTS = PublisherEventCallbacks(use_default_callbacks=False)


def publisher(node: Node, msg_type, topic: str, profile: QoSProfile | int) -> Publisher:
    """`node.create_publisher` with PUBLISHER_EVENTS: how every pamiq publisher is made."""
    return node.create_publisher(msg_type, topic, profile, event_callbacks=PUBLISHER_EVENTS)
