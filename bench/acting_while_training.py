"""Acting never stops: the whole graph on the Doom world while the trainer trains beside it.

Starts `pamiq up world:=doom agent:=curiosity` (its own supervisor) and records, for --duration
seconds: the interval between `action` messages, the agent's step indices (a missed step shows as
a gap), which policy version acted, when each weights blob was published (marked by the round's
loss, published right after it) and when the agent first
acted with it, the blob size, training rounds and the forward-dynamics loss.

With --churn-period P, a DDS participant joins the graph every P seconds and leaves again, as
the ROS 2 command-line tools do: a new process without pamiq's DDS profile that, in turn,
subscribes to the camera best effort (`ros2 topic hz`) or reliably (`ros2 topic echo`), lists
the agent's parameters or gets one, lives --churn-life seconds and exits. The action intervals,
the world's publishing times and the agent's step times (from their diagnostics) then say
whether a change of the graph's membership holds up the world or the agent.

    .venv/bin/python bench/acting_while_training.py [--duration 180] [--churn-period 5]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import benchlib

benchlib.setup()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
import numpy as np  # noqa: E402
from pamiq.learning.learner import LearnerConfig  # noqa: E402
from pamiq.learning.models import build_models  # noqa: E402
from pamiq.ros import acting_domain, qos, topics  # noqa: E402
from pamiq.ros.share import config_file  # noqa: E402
from pamiq.storage.weights import pack_weights  # noqa: E402
from pamiq.vocabulary import parse_senses  # noqa: E402
import rclpy  # noqa: E402
from rclpy.time import Time  # noqa: E402
from rosgraph import NAMESPACE, Probe, diagnostic_value, free_udp_port, wait_until  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float32  # noqa: E402

# A short-lived participant like a ROS 2 command-line tool: its own process and node, started
# with no DDS settings of pamiq's (as from another terminal), does one thing and is gone. The
# kinds rotate: `ros2 topic hz` on the camera (best effort), `ros2 topic echo --qos-reliability
# reliable` on it, `ros2 param list` of the agent, and a service call (`ros2 param get`).
PARTICIPANT = """
import sys, time, rclpy
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.qos import qos_profile_sensor_data, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
kind, life = sys.argv[1], float(sys.argv[2])
rclpy.init()
node = rclpy.create_node('churn_' + kind, namespace='pamiq')
if kind in ('hz', 'echo'):
    qos = qos_profile_sensor_data if kind == 'hz' else QoSProfile(
        depth=10, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, 'camera/image_raw', lambda m: None, qos)
else:
    service, request = ((ListParameters, 'agent/list_parameters') if kind == 'param_list'
                        else (GetParameters, 'agent/get_parameters'))
    client = node.create_client(service, request)
    message = service.Request()
    if kind == 'param_get':
        message.names = ['report_period']
    if client.wait_for_service(timeout_sec=life):
        future = client.call_async(message)
        rclpy.spin_until_future_complete(node, future, timeout_sec=life)
