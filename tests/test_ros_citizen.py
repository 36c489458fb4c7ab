"""pamiq as ROS 2 tools see it: QoS they can read, topics that exist when a tool looks, respawn
that stops with the graph, named log files, launch arguments, the documented topic table, and
DDS settings that travel with the graph."""

from __future__ import annotations

import glob
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import time

from conftest import REPO
from diagnostic_msgs.msg import DiagnosticArray
from pamiq.ros import qos, topics
from pamiq.ros.spin import with_log_file_name
from pamiq.tools.graph import LAUNCH_ARGUMENTS, NodeSpec, respawns
from pamiq.vocabulary import round_metrics
import pytest
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph import (
    FAST_TRAINER,
    NAMESPACE,
    NodeProcess,
    OscRecorder,
    diagnostic_value,
    free_udp_port,
    statuses,
    versions_acted,
    wait_until,
    without_dds_settings,
)
from sensor_msgs.msg import Image, JointState
from test_bringup import fast_curiosity_graph, fast_params, random_vrchat_graph
from videos import write_video

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def test_a_reliable_subscriber_gets_frames_from_the_camera_and_the_world(probe, tmp_path):
    probe.record(Image, topics.IMAGE, RELIABLE)  # as rqt_image_view and `ros2 topic hz`
    video = write_video(str(tmp_path / 'clip.avi'), frames=10)
    for executable, name, parameters in (
        ('camera_node', 'camera', {'camera': video}),
        ('doom_world_node', 'world', {'osc_port': free_udp_port()}),
    ):
        node = NodeProcess(executable, name, parameters)
        try:
            assert wait_until(lambda: len(probe.messages(topics.IMAGE)) >= 10, 30.0), node.output()
            assert 'incompatible QoS' not in node.output()
        finally:
            assert node.stop() == 0, node.output()
        probe.clear(topics.IMAGE)


def test_the_trainer_offers_every_metric_topic_before_its_first_round(probe, tmp_path):
    trainer = NodeProcess('trainer_node', 'trainer', {**FAST_TRAINER, 'run_dir': str(tmp_path)})
    try:
        assert wait_until(lambda: 'training inverse_dynamics' in trainer.output(), 60.0), (
            trainer.output()
        )
        expected = [
            f'/{NAMESPACE}/{topics.trainer_metric(n)}' for n in round_metrics('inverse_dynamics')
        ]

        def offered() -> list[str]:
            return [t for t in expected if probe.get_publishers_info_by_topic(t)]

        assert wait_until(lambda: offered() == expected, 15.0), sorted(
            set(expected) - set(offered())
        )
        assert 'round 1 in' not in trainer.output()  # no data came: nothing was trained yet
    finally:
        trainer.stop()


def test_respawn_happens_only_after_an_abnormal_exit():
    spec = NodeSpec('trainer_node', 'trainer', respawn=True)
    assert respawns(spec, -signal.SIGKILL) and respawns(spec, 1) and respawns(spec, -11)
    assert not respawns(spec, 0)  # Ctrl-C or SIGTERM reached it: it was asked to stop
    assert not respawns(NodeSpec('agent_node', 'agent'), -signal.SIGKILL)


def test_a_trainer_stopped_cleanly_is_not_respawned_and_the_graph_stops(tmp_path):
    up = fast_curiosity_graph(tmp_path)
    try:
        assert wait_until(lambda: 'started trainer (pid' in up.output(), 30.0), up.output()
        assert wait_until(lambda: 'training inverse_dynamics' in up.output(), 60.0), up.output()
        pid = int(up.output().split('started trainer (pid ')[1].split(')')[0])
        os.kill(pid, signal.SIGINT)  # reaches the trainer, not the supervisor
        assert up.process.wait(60) == 0, up.output()
    finally:
        up.stop()
    out = up.output()
    assert 'trainer stopped (exit code 0); stopping the graph' in out
    assert 'respawning' not in out
    assert 'graph stopped' in out


