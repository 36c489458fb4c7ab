"""Operating a running graph: pause/resume/save services, diagnostics, run-time parameters."""

from __future__ import annotations

import os
import re
import signal
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from pamiq.ros import qos
from pamiq.vrchat import controller
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rosgraph import NodeProcess, OscRecorder, statuses, versions_acted, wait_until
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32
from std_srvs.srv import SetBool, Trigger
from test_bringup import (
    fast_curiosity_graph,
    pamiq_cli,
    random_vrchat_graph,
)
from videos import write_video


def ready_client(probe, service_type, name, timeout=15.0):
    """A client whose service has been discovered (discovery is not part of a call's time)."""
    client = probe.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=timeout), f'no {name}'
    return client


def call(probe, service_type, name, request, timeout=15.0, client=None):
    client = client or ready_client(probe, service_type, name, timeout)
    future = client.call_async(request)
    assert wait_until(future.done, timeout), f'{name} did not answer'
    return future.result()


def test_pause_neutralises_within_150_ms_stops_actions_and_resumes(probe, tmp_path):
    up, osc = random_vrchat_graph(tmp_path, 320, 240)
    try:
        assert wait_until(lambda: len(osc.snapshot()) > 30, 40.0), up.output()
        client = ready_client(probe, SetBool, 'agent/set_active')
        paused_at = time.monotonic()
        reply = call(
            probe, SetBool, 'agent/set_active', SetBool.Request(data=False), client=client
        )
        assert reply.success and 'paused' in reply.message
        neutral = {(controller.address(n), v) for n, v in controller.NEUTRAL_VALUES.items()}

        def neutral_since_pause():
            after = [(t, a, v) for t, a, v in osc.snapshot() if t >= paused_at]
            sent = {(a, v) for _, a, v in after}
            return neutral <= sent and [t for t, a, v in after if (a, v) in neutral]

        assert wait_until(neutral_since_pause, 2.0), osc.snapshot()[-20:]
        first_neutral = min(
            t for t, a, v in osc.snapshot() if t >= paused_at and (a, v) in neutral
        )
        assert first_neutral - paused_at <= 0.150, first_neutral - paused_at
        time.sleep(0.3)
        quiet_from = time.monotonic()
        time.sleep(1.5)
        during = [(a, v) for t, a, v in osc.snapshot() if t >= quiet_from]
        assert all((a, v) in neutral for a, v in during), during  # no action while paused

        result = pamiq_cli('ctl', 'resume')
        assert result.returncode == 0, result.stdout + result.stderr
        assert 'agent: acting' in result.stdout
        resumed_at = time.monotonic()
        assert wait_until(
            lambda: any(t > resumed_at and (a, v) not in neutral for t, a, v in osc.snapshot()),
            5.0,
        )
        result = pamiq_cli('ctl', 'pause')
        assert 'agent: paused' in result.stdout, result.stdout
    finally:
        code = up.stop()
        osc.close()
    assert code == 0, up.output()


def levels(probe, prefix: str) -> list[tuple[bytes, str]]:
    return [(s.level, s.message) for s in statuses(probe, prefix)]