end = time.monotonic() + life
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
node.destroy_node()
rclpy.shutdown()
"""
KINDS = ('hz', 'echo', 'param_list', 'param_get')
# What a terminal without pamiq's environment lacks: the project's DDS profile.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')


def churn(period: float, life: float, stop: threading.Event, joins: list[float]) -> None:
    """Start a participant every `period` s until `stop` (whether or not the last one has
    gone: starting takes a second or two); record when each started."""
    running: list[subprocess.Popen] = []
    environment = {k: v for k, v in os.environ.items() if k not in PROFILE_VARIABLES}
    next_join = time.monotonic() + period
    while not stop.wait(max(0.0, next_join - time.monotonic())):
        next_join += period
        kind = KINDS[len(joins) % len(KINDS)]
        joins.append(time.monotonic())
        running = [p for p in running if p.poll() is None]
        running.append(
            subprocess.Popen([sys.executable, '-c', PARTICIPANT, kind, str(life)], env=environment)
        )
    for process in running:
        process.wait()


HELD = (
    ('world', 'slow publishes (> 50 ms)'),
    ('world', 'slowest publish (ms)'),
    ('agent', 'slow steps (> 50 ms)'),
    ('agent', 'slowest step (ms)'),
)


class GarbageCollections:
    """When this process's garbage collector ran: it holds the GIL, and this process keeps every
    message it records, so a full collection late in a run could delay the receiving itself."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int]] = []  # (start, end, generation)
        self.started = 0.0
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict) -> None:
        if phase == 'start':
            self.started = time.monotonic()
        else:
            self.pauses.append((self.started, time.monotonic(), info['generation']))

    def within_ms(self, start: float, end: float) -> float:
        """Milliseconds of collection between start and end."""
        return 1e3 * sum(max(0.0, min(b, end) - max(a, start)) for a, b, _ in self.pauses)

    def longest_ms(self) -> float:
        return max((1e3 * (b - a) for a, b, _ in self.pauses), default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--duration', type=float, default=180.0, help='seconds measured after warm-up'
    )
    parser.add_argument('--name', default='acting_while_training', help='result file name')
    parser.add_argument('--params-file', default='', help='parameter YAML instead of the default')
    parser.add_argument('--record', action='store_true', help='record the session (record:=true)')
    parser.add_argument(
        '--senses', default='vision', help='senses:= of the graph, e.g. vision,hearing,body'
    )
    parser.add_argument(
        '--graph-args', nargs='*', default=[],
        help='more launch arguments, e.g. world:=vrchat camera:=video.mp4 model:=original',
    )  # fmt: skip
    parser.add_argument(
        '--churn-period', type=float, default=0.0, help='a participant joins every P s (0: none)'
    )
    parser.add_argument(
        '--churn-life', type=float, default=2.5, help='seconds each such participant lives'
    )
    parser.add_argument(
        '--private-acting', action='store_true',
        help='the acting path on a private domain (this probe too), the public faces UDP-only: '
        "pamiq up's one-host default (issue 24); without it, PAMIQ_PRIVATE_ACTING=0: all on "
        'ROS_DOMAIN_ID',
    )  # fmt: skip
    args = parser.parse_args()
    private = contextlib.nullcontext()
    os.environ[acting_domain.ENABLE_VARIABLE] = '1' if args.private_acting else '0'
    if args.private_acting:
        split = config_file(acting_domain.SPLIT_PROFILE)
        os.environ.update({name: split for name in PROFILE_VARIABLES})
        private = acting_domain.participant_environment(shared_memory=True)
    senses = parse_senses(args.senses)

    run_dir = tempfile.mkdtemp(prefix='pamiq-bench-')
    extra = [f'params_file:={os.path.abspath(args.params_file)}'] if args.params_file else []
    extra += [f'senses:={",".join(senses)}', f'body_port:={free_udp_port()}', *args.graph_args]
    command = benchlib.graph_command(run_dir, free_udp_port(), args.record, *extra)
    log = open(os.path.join(run_dir, 'bench.log'), 'wb')
    up = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    with private:
        if args.private_acting:
            rclpy.init(domain_id=acting_domain.acting_domain())
        else:
            rclpy.init()
        probe = Probe()
    collections = GarbageCollections()

    try:
        probe.record(JointState, 'action', qos.ACTION)
        probe.record(JointState, 'agent/step', qos.STEP)
        # A witness: the world's own 10 Hz stream. An action gap while poses kept arriving here
        # was the graph's; one that poses share was this process not taking messages.
        probe.record(PoseStamped, topics.POSE, qos.DEFAULT)
        probe.record(Float32, 'trainer/forward_dynamics/loss', qos.DEFAULT)
        # Published only in the rounds where the encoder still learns (encoder_rounds).
        probe.record(Float32, 'trainer/inverse_dynamics/loss', qos.DEFAULT)
        # The other senses' streams, at their own rates (only their arrival times are kept).
        probe.record(Float32, topics.AUDIO_LEVEL, qos.DEFAULT)
        probe.record(JointState, topics.BODY_STATE, qos.SENSE)
        probe.record(DiagnosticArray, topics.DIAGNOSTICS, 100)
        # Not trainer/weights itself: taking a 29 MB message in this process would delay the
        # action callbacks it times. The trainer publishes the losses right after the weights,
        # so a round's loss arrival marks the publication of version = round number.
        assert wait_until(lambda: len(probe.messages('action')) > 20, 120.0), (
            'the graph did not start acting'
        )
        for topic in probe.received:
            probe.clear(topic)
        # This process keeps every message it records: a full collection over them took 179 ms
        # at 442 s of a 600 s run, and the action interval it fell in read 279 ms. Nothing it
        # keeps is cyclic, so measuring without the collector measures the graph alone.
        gc.collect()
        gc.disable()
        collections.pauses.clear()  # that collection came before measuring
        joins: list[float] = []
        stop_churn = threading.Event()
        if args.churn_period > 0:
            threading.Thread(
                target=churn,
                args=(args.churn_period, args.churn_life, stop_churn, joins),
                daemon=True,
            ).start()
        stolen = benchlib.StolenTime()
        started = time.monotonic()
        while time.monotonic() - started < args.duration:
            time.sleep(1.0)
            if up.poll() is not None:
                raise RuntimeError(f'pamiq up exited with {up.returncode}; see {log.name}')
        stop_churn.set()
        stolen.stop()
        elapsed = time.monotonic() - started
        with probe.lock:
            actions = [t for t, _ in probe.received['action']]
            # Frame stamps (ROS time) of the actions, and this process's ROS time minus its
            # monotonic clock: a gap's action can then say whether its frame came late.
            stamps = [
                Time.from_msg(m.header.stamp).nanoseconds / 1e9
                for _, m in probe.received['action']
            ]
            clock_offset = time.time() - time.monotonic()
            steps = [(t, dict(zip(m.name, m.position))) for t, m in probe.received['agent/step']]
            poses = np.array([t for t, _ in probe.received[topics.POSE]])
            losses = [(t, m.data) for t, m in probe.received['trainer/forward_dynamics/loss']]
            encoder_rounds = len(probe.received['trainer/inverse_dynamics/loss'])
            sense_rates = {
                topic: len(probe.received[topic]) / elapsed
                for topic in (topics.AUDIO_LEVEL, topics.BODY_STATE)
            }
        # What the world and the agent counted themselves (since they started).
        held = {
            (node, key): float(diagnostic_value(probe, f'{NAMESPACE}/{node}', key) or 'nan')
            for node, key in HELD
        }
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
        probe.close()
        rclpy.try_shutdown()

    intervals = np.diff(actions)
    step_indices = np.array([int(s['step']) for _, s in steps])
    missed_steps = int(np.sum(np.diff(step_indices) - 1)) if step_indices.size > 1 else 0
    versions_acted = sorted({int(s['policy_version']) for _, s in steps})
    delays = []
    first_version = int(steps[0][1]['policy_version']) if steps else 0
    for number, (published, _) in enumerate(losses, start=1):
        version = first_version + number
        used = [t for t, s in steps if int(s['policy_version']) >= version and t >= published]
        if used:
            delays.append(used[0] - published)
    blob_mb = len(pack_weights(build_models('inverse_dynamics', 'continuous', senses), 0)) / 1e6
    config = LearnerConfig()
    rounds = len(losses)
    samples = (
        rounds * config.dynamics_batches * config.batch_size
        + encoder_rounds * config.encoder_batches * config.batch_size
        + rounds * config.ppo.update_epochs * config.rollout_length
    )
    fd = [value for _, value in losses]
    head, tail = fd[: max(len(fd) // 5, 1)], fd[-max(len(fd) // 5, 1) :]
    interval = benchlib.summary_ms(intervals)
    delay = benchlib.summary_ms(delays)
    near_joins = [
        float(1e3 * intervals[i])
        for i in range(len(intervals))
        if any(0.0 <= actions[i + 1] - j <= args.churn_life + 1.0 for j in joins)
    ]

    def witness_ms(start: float, end: float) -> float:
        """The longest wait for a world/pose here between start and end."""
        inside = poses[(poses > start) & (poses < end)]
        edges = np.concatenate(([start], inside, [end]))
        return float(1e3 * np.max(np.diff(edges)))

    data = {
        'graph_args': args.graph_args,
        'private_acting': args.private_acting,
        'world_slow_publishes': held[('world', 'slow publishes (> 50 ms)')],
        'world_slowest_publish_ms': held[('world', 'slowest publish (ms)')],
        'agent_slow_steps': held[('agent', 'slow steps (> 50 ms)')],
        'agent_slowest_step_ms': held[('agent', 'slowest step (ms)')],
        'senses': list(senses),
        'sense_rates_hz': sense_rates,
        'duration_s': elapsed,
        'participants_joined': len(joins),
        'max_interval_within_a_participant_life_ms': max(near_joins, default=None),
        'gaps_over_150ms': int(np.sum(intervals > 0.15)),
        'bench_longest_gc_ms': collections.longest_ms(),
        'steal_percent': stolen.total_percent(),
        'exit_code': code,
        'action_rate_hz': (len(actions) - 1) / (actions[-1] - actions[0]),
        'action_interval': interval,
        'gaps_over_250ms': int(np.sum(intervals > 0.25)),
        'missed_steps': missed_steps,
        'versions_acted': len(versions_acted),
        'weights_published': len(losses),
        'weights_delivery': delay,
        'weights_blob_mb': blob_mb,
        'trainer_rounds_per_min': rounds / elapsed * 60,
        'trainer_samples_per_s': samples / elapsed,
        'forward_dynamics_loss_first_fifth': float(np.mean(head)) if fd else None,
        'forward_dynamics_loss_last_fifth': float(np.mean(tail)) if fd else None,
        'run_dir': run_dir,
        # stamp_spacing_ms: between the frames the two actions answer (about the gap: frames
        # came late or were never acted on; about 100: they came, their actions did not);
        # late_ms: the age of the action that ended the gap when it arrived here;
        # pose_wait_ms: the longest wait for a world/pose here during the gap (about the gap:
        # this process stalled; about 100: the graph did).
        'gaps': [
            {
                'at_s': float(actions[i] - actions[0]),
                'ms': float(1e3 * intervals[i]),
                'stamp_spacing_ms': float(1e3 * (stamps[i + 1] - stamps[i])),
                'late_ms': float(1e3 * (actions[i + 1] + clock_offset - stamps[i + 1])),
                'pose_wait_ms': witness_ms(actions[i], actions[i + 1]),
                'bench_gc_ms': collections.within_ms(actions[i], actions[i + 1]),
                # the most time the hypervisor took from any one CPU meanwhile
                'steal_ms': stolen.within_ms(actions[i], actions[i + 1]),
                # since the newest participant was started (its process; it joins the DDS graph
                # once Python and rclpy are loaded, about 0.5-1 s later)
                'since_join_s': min(
                    (float(actions[i + 1] - j) for j in joins if j <= actions[i + 1]), default=None
                ),
            }
            for i in np.flatnonzero(intervals > 0.15)
        ],
    }
    rows = [
        ('duration (s)', f'{elapsed:.0f}'),
        ('senses', ','.join(senses)),
        *((f'{topic} rate (Hz)', f'{rate:.2f}') for topic, rate in sense_rates.items() if rate),
        ('action rate (Hz)', f'{data["action_rate_hz"]:.2f}'),
        (
            'action interval p50 / p99 / max (ms)',
            f'{interval["p50_ms"]:.1f} / {interval["p99_ms"]:.1f} / {interval["max_ms"]:.1f}',
        ),
        ('gaps > 250 ms', str(data['gaps_over_250ms'])),
        ('gaps > 150 ms', str(data['gaps_over_150ms'])),
        ("this process's longest garbage collection (ms)", f'{data["bench_longest_gc_ms"]:.1f}'),
        ('CPU time stolen by the hypervisor (%)', f'{data["steal_percent"]:.2f}'),
        (
            'participants joined; max interval while one lived (ms)',
            f'{len(joins)}; {data["max_interval_within_a_participant_life_ms"]}',
        ),
        (
            "world's publishes > 50 ms; slowest (ms)",
            f'{data["world_slow_publishes"]:.0f}; {data["world_slowest_publish_ms"]:.0f}',
        ),
        (
            "agent's steps > 50 ms; slowest (ms)",
            f'{data["agent_slow_steps"]:.0f}; {data["agent_slowest_step_ms"]:.0f}',
        ),
        ('missed agent steps', str(missed_steps)),
        ('weights versions the agent acted with', str(len(versions_acted))),
        (
            'weights delivery p50 / max (ms)',
            f'{delay.get("p50_ms", float("nan")):.0f} / {delay.get("max_ms", float("nan")):.0f}',
        ),
        ('weights blob (MB)', f'{blob_mb:.1f}'),
        ('trainer rounds / min', f'{data["trainer_rounds_per_min"]:.1f}'),
        ('trainer samples / s', f'{data["trainer_samples_per_s"]:.0f}'),
        (
            'FD loss first / last fifth',
            f'{data["forward_dynamics_loss_first_fifth"]:.4g} / '
            f'{data["forward_dynamics_loss_last_fifth"]:.4g}',
        ),
        ('targets', 'p99 <= 120 ms, no gap > 250 ms, delivery <= 1000 ms'),
    ]
    benchlib.report(args.name, rows, data)


if __name__ == '__main__':
    main()
