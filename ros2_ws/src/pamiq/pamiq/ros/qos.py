"""QoS profiles of pamiq's topic contract (ARCHITECTURE.md section 2)."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Frames are replaceable: a late frame is worth less than the next one (best effort, depth 5).
IMAGE = qos_profile_sensor_data
# Observations and steps are training data: keep them all, with room for a busy trainer.
OBSERVATION = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)
STEP = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)
ACTION = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# The newest weights wait for a late-joining (or restarted) agent.
WEIGHTS = QoSProfile(
    depth=1,
    history=HistoryPolicy.KEEP_LAST,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
DEFAULT = 10
