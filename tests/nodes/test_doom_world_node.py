"""doom_world_node as a real process: VRChat OSC input in, frames and ground-truth pose out."""

from __future__ import annotations

import glob
import itertools
import math
import os
import signal
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from pamiq.doom.game import (
    ENGINE_FILES,
    SHM_DIR,
    WALK_FORWARD,
    doom_command,
    engine_instance,
    make_game,
)
from pamiq.doom.process_usage import children_named
from pamiq.ros import qos
from pamiq.vrchat.osc import frame_marker
from pythonosc.udp_client import SimpleUDPClient
from rosgraph import NAMESPACE, NodeProcess, diagnostic_value, free_udp_port, wait_until
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger


def test_doom_command_holds_vrchat_semantics():
    assert doom_command({}, 3.0) == [0.0, 0.0, 0.0, 0.0, 0.0]
    forward, right, turn, jump, use = doom_command(
        {'Vertical': 0.5, 'LookHorizontal': -1.0, 'Jump': 1, 'UseRight': 1}, 3.0
    )
    assert (forward, right, turn, jump, use) == (0.5 * WALK_FORWARD, 0.0, -3.0, 1.0, 1.0)
    # Buttons and axes add up and saturate; Run doubles the speed.
    assert doom_command({'Vertical': 1.0, 'MoveForward': 1, 'Run': 1}, 3.0)[0] == 2 * WALK_FORWARD
    assert doom_command({'MoveBackward': 1}, 3.0)[0] == -WALK_FORWARD


def pose_xy(msg: PoseStamped) -> tuple[float, float]:
    return msg.pose.position.x, msg.pose.position.y


def test_move_forward_held_for_a_second_changes_the_pose(probe):
    port = free_udp_port()
    world = NodeProcess('doom_world_node', 'world', {'osc_port': port, 'resolution': '160x120'})
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        probe.record(PoseStamped, 'world/pose', qos.DEFAULT)
        assert wait_until(lambda: len(probe.messages('world/pose')) >= 5, 20.0), world.output()

        frames = probe.messages('camera/image_raw')
        assert frames[-1].encoding == 'rgb8'
        assert (frames[-1].width, frames[-1].height) == (160, 120)
        times = probe.arrivals('camera/image_raw')[-5:]
        assert 0.05 < (times[-1] - times[0]) / 4 < 0.2  # ~10 Hz

        # Standing still: the pose holds.
        time.sleep(0.5)
        start = pose_xy(probe.messages('world/pose')[-1])
        osc = SimpleUDPClient('127.0.0.1', port)
        osc.send_message('/input/MoveForward', 1)
        time.sleep(1.0)
        osc.send_message('/input/MoveForward', 0)
        time.sleep(0.5)
        end = pose_xy(probe.messages('world/pose')[-1])
        moved = math.dist(start, end)
        assert moved > 50.0, f'moved only {moved:.1f} map units'

        # Turning changes the yaw and not the position.
        before = probe.messages('world/pose')[-1].pose.orientation
        osc.send_message('/input/LookHorizontal', 1.0)
        time.sleep(0.5)
        osc.send_message('/input/LookHorizontal', 0.0)
        time.sleep(0.3)
        after = probe.messages('world/pose')[-1].pose.orientation
        yaw = lambda q: math.degrees(2 * math.atan2(q.z, q.w))
        turned = (yaw(before) - yaw(after)) % 360  # turning right lowers Doom's angle
        assert 30 < turned < 120, turned

        # world/reset starts a new episode.
        client = probe.create_client(Trigger, 'world/reset')
        assert client.wait_for_service(timeout_sec=10.0)
        future = client.call_async(Trigger.Request())
        assert wait_until(future.done, 10.0)
        assert future.result().success
        assert 'episode 1 started' in future.result().message

        # In real time no /clock: advertised, it would suggest simulated time to `ros2 topic
        # list`. (Its other endpoints were discovered seconds ago, in the same announcement.)
        assert probe.count_publishers('/pamiq/world/pose') == 1
        assert probe.count_publishers('/clock') == 0
    finally:
        assert world.stop() == 0, world.output()


