"""Test isolation for a ROS 2 graph on a shared machine.

Each pytest process claims its own ROS_DOMAIN_ID (held by a bound loopback port, the idea of
ros2's domain_coordinator) and keeps DDS on loopback + shared memory, before rclpy is imported
anywhere, so parallel test runs never see each other's topics.
"""

from __future__ import annotations

import os
import random
import socket
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_domain_lock: socket.socket | None = None


def _claim_domain_id() -> int:
    global _domain_lock
    candidates = list(range(1, 101))
    random.shuffle(candidates)
    for domain in candidates:
        lock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            lock.bind(('127.0.0.1', 27100 + domain))
        except OSError:
            lock.close()
            continue
        _domain_lock = lock
        return domain
    raise RuntimeError('no free ROS_DOMAIN_ID in 1..100')


os.environ['ROS_DOMAIN_ID'] = str(_claim_domain_id())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# Fast DDS 2.x (Jazzy) reads FASTRTPS_..., 3.x (Kilted and later) FASTDDS_...: set both.
_profile = os.path.join(REPO, 'config', 'fastdds_loopback.xml')
os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = _profile
os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = _profile
os.environ['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
os.environ['ROS_LOG_DIR'] = tempfile.mkdtemp(prefix='pamiq-roslog-')
os.environ['PYTHONUNBUFFERED'] = '1'


@pytest.fixture(scope='session')
def ros():
    """rclpy initialised once for the test process (the graph under test runs in children)."""
    import rclpy

    rclpy.init()
    yield
    rclpy.try_shutdown()


@pytest.fixture
def probe(ros):
    """A test-side node with its own executor thread: publish inputs, record outputs."""
    from rosgraph import Probe

    node = Probe()
    yield node
    node.close()
