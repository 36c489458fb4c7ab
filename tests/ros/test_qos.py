"""Publishers without rclpy's default event handlers: each would be a waitable the executor
polls at every wake-up (pamiq.ros.qos.PUBLISHER_EVENTS)."""

from __future__ import annotations

import ast
import glob
import os

from conftest import REPO
from pamiq.ros import qos
from pamiq.ros.diagnostics import Diagnostics
import rclpy
from std_msgs.msg import Float32

PACKAGE = os.path.join(REPO, 'ros2_ws', 'src', 'pamiq', 'pamiq')


def test_a_publisher_made_with_them_adds_nothing_for_the_executor_to_poll():
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node('qos_probe', context=context)
        before = len(list(node.waitables))
        qos.publisher(node, Float32, 'quiet', 10)
        Diagnostics(node, 'probe')
        assert len(list(node.waitables)) == before
        node.create_publisher(Float32, 'loud', 10)  # rclpy's defaults: QoS and type handlers
        assert len(list(node.waitables)) > before
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_every_publisher_of_the_package_is_made_by_qos_publisher():
    direct = []
    for path in glob.glob(os.path.join(PACKAGE, '**', '*.py'), recursive=True):
        if path.endswith(os.path.join('ros', 'qos.py')):
            continue
        with open(path) as source:
            tree = ast.parse(source.read())
        for call in ast.walk(tree):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == 'create_publisher'
            ):
                direct.append(f'{os.path.relpath(path, PACKAGE)}:{call.lineno}')
    assert not direct, direct
