"""Private acting, `pamiq up`'s default on one host (issue 24): each node acts on a private
DDS domain with shared memory, and a UDP-only public face of it stands on ROS_DOMAIN_ID. A ROS
tool started with Fast DDS's defaults sees the world's frames, the agent's actions (so the graph
acts) and the agent's parameters, and its parameter sets, service calls and teleop on `cmd_vel`
reach the acting nodes; ten tools joining and leaving make no world publish and no agent step
take over 50 ms. A second graph on this one's acting domain is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticArray
from rosgraph import NAMESPACE, diagnostic_value, free_udp_port, wait_until, without_dds_settings
from test_bringup import PamiqUp

# A tool as a user starts one from another terminal: Fast DDS's defaults, no profile.
TOOL = """
import math, time, rclpy
from geometry_msgs.msg import PoseStamped, Twist
from rcl_interfaces.srv import ListParameters, SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool
rclpy.init()
node = rclpy.create_node('tool')
frames, actions, poses = [], [], []
node.create_subscription(Image, '/pamiq/camera/image_raw', frames.append, qos_profile_sensor_data)
node.create_subscription(PoseStamped, '/pamiq/world/pose', poses.append, 10)
node.create_subscription(JointState, '/pamiq/action', actions.append, qos_profile_sensor_data)


def call(service_type, name, request):
    client = node.create_client(service_type, name)
    if not client.wait_for_service(timeout_sec=20.0):
        return None
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=15.0)
    return future.result()


def spin_for(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)


# made now so that it has found the actuator long before it is used
teleop = node.create_publisher(Twist, '/pamiq/cmd_vel', 10)
listed = call(ListParameters, '/pamiq/agent/list_parameters', ListParameters.Request())
end = time.monotonic() + 20.0
while min(len(frames), len(actions)) < 20 and time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
sets = call(SetParameters, '/pamiq/agent/set_parameters', SetParameters.Request(parameters=[
    Parameter('expected_rate', value=8.0).to_parameter_msg(),
    Parameter('seed', value=5).to_parameter_msg(),
]))
paused = call(SetBool, '/pamiq/agent/set_active', SetBool.Request(data=False))
spin_for(1.0)  # what was on the way arrives
before = len(actions)
paused_from = len(poses)
spin_for(3.0)


def turned(since):
    # degrees turned in all, pose by pose: turning in place is never stopped by a wall
    yaws = [math.degrees(2 * math.atan2(p.pose.orientation.z, p.pose.orientation.w))
            for p in poses[max(since - 1, 0):]]
    return sum(abs((b - a + 180.0) % 360.0 - 180.0) for a, b in zip(yaws, yaws[1:]))


still = turned(paused_from)
# Teleop while the agent is paused: turn at 10 Hz (the actuator's watchdog wants it fresh).
teleop_from = len(poses)
for _ in range(30):
    message = Twist()
    message.angular.z = 1.0
    teleop.publish(message)
    spin_for(0.1)
spin_for(0.3)  # the last turns' poses arrive
print('paused_turned', round(still, 1))
print('teleop_turned', round(turned(teleop_from), 1))
print('frames', len(frames))
print('actions', before)
print('actions_while_paused', len(actions) - before)
print('parameters', ' '.join(listed.result.names) if listed else '')
print('set', ' '.join(str(r.successful) for r in sets.results) if sets else '')
print('paused', paused.success if paused else '')
"""


# A ROS tool that joins and leaves (issue 24): Fast DDS's defaults, a look at the frames and the
# agent's parameter list, about 2 s of life.
JOINER = """
import time, rclpy
from rcl_interfaces.srv import ListParameters
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
rclpy.init()
node = rclpy.create_node('joiner')
node.create_subscription(Image, '/pamiq/camera/image_raw', lambda m: None, qos_profile_sensor_data)
client = node.create_client(ListParameters, '/pamiq/agent/list_parameters')
if client.wait_for_service(timeout_sec=5.0):
    future = client.call_async(ListParameters.Request())
    rclpy.spin_until_future_complete(node, future, timeout_sec=5.0)
end = time.monotonic() + 1.0
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.05)
"""
JOINERS = 10
SLOW_PUBLISHES = 'slow publishes (> 50 ms)'
SLOW_STEPS = 'slow steps (> 50 ms)'


def counters(probe) -> tuple[str | None, str | None]:
    return (
        diagnostic_value(probe, f'{NAMESPACE}/world', SLOW_PUBLISHES),
        diagnostic_value(probe, f'{NAMESPACE}/agent', SLOW_STEPS),
    )


def test_private_acting_acts_and_tools_see_the_public_face(probe, tmp_path):
    probe.record(DiagnosticArray, '/diagnostics', 100)
    env = without_dds_settings()  # as a user's shell: pamiq up's own default
    up = PamiqUp(
        'world:=doom',
        'agent:=random',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        env=env,
    )
    try:
        tool_env = without_dds_settings()
        tool = subprocess.run(
            [sys.executable, '-c', TOOL],
            env=tool_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        said = dict(line.split(' ', 1) for line in tool.stdout.splitlines() if ' ' in line)
        assert said.keys() >= {'frames', 'actions', 'set', 'paused'}, (
            tool.stdout,
            tool.stderr[-2000:],
            up.output()[-3000:],
        )
        assert int(said['frames']) >= 20 and int(said['actions']) >= 20, tool.stdout
        assert 'expected_rate' in said['parameters'].split(), tool.stdout
        # a dynamic parameter is taken; `seed`, read-only on the acting node only, is refused
        # there: the set went through to it
        assert said['set'] == 'True False', tool.stdout
        # set_active reached the acting agent: it stopped acting
        assert said['paused'] == 'True' and int(said['actions_while_paused']) == 0, tool.stdout
        # the tool's cmd_vel reached the acting actuator through the public side: the paused
        # avatar turned (degrees in 3 s of teleop at 120 deg/s, against 3 s standing)
        teleop, still = float(said['teleop_turned']), float(said['paused_turned'])
        assert teleop > 90.0 and teleop > 4 * still, tool.stdout

        # Ten tools join and leave, one every 0.5 s: the world's publishing and the agent's
        # steps never wait for them (each node counts its publishes and steps over 50 ms).
        probe.clear('/diagnostics')
        assert wait_until(lambda: None not in counters(probe), 10.0), probe.messages(
            '/diagnostics'
        )
        before = counters(probe)
        joiners = []
        for _ in range(JOINERS):
            joiners.append(subprocess.Popen([sys.executable, '-c', JOINER], env=tool_env))
            time.sleep(0.5)
        for joiner in joiners:
            assert joiner.wait(30) == 0
        probe.clear('/diagnostics')
        assert wait_until(lambda: None not in counters(probe), 10.0)
        assert counters(probe) == before, (before, counters(probe), up.output()[-3000:])

        # pamiq up says how it acts; a graph on this one's acting domain is refused
        acting = int(os.environ['ROS_DOMAIN_ID']) + 100
        assert f'acting on private domain {acting}' in up.output(), up.output()[:2000]
        clash = subprocess.run(
            [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', 'world:=doom'],
            env={**env, 'ROS_DOMAIN_ID': str(acting)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert clash.returncode == 2, clash.stdout + clash.stderr
        assert f'domain {acting} is the acting domain of another pamiq graph' in clash.stderr
    finally:
        code = up.stop()
    assert code == 0, up.output()