def test_port_in_use_is_a_clear_error():
    port = free_udp_port()
    first = NodeProcess('doom_world_node', 'world', {'osc_port': port, 'resolution': '160x120'})
    try:
        assert wait_until(lambda: 'OSC input on' in first.output(), 20.0), first.output()
        second = NodeProcess('doom_world_node', 'world2', {'osc_port': port})
        assert second.process.wait(20) == 1
        assert f'cannot listen on 127.0.0.1:{port}' in second.output()
    finally:
        first.stop()


def engine_pids(parent: int) -> list[int]:
    """The ViZDoom engine processes a world process started (its children)."""
    return children_named(parent, b'vizdoom')


def running(pid: int) -> bool:
    """Whether `pid` is a live process (an orphan's zombie waiting for init does not count)."""
    try:
        with open(f'/proc/{pid}/stat') as stream:
            return stream.read().rsplit(')', 1)[1].split()[0] not in 'ZX'
    except OSError:
        return False


def engine_files(engine: int) -> list[str]:
    """The /dev/shm files ViZDoom made for the engine `engine` (named after its instance)."""
    return sorted(glob.glob(os.path.join(SHM_DIR, f'ViZDoom*{engine_instance(engine)}')))


def test_a_world_killed_outright_takes_its_engine_and_its_files_with_it(probe):
    """SIGKILL gives the world no chance to close its game. Its engine (a process ViZDoom
    forks) holds none of the world's descriptors (its DDS sockets and shared-memory locks), and it
    neither idles on as an orphan nor leaves its files."""
    world = NodeProcess(
        'doom_world_node', 'world', {'osc_port': free_udp_port(), 'resolution': '160x120'}
    )
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        probe.record(DiagnosticArray, '/diagnostics', 100)
        assert wait_until(lambda: probe.messages('camera/image_raw'), 20.0), world.output()
        # (The world tells whether anything takes its frames: here the probe does.)
        assert wait_until(lambda: world_value(probe, 'frame subscribers') == '1', 10.0)
        [engine] = engine_pids(world.process.pid)
        held = [  # its standard streams are the world's own, as they should be
            os.readlink(f'/proc/{engine}/fd/{fd}')
            for fd in os.listdir(f'/proc/{engine}/fd')
            if int(fd) > 2
        ]
        world_holds = {
            os.readlink(f'/proc/{world.process.pid}/fd/{fd}')
            for fd in os.listdir(f'/proc/{world.process.pid}/fd')
        }
        inherited = [h for h in held if h.startswith('socket:') and h in world_holds]
        assert not inherited and not [h for h in held if 'fastrtps' in h], held
        files = engine_files(engine)
        assert len(files) == len(ENGINE_FILES), files
        world.process.kill()
        world.process.wait()
        assert wait_until(lambda: not running(engine), 5.0), 'the engine outlived its world'
        assert wait_until(lambda: not any(map(os.path.exists, files)), 5.0), files
    finally:
        world.stop()


def test_a_closed_game_leaves_neither_engine_nor_guard(tmp_path):
    game = make_game('my_way_home', '160x120', 0, str(tmp_path))
    [engine] = engine_pids(os.getpid())
    guard = game.guard.process
    game.close()
    assert guard.poll() is not None
    assert wait_until(lambda: not running(engine), 5.0)
    assert not engine_pids(os.getpid())


def test_a_lockstep_world_whose_engine_dies_exits_with_an_error_not_frozen(probe):
    port = free_udp_port()
    world = NodeProcess('doom_world_node', 'world', {'osc_port': port, 'real_time_factor': 0.0})
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        assert wait_until(lambda: probe.messages('camera/image_raw'), 20.0), world.output()
        [engine] = engine_pids(world.process.pid)
        os.kill(engine, signal.SIGKILL)
        # The first frame's answer, as the actuator sends it: the world steps, the engine is gone.
        stamp = probe.messages('camera/image_raw')[0].header.stamp
        SimpleUDPClient('127.0.0.1', port).send_message(
            *frame_marker(stamp.sec * 1_000_000_000 + stamp.nanosec)
        )
        assert world.process.wait(20.0) == 1, world.output()
        assert 'lockstep failed, the world stops' in world.output()
    finally:
        world.stop()