def test_node_logs_are_named_after_the_executable():
    assert with_log_file_name(['x'], 'agent_node') == [
        'x', '--ros-args', '--log-file-name', 'agent_node'
    ]  # fmt: skip
    given = ['x', '--ros-args', '--log-file-name', 'mine']
    assert with_log_file_name(given, 'agent_node') == given
    port = free_udp_port()
    actuator = NodeProcess('osc_actuator_node', 'osc_actuator', {'osc_port': port})
    try:
        assert wait_until(lambda: 'sending VRChat OSC input' in actuator.output(), 30.0)
    finally:
        actuator.stop()
    pid = actuator.process.pid
    logs = glob.glob(os.path.join(os.environ['ROS_LOG_DIR'], f'osc_actuator_node_{pid}_*.log'))
    assert logs, os.listdir(os.environ['ROS_LOG_DIR'])
    with open(logs[0]) as stream:
        assert 'sending VRChat OSC input' in stream.read()
    assert not glob.glob(os.path.join(os.environ['ROS_LOG_DIR'], f'python3_{pid}_*.log'))


def test_launch_argument_descriptions_do_not_restate_a_default():
    # `ros2 launch ... --show-args` prints the default itself: a second one in the text would
    # contradict it.
    for name, (_, description) in LAUNCH_ARGUMENTS.items():
        assert description and 'default' not in description.lower(), name


def documented_topics() -> set[str]:
    """The topic names of the topic reference's table (backticked, outside parentheses)."""
    with open(os.path.join(REPO, 'docs', 'reference', 'topics.md')) as stream:
        text = stream.read()
    section = text.split('## Topics', 1)[1].split('| service |', 1)[0]
    names = set()
    for row in section.splitlines():
        if row.startswith('| `'):
            first_cell = re.sub(r'\([^)]*\)', '', row.split('|')[1])
            names.update(re.findall(r'`([a-z_/]+)`', first_cell))
    return names


def test_the_topic_reference_lists_what_the_running_graph_publishes(probe, tmp_path):
    # Every sense on, so every topic exists; the trainer's first round pairs them all live.
    up = fast_curiosity_graph(
        tmp_path, 'record:=true', 'senses:=vision,hearing,body', f'body_port:={free_udp_port()}'
    )
    try:
        probe.record(JointState, topics.STEP, qos.STEP)
        assert wait_until(lambda: max(versions_acted(probe), default=0) >= 1, 120.0), up.output()

        def published() -> set[str]:
            prefix = f'/{NAMESPACE}/'
            return {
                name.removeprefix(prefix)
                for name, _ in probe.get_topic_names_and_types()
                if name.startswith(prefix) and probe.get_publishers_info_by_topic(name)
            }

        documented = documented_topics() - {topics.CMD_VEL}  # teleop's, not the graph's
        assert wait_until(lambda: published() == documented, 20.0), (
            f'published, not in docs/reference/topics.md: {sorted(published() - documented)}; '
            f'in docs/reference/topics.md, not published: {sorted(documented - published())}'
        )
    finally:
        assert up.stop(60.0) == 0, up.output()


def test_frames_lost_in_transit_show_in_the_agent_diagnostics(probe, tmp_path):
    # Camera and agent as a user's shell starts them, without the project's DDS profile:
    # 1280x720 frames go out as UDP fragments and many never arrive.
    video = write_video(str(tmp_path / 'screen.avi'), frames=20, width=1280, height=720)
    env = without_dds_settings(keep_localhost=True)
    camera = NodeProcess('camera_node', 'camera', {'camera': video}, env=env)
    agent = NodeProcess('agent_node', 'agent', {'policy': 'random'}, env=env)
    probe.record(DiagnosticArray, topics.DIAGNOSTICS, 10)
    try:
        key = 'frames lost in transit'

        def lost() -> int:
            value = diagnostic_value(probe, f'{NAMESPACE}/agent', key)
            return int(value) if value is not None else 0

        assert wait_until(lambda: lost() > 5, 40.0), agent.output()
        assert wait_until(
            lambda: any(
                'lost in transit' in s.message for s in statuses(probe, f'{NAMESPACE}/agent')
            ),
            15.0,
        ), [s.message for s in statuses(probe, f'{NAMESPACE}/agent')][-3:]
    finally:
        agent.stop()
        camera.stop()


