"""`PAMIQ_PRIVATE_ACTING=1` (experimental, issue 24): each node acts on a private DDS domain with
shared memory, and a UDP-only public face of it stands on ROS_DOMAIN_ID. A ROS tool started
with Fast DDS's defaults sees the world's frames, the agent's actions (so the graph acts) and the
agent's parameters."""

from __future__ import annotations

import subprocess
import sys

from rosgraph import free_udp_port, without_dds_settings
from test_bringup import PamiqUp

# A tool as a user starts one from another terminal: Fast DDS's defaults, no profile.
TOOL = """
import time, rclpy
from rcl_interfaces.srv import ListParameters
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
rclpy.init()
node = rclpy.create_node('tool')
frames, actions = [], []
node.create_subscription(Image, '/pamiq/camera/image_raw', frames.append, qos_profile_sensor_data)
node.create_subscription(JointState, '/pamiq/action', actions.append, qos_profile_sensor_data)
client = node.create_client(ListParameters, '/pamiq/agent/list_parameters')
names = []
if client.wait_for_service(timeout_sec=20.0):
    future = client.call_async(ListParameters.Request())
    rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
    if future.result() is not None:
        names = list(future.result().result.names)
end = time.monotonic() + 20.0
while min(len(frames), len(actions)) < 20 and time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
print(len(frames), len(actions), ' '.join(names), flush=True)
"""


def test_private_acting_acts_and_tools_see_the_public_face(tmp_path):
    env = {**without_dds_settings(), 'PAMIQ_PRIVATE_ACTING': '1'}
    up = PamiqUp(
        'world:=doom',
        'agent:=random',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        env=env,
    )
    try:
        tool = subprocess.run(
            [sys.executable, '-c', TOOL],
            env=without_dds_settings(),
            capture_output=True,
            text=True,
            timeout=90,
        )
        words = tool.stdout.split()
        assert len(words) >= 2, (tool.stdout, tool.stderr[-2000:], up.output()[-3000:])
        frames, actions = int(words[0]), int(words[1])
        assert frames >= 20 and actions >= 20, (tool.stdout, up.output()[-3000:])
        assert 'expected_rate' in words[2:], tool.stdout
    finally:
        code = up.stop()
    assert code == 0, up.output()
