"""Keep a test or benchmark process's ROS 2 traffic private: own domain, loopback-only DDS.

Call before rclpy.init() (here and in every child process, which inherit the environment).
"""

from __future__ import annotations

import os
import random
import socket
import tempfile

_domain_lock: socket.socket | None = None


def claim_domain_id() -> int:
    """A ROS_DOMAIN_ID in 1..100 no other process of ours holds (a bound loopback port is the
    lock, the idea of ros2's domain_coordinator); held until this process exits."""
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


def isolate_ros_environment(repo: str) -> None:
    os.environ['ROS_DOMAIN_ID'] = str(claim_domain_id())
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    # Fast DDS 2.x (Jazzy) reads FASTRTPS_..., 3.x (Kilted and later) FASTDDS_...: set both.
    profile = os.path.join(repo, 'config', 'fastdds_loopback.xml')
    os.environ['FASTRTPS_DEFAULT_PROFILES_FILE'] = profile
    os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] = profile
    os.environ['RMW_IMPLEMENTATION'] = 'rmw_fastrtps_cpp'
    os.environ['ROS_LOG_DIR'] = tempfile.mkdtemp(prefix='pamiq-roslog-')
    os.environ['PYTHONUNBUFFERED'] = '1'
