"""Test isolation for a ROS 2 graph on a shared machine.

Each pytest process claims its own ROS_DOMAIN_ID (held by a bound loopback port, the idea of
ros2's domain_coordinator) and keeps DDS on loopback + shared memory, before rclpy is imported
anywhere, so parallel test runs never see each other's topics.
"""

from __future__ import annotations

import os

import pytest
from rosenv import isolate_ros_environment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
isolate_ros_environment(REPO)


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
