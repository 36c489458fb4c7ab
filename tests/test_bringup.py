"""The whole graph from `pamiq up` (its own supervisor: no launch tools in CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from geometry_msgs.msg import PoseStamped
import numpy as np
from pamiq.ros import qos
from pamiq.tools.graph import default_params_file
from pamiq.vrchat import controller
from rosgraph import OscRecorder, free_udp_port, wait_until
from sensor_msgs.msg import JointState
from videos import write_video
import yaml


class PamiqUp:
    def __init__(self, *launch_args: str, env: dict[str, str] | None = None) -> None:
        command = [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', *launch_args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        self.lines: list[str] = []
        threading.Thread(target=self.read, daemon=True).start()

    def read(self) -> None:
        for raw in self.process.stdout:
            self.lines.append(raw.decode('utf-8', 'replace'))

    def output(self) -> str:
        return ''.join(self.lines)

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


def pamiq_cli(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run a `pamiq` command (ctl, report, ...) as a user would, output captured."""
    return subprocess.run(
        [sys.executable, '-m', 'pamiq.tools.cli', *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def random_vrchat_graph(
    tmp_path, width: int, height: int, env: dict[str, str] | None = None
) -> tuple[PamiqUp, OscRecorder]:
    """`pamiq up world:=vrchat agent:=random` on a generated video, sending OSC to a recorder."""
    video = write_video(str(tmp_path / 'screen.avi'), frames=30, width=width, height=height)
    osc = OscRecorder()
    up = PamiqUp(
        'world:=vrchat',
        'agent:=random',
        f'camera:={video}',
        f'osc_port:={osc.port}',
        f'run_dir:={tmp_path / "run"}',
        env=env,
    )
    return up, osc


def test_doom_graph_acts_at_10hz_moves_the_avatar_and_stops_cleanly(probe, tmp_path):
    port = free_udp_port()
    up = PamiqUp('world:=doom', 'agent:=random', f'osc_port:={port}', f'run_dir:={tmp_path}')
    try:
        probe.record(JointState, 'action', qos.ACTION)
        probe.record(PoseStamped, 'world/pose', qos.DEFAULT)
        assert wait_until(lambda: len(probe.messages('action')) >= 10, 40.0), up.output()
        probe.clear('action')
        probe.clear('world/pose')
        time.sleep(5.0)
        arrivals = probe.arrivals('action')
        rate = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
        assert rate >= 9.0, f'actions at {rate:.2f} Hz'
        assert np.median(np.diff(arrivals)) < 0.12
        # The random avatar wanders: its path over 5 s is far longer than zero.
        xy = np.array(
            [(p.pose.position.x, p.pose.position.y) for p in probe.messages('world/pose')]
        )
        path = float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum())
        assert path > 20.0, f'the avatar moved only {path:.1f} map units in 5 s'
    finally:
        code = up.stop()
    out = up.output()
    assert code == 0, out
    assert 'sent VRChat reset values' in out
    assert 'graph stopped' in out
    for name in ('world', 'osc_actuator', 'agent'):
        assert os.path.getsize(tmp_path / 'logs' / f'{name}.log') > 0


def test_vrchat_mode_sends_axes_at_10hz_and_resets_on_ctrl_c(tmp_path):
    video = write_video(str(tmp_path / 'screen.avi'), frames=30, width=640, height=360)
    osc = OscRecorder()
    up = PamiqUp(
        'world:=vrchat',
        f'camera:={video}',
        f'osc_port:={osc.port}',
        f'run_dir:={tmp_path / "run"}',
    )
    try:
        assert wait_until(lambda: len(osc.snapshot()) >= 30, 40.0), up.output()
        # In steady state, once the trainer's first weights are in use: while the trainer starts
        # the agent can pause past the actuator's 0.5 s timeout (then neutral is right).
        assert wait_until(lambda: 'weights version 0 in use' in up.output(), 60.0), up.output()
        time.sleep(2.0)
        osc.take()
        time.sleep(4.0)
        packets = osc.snapshot()
        by_address = {}
        for t, address, value in packets:
            by_address.setdefault(address, []).append((t, value))
        assert set(by_address) == {
            controller.address(n) for n in controller.CONTINUOUS_ACTION_NAMES
        }
        for address, timed in by_address.items():
            assert all(isinstance(v, float) and -1.0 <= v <= 1.0 for _, v in timed)
            times = [t for t, _ in timed]
            rate = (len(times) - 1) / (times[-1] - times[0])
            assert 9.0 <= rate <= 11.0, (address, rate)
    finally:
        code = up.stop()
        time.sleep(0.2)
        tail = [(a, v) for _, a, v in osc.snapshot()][-29:]
        osc.close()
    assert code == 0, up.output()
    assert tail == [(controller.address(n), v) for n, v in controller.RESET_VALUES.items()]


def test_a_node_that_dies_stops_the_graph(tmp_path):
    port = free_udp_port()
    up = PamiqUp('world:=doom', 'agent:=random', f'osc_port:={port}', f'run_dir:={tmp_path}')
    try:
        assert wait_until(lambda: 'started agent (pid' in up.output(), 30.0), up.output()
        pid = int(up.output().split('started agent (pid ')[1].split(')')[0])
        assert wait_until(lambda: 'random policy' in up.output(), 30.0), up.output()
        os.kill(pid, signal.SIGKILL)
        assert up.process.wait(30) == 1
    finally:
        up.stop()
    out = up.output()
    assert f'agent died (exit code {-signal.SIGKILL})' in out
    assert 'stopping the graph' in out


def test_bad_arguments_are_refused_clearly():
    result = subprocess.run(
        [sys.executable, '-m', 'pamiq.tools.cli', 'up', 'agent:=clever'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert 'agent:=clever is not one of curiosity, random' in result.stderr
    result = subprocess.run(
        [sys.executable, '-m', 'pamiq.tools.cli', 'up', 'wrld:=doom'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and 'unknown argument(s) wrld' in result.stderr


def fast_params(tmp_path) -> str:
    """The shipped parameters with a trainer that finishes a round every few seconds."""
    with open(default_params_file()) as stream:
        params = yaml.safe_load(stream)
    params['/**/trainer']['ros__parameters'].update(
        rollout_length=32,
        encoder_batches=4,
        dynamics_batches=4,
        min_buffer_size=16,
        checkpoint_every=1,
    )
    path = tmp_path / 'fast.yaml'
    path.write_text(yaml.safe_dump(params))
    return str(path)


def fast_curiosity_graph(tmp_path, *extra: str) -> PamiqUp:
    """`pamiq up` of the Doom graph with the curiosity agent and a trainer of short rounds."""
    return PamiqUp(
        'world:=doom',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        f'params_file:={fast_params(tmp_path)}',
        *extra,
    )


def test_a_killed_supervisor_takes_its_nodes_with_it(tmp_path):
    port = free_udp_port()
    up = PamiqUp('world:=doom', 'agent:=random', f'osc_port:={port}', f'run_dir:={tmp_path}')
    assert wait_until(lambda: up.output().count('(pid ') == 3, 30.0), up.output()
    pids = [int(part.split(')')[0]) for part in up.output().split('(pid ')[1:]]
    up.process.kill()
    up.process.wait(10)

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f'/proc/{pid}/stat') as stat:  # a zombie is gone for our purposes
            return stat.read().split(')')[1].split()[0] != 'Z'

    assert wait_until(lambda: not any(alive(pid) for pid in pids), 15.0), [
        p for p in pids if alive(p)
    ]