def acting_rate(osc: OscRecorder, seconds: float) -> float:
    osc.take()
    time.sleep(seconds)
    times = [t for t, address, _ in osc.snapshot() if address == '/input/Vertical']
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0


def test_pamiq_up_brings_its_dds_settings_for_large_frames(tmp_path):
    up, osc = random_vrchat_graph(tmp_path, 1280, 720, env=without_dds_settings())
    try:
        assert wait_until(lambda: len(osc.snapshot()) >= 30, 40.0), up.output()
        rate = acting_rate(osc, 6.0)
        assert rate >= 9.5, (rate, up.output()[-3000:])
        # one host, a user's shell: private acting, its shared memory carries the large frames
        assert 'DDS transport: acting on private domain' in up.output(), up.output()[:2000]
    finally:
        code = up.stop()
        osc.close()
    assert code == 0, up.output()


def launch_tools() -> bool:
    return shutil.which('ros2') is not None and all(
        importlib.util.find_spec(n) for n in ('launch', 'launch_ros', 'ros2launch')
    )


@pytest.mark.skipif(
    not launch_tools(), reason='ros2 launch has no PyPI wheel: needs a ROS 2 install'
)
def test_ros2_launch_shows_one_default_per_argument_and_brings_its_dds_settings(tmp_path):
    result = subprocess.run(
        ['ros2', 'launch', 'pamiq', 'bringup.launch.py', '--show-args'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for name in LAUNCH_ARGUMENTS:
        block = result.stdout.split(f"'{name}':", 1)[1].split('\n\n', 1)[0]
        assert block.count('default') == 1, block
    video = write_video(str(tmp_path / 'screen.avi'), frames=30, width=1280, height=720)
    osc = OscRecorder()
    env = without_dds_settings()
    launch = subprocess.Popen(
        ['ros2', 'launch', 'pamiq', 'bringup.launch.py', 'world:=vrchat', 'agent:=random',
         f'camera:={video}', f'osc_port:={osc.port}', f'run_dir:={tmp_path / "run"}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        assert wait_until(lambda: len(osc.snapshot()) >= 30, 60.0)
        assert acting_rate(osc, 6.0) >= 9.5
    finally:
        os.killpg(launch.pid, signal.SIGINT)
        launch.wait(30)
        osc.close()


@pytest.mark.skipif(
    not launch_tools(), reason='ros2 launch has no PyPI wheel: needs a ROS 2 install'
)
def test_ros2_launch_respawns_a_killed_trainer_but_not_a_stopped_one(tmp_path):
    launch = subprocess.Popen(
        ['ros2', 'launch', 'pamiq', 'bringup.launch.py', f'osc_port:={free_udp_port()}',
         f'run_dir:={tmp_path / "run"}', f'params_file:={fast_params(tmp_path)}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip

    def trainer_pids() -> list[int]:
        out = subprocess.run(
            ['pgrep', '-f', 'pamiq.executables trainer_node'], capture_output=True, text=True
        )
        return [int(p) for p in out.stdout.split() if int(p) != launch.pid]

    try:
        assert wait_until(lambda: len(trainer_pids()) == 1, 60.0)
        first = trainer_pids()[0]
        time.sleep(5.0)
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: trainer_pids() and trainer_pids()[0] != first, 30.0)
        time.sleep(5.0)
        # A stop signal reaching every node but not launch: launch must end, no lone trainer.
        for name in ('trainer_node', 'agent_node', 'osc_actuator_node', 'doom_world_node'):
            subprocess.run(['pkill', '-INT', '-f', f'pamiq.executables {name}'])
        launch.wait(60)
        assert not trainer_pids()
    finally:
        if launch.poll() is None:
            os.killpg(launch.pid, signal.SIGINT)
            launch.wait(30)