def test_a_tick_held_up_by_the_engine_is_reported_with_where_its_time_went(probe):
    world = NodeProcess(
        'doom_world_node', 'world', {'osc_port': free_udp_port(), 'resolution': '160x120'}
    )
    try:
        probe.record(DiagnosticArray, '/diagnostics', 100)
        assert wait_until(lambda: 'OSC input on' in world.output(), 20.0), world.output()
        assert wait_until(lambda: world_value(probe, 'slow ticks (> 50 ms)') == '0', 10.0)
        # The engine process stands still for 0.3 s, as when the machine does not run it: the
        # tick that needs it waits.
        [engine] = engine_pids(world.process.pid)
        os.kill(engine, signal.SIGSTOP)
        time.sleep(0.3)
        os.kill(engine, signal.SIGCONT)
        assert wait_until(lambda: 'a tick took' in world.output(), 5.0), world.output()
        report = world.output().split('a tick took ')[1].splitlines()[0]
        took, engine_ms = (int(part.split(' ms')[0]) for part in report.split(': the engine '))
        assert took >= 150 and engine_ms >= 150, report
        assert wait_until(lambda: int(world_value(probe, 'slow ticks (> 50 ms)') or 0) >= 1, 5.0)
    finally:
        world.stop()


def test_while_an_episode_starts_slowly_the_world_shows_its_last_frame_at_its_rate(probe):
    world = NodeProcess(
        'doom_world_node', 'world', {'osc_port': free_udp_port(), 'resolution': '160x120'}
    )
    try:
        probe.record(Image, 'camera/image_raw', qos.IMAGE)
        probe.record(DiagnosticArray, '/diagnostics', 100)
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= 5, 20.0)
        client = probe.create_client(Trigger, 'world/reset')
        assert client.wait_for_service(timeout_sec=10.0)
        # The engine stands still, as it has for up to 0.8 s in a busy graph; an episode
        # start then waits for it. It stops just after a tick has shown its frame, so that the
        # request reaches the world long before the next tick would need the engine (a tick
        # that does waits for it, and the world with it: the test above).
        [engine] = engine_pids(world.process.pid)
        shown = len(probe.messages('camera/image_raw'))
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) > shown, 5.0, 0.001)
        os.kill(engine, signal.SIGSTOP)
        try:
            future = client.call_async(Trigger.Request())
            assert wait_until(future.done, 5.0), world.output()
            assert future.result().message == 'episode 1 starting'
            seen = len(probe.messages('camera/image_raw'))
            time.sleep(1.5)
            while_starting = probe.messages('camera/image_raw')[seen:]
            arrivals = probe.arrivals('camera/image_raw')[seen:]
        finally:
            os.kill(engine, signal.SIGCONT)
        assert len(while_starting) >= 12, len(while_starting)  # 10 Hz through it
        assert max(b - a for a, b in itertools.pairwise(arrivals)) < 0.2
        assert all(frame.data == while_starting[0].data for frame in while_starting)
        stamps = [(f.header.stamp.sec, f.header.stamp.nanosec) for f in while_starting]
        assert all(b > a for a, b in itertools.pairwise(stamps))  # time goes on
        assert wait_until(lambda: 'reset requested: episode 1 started' in world.output(), 5.0)
        assert 'to start an episode (it used' in world.output()
        assert wait_until(
            lambda: int(world_value(probe, 'frames shown while an episode starts') or 0) >= 12,
            5.0,
        )
        assert wait_until(lambda: world_value(probe, 'slow episode starts (> 50 ms)') == '1', 5.0)
        assert world_value(probe, 'slow ticks (> 50 ms)') == '0'
        # Then the new episode plays.
        count = len(probe.messages('camera/image_raw'))
        assert wait_until(lambda: len(probe.messages('camera/image_raw')) >= count + 5, 5.0)
        assert probe.messages('camera/image_raw')[-1].data != while_starting[0].data
    finally:
        assert world.stop() == 0, world.output()


def world_value(probe, key: str) -> str | None:
    return diagnostic_value(probe, f'{NAMESPACE}/world', key)