def test_curiosity_graph_learns_is_all_ok_saves_pauses_and_survives_a_trainer_kill(
    probe, tmp_path
):
    """The curiosity graph through `pamiq up`, operated as a user would in one run: it learns
    while acting, every node is OK, the trainer saves and pauses on request, and when the
    trainer dies acting goes on and the supervisor's respawn resumes learning."""
    run_dir = tmp_path / 'run'
    probe.record(DiagnosticArray, '/diagnostics', 10)
    probe.record(JointState, 'agent/step', qos.STEP)
    probe.record(Float32, 'trainer/forward_dynamics/loss', qos.DEFAULT)
    probe.record(Float32, 'agent/reward', qos.DEFAULT)
    up = fast_curiosity_graph(tmp_path)
    try:
        assert wait_until(lambda: max(versions_acted(probe), default=0) >= 2, 120.0), up.output()
        assert probe.messages('trainer/forward_dynamics/loss')
        assert probe.messages('agent/reward')
        assert list((run_dir / 'checkpoints').glob('checkpoint-*.safetensors'))

        # Past every node's start-up grace, every node says OK.
        probe.clear('/diagnostics')
        time.sleep(3.0)
        latest = {}
        for array in probe.messages('/diagnostics'):
            for status in array.status:
                latest[status.name] = status
        names = {name.split(':')[0] for name in latest}
        assert names >= {'pamiq/world', 'pamiq/agent', 'pamiq/osc_actuator', 'pamiq/trainer'}, (
            names
        )
        bad = {
            n: (s.level, s.message) for n, s in latest.items() if s.level != DiagnosticStatus.OK
        }
        assert not bad, bad

        # The trainer's services: save now, pause learning while the agent acts on.
        reply = call(probe, Trigger, 'trainer/save', Trigger.Request(), timeout=60.0)
        assert reply.success, reply.message
        assert reply.message.endswith('.safetensors') and os.path.isfile(reply.message)
        reply = call(probe, SetBool, 'trainer/set_active', SetBool.Request(data=False))
        assert reply.success and 'paused' in reply.message

        # A busy 2-core machine can starve one node's 1 Hz diagnostics for a moment: ask again.
        def status_shows_pause() -> bool:
            result = pamiq_cli('ctl', 'status')
            assert result.returncode == 0, result.stderr
            return (
                'paused (trainer/set_active)' in result.stdout
                and 'pamiq/agent: acting' in result.stdout
            )

        assert wait_until(status_shows_pause, 40.0, 1.0)
        # The live status line of `pamiq up`.
        assert wait_until(lambda: '[status] acting' in up.output(), 20.0), up.output()
        # The mean reward comes from the agents' diagnostics, not from a topic per step.
        assert wait_until(
            lambda: re.search(r'\[status\] acting.* \| reward \d', up.output()), 20.0
        )

        # The trainer dies: acting goes on, the supervisor respawns it (learning again: a new
        # process starts active) and it resumes from its checkpoint.
        pid = int(up.output().split('started trainer (pid ')[1].split(')')[0])
        os.kill(pid, signal.SIGKILL)
        assert wait_until(
            lambda: 'trainer died' in up.output() and 'respawning' in up.output(), 20.0
        ), up.output()
        probe.clear('agent/step')
        time.sleep(3.0)
        assert len(probe.messages('agent/step')) >= 20  # still acting at ~10 Hz
        assert wait_until(lambda: 'resumed from' in up.output(), 60.0), up.output()
        reached = max(versions_acted(probe), default=0)
        assert wait_until(lambda: max(versions_acted(probe), default=0) > reached, 120.0), (
            up.output()
        )
    finally:
        code = up.stop(60.0)
    assert code == 0, up.output()


def test_camera_source_lost_is_an_error_within_3_s_and_ok_again(probe, tmp_path):
    video = write_video(str(tmp_path / 'clip.avi'), frames=10)
    hidden = str(tmp_path / 'hidden.avi')
    probe.record(DiagnosticArray, '/diagnostics', 10)
    camera = NodeProcess('camera_node', 'camera', {'camera': video, 'max_backoff': 0.5})
    try:
        assert wait_until(
            lambda: (
                (DiagnosticStatus.OK, f'camera source {video!r} at 10.0 Hz')
                in levels(probe, 'pamiq/camera')
                or any(level == DiagnosticStatus.OK for level, _ in levels(probe, 'pamiq/camera'))
            ),
            20.0,
        )
        os.rename(video, hidden)
        lost_at = time.monotonic()
        probe.clear('/diagnostics')
        assert wait_until(
            lambda: any(
                level == DiagnosticStatus.ERROR for level, _ in levels(probe, 'pamiq/camera')
            ),
            3.0,
        )
        assert time.monotonic() - lost_at <= 3.0
        message = next(
            m for level, m in levels(probe, 'pamiq/camera') if level == DiagnosticStatus.ERROR
        )
        assert 'camera source' in message and 'clip.avi' in message
        os.rename(hidden, video)
        probe.clear('/diagnostics')
        assert wait_until(
            lambda: (
                levels(probe, 'pamiq/camera')
                and levels(probe, 'pamiq/camera')[-1][0] == DiagnosticStatus.OK
            ),
            10.0,
        )
    finally:
        camera.stop()


def set_parameter(probe, node: str, name: str, value: float):
    request = SetParameters.Request()
    request.parameters = [
        Parameter(
            name=name,
            value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value),
        )
    ]
    return call(probe, SetParameters, f'{node}/set_parameters', request).results[0]


def test_parameters_change_at_run_time_and_out_of_range_is_refused(probe):
    osc = OscRecorder()
    actuator = NodeProcess(
        'osc_actuator_node', 'osc_actuator', {'osc_port': osc.port, 'timeout': 30.0}
    )
    try:
        pub = probe.create_publisher(JointState, 'action', qos.ACTION)
        probe.wait_for_subscribers(pub)
        result = set_parameter(probe, 'osc_actuator', 'deadzone', 0.5)
        assert result.successful
        pub.publish(JointState(name=['Vertical'], position=[0.4]))
        assert wait_until(lambda: osc.snapshot(), 5.0)
        assert osc.take() == [('/input/Vertical', 0.0)]  # the new deadzone applies at once
        result = set_parameter(probe, 'osc_actuator', 'deadzone', 1.5)
        assert not result.successful
        assert 'deadzone' in result.reason or 'range' in result.reason, result.reason
        pub.publish(JointState(name=['Vertical'], position=[0.4]))
        assert wait_until(lambda: osc.snapshot(), 5.0)
        assert osc.take() == [('/input/Vertical', 0.0)]  # still 0.5
    finally:
        actuator.stop()
        osc.close()
