"""Lockstep throughput: how many simulated steps per wall second the whole graph takes.

Starts `pamiq up world:=doom real_time_factor:=0 actors:=N` for each configuration, lets it warm
up, then counts the worlds' simulated steps (their diagnostics) over a measured window. With the
curiosity agent the window starts once the trainer's encoder is frozen (after `encoder_rounds`
rounds, the steady state: while the encoder learns a round costs ~2.5 times as much), and the
steps and seconds it took to get there are reported apart (`--from-round 0`: measure from the
start). Each step
is one frame, one action applied through the actuator's OSC, and 0.1 s of simulated time
(10 steps/s = real time). With the curiosity agent the trainer trains every rollout: an agent acts
at most 2 rollouts ahead of the newest weights (wait_for_trainer), so the world waits for the
trainer, and the trainer's 'rollouts skipped' must stay 0.

Where the time goes: the CPU seconds each process used in the window (from /proc), per step,
summed by role (worlds, actuators, agents, trainer); and for the critical path of one step, the
agent's own step time from its diagnostics.
The bench reads the nodes' diagnostics at the window's two ends only: taking them throughout
would cost the graph it measures a few % of its CPU.

    .venv/bin/python bench/lockstep.py [--duration 60] [--warmup 20]
        [--configs random:1 curiosity:1 curiosity:2 curiosity:4] [--from-round N]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import benchlib

benchlib.setup()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from pamiq.learning.config import LearnerConfig  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import Probe, free_udp_port, wait_until  # noqa: E402

TICKS = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def counters(probe: Probe, node: str, key: str) -> list[float]:
    """`key` of every node called `node` (one per actor)."""
    values = []
    for array in reversed(probe.messages('/diagnostics')):
        for status in array.status:
            name = status.name.split(':')[0]
            if name.endswith('/' + node) and name not in {v[0] for v in values}:
                for pair in status.values:
                    if pair.key == key:
                        values.append((name, float(pair.value)))
    return [v for _, v in values]


def total(probe: Probe, node: str, key: str, expected: int) -> float | None:
    values = counters(probe, node, key)
    return sum(values) if len(values) == expected else None


def stop_listening(probe: Probe) -> None:
    for subscription in list(probe.subscriptions):
        if subscription.topic_name == '/diagnostics':
            probe.destroy_subscription(subscription)
    probe.clear('/diagnostics')


def listen_until_every_node_reported(probe: Probe, agent: str, actors: int) -> None:
    """Take /diagnostics again until each world, agent and the trainer has reported once."""
    probe.record(DiagnosticArray, '/diagnostics', 1000)
    reported = lambda: all(
        total(probe, node, key, count) is not None
        for node, key, count in (
            ('world', 'simulated steps', actors),
            ('agent', 'step p50 (ms)', actors),
            *((('trainer', 'rounds', 1),) if agent == 'curiosity' else ()),
        )
    )
    assert wait_until(reported, 30.0), 'not every node reported its diagnostics again'


def measure(
    agent: str, actors: int, duration: float, warmup: float, from_round: int, extra: list[str]
) -> dict:
    probe = Probe()
    probe.record(DiagnosticArray, '/diagnostics', 1000)
    with tempfile.TemporaryDirectory(prefix='pamiq-lockstep-') as run_dir:
        command = [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', '--quiet']
        command += ['world:=doom', f'agent:={agent}', 'real_time_factor:=0', f'actors:={actors}']
        command += [f'osc_port:={free_udp_port() - 2 * actors}', f'run_dir:={run_dir}', *extra]
        log = open(os.path.join(run_dir, 'up.log'), 'w+')
        up = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            started = lambda: (total(probe, 'world', 'simulated steps', actors) or 0) > 0
            assert wait_until(started, 120.0), 'the graph did not start stepping'
            first_steps, first_t = (
                total(probe, 'world', 'simulated steps', actors),
                time.monotonic(),
            )
            if agent != 'curiosity':
                from_round = 0
            trained = lambda: (total(probe, 'trainer', 'rounds', 1) or 0) >= from_round
            assert wait_until(trained, 1800.0), f'the trainer did not reach round {from_round}'
            early_steps = total(probe, 'world', 'simulated steps', actors) - first_steps
            early_s = time.monotonic() - first_t
            time.sleep(warmup)
            log.seek(0)
            pids = {
                label: int(pid)
                for label, pid in re.findall(r'started (\S+) \(pid (\d+)\)', log.read())
            }
            cpu0 = {label: cpu_seconds(pid) for label, pid in pids.items()}
            steps0, t0 = total(probe, 'world', 'simulated steps', actors), time.monotonic()
            rounds0 = total(probe, 'trainer', 'rounds', 1) if agent == 'curiosity' else 0
            # Not listening while the window runs: taking every node's diagnostics (about 80
            # messages a second) would cost the graph a few % of the CPU it is measured on.
            stop_listening(probe)
            time.sleep(duration)
            listen_until_every_node_reported(probe, agent, actors)
            steps1, t1 = total(probe, 'world', 'simulated steps', actors), time.monotonic()
            cpu1 = {label: cpu_seconds(pid) for label, pid in pids.items()}
            rounds1 = total(probe, 'trainer', 'rounds', 1) if agent == 'curiosity' else 0
            skipped = total(probe, 'trainer', 'rollouts skipped (trainer behind)', 1)
            resent = total(probe, 'world', 'lockstep frames sent again', actors)
            stray = total(probe, 'world', 'stray frame markers', actors)
            agent_ms = counters(probe, 'agent', 'step p50 (ms)')
            waited = total(probe, 'agent', 'waiting for the trainer (s)', actors)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(90)
            log.close()
            probe.close()  # its executor first: a destroyed node under a spinning executor raises
    steps = steps1 - steps0
    seconds = t1 - t0
    # CPU ms per step by role ('actor1/world' -> 'world').
    cpu_ms: dict[str, float] = {}
    for label in pids:
        role = label.split('/')[-1]
        cpu_ms[role] = cpu_ms.get(role, 0.0) + 1e3 * (cpu1[label] - cpu0[label]) / steps
    return {
        'agent': agent,
        'actors': actors,
        'measured_from_round': from_round,
        'steps_before_that_round': early_steps,
        'seconds_before_that_round': early_s,
        'steps_per_s_before_that_round': early_steps / early_s if early_s > 0 else None,
        'steps': steps,
        'seconds': seconds,
        'steps_per_s': steps / seconds,
        'real_time_multiple': steps / seconds / 10.0,
        'trainer_rounds': rounds1 - rounds0,
        'rollouts_skipped': skipped,
        'frames_sent_again': resent,
        'stray_markers': stray,
        'agent_step_p50_ms': sum(agent_ms) / len(agent_ms) if agent_ms else None,
        'agents_waiting_for_trainer_s_total': waited,
        'cpu_ms_per_step': cpu_ms,
        'cpu_ms_per_step_total': sum(cpu_ms.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0)
    parser.add_argument('--warmup', type=float, default=20.0)
    parser.add_argument(
        '--configs',
        nargs='+',
        default=['random:1', 'curiosity:1', 'curiosity:2', 'curiosity:4'],
        help='agent:actors pairs',
    )
    parser.add_argument(
        '--from-round',
        type=int,
        default=LearnerConfig.encoder_rounds,
        help="curiosity: start measuring at this trainer round (default: the encoder's last "
        'learning round, i.e. the steady state)',
    )
    parser.add_argument(
        '--up-args', nargs='*', default=[], help='more name:=value arguments for pamiq up'
    )
    parser.add_argument('--name', default='lockstep')
    args = parser.parse_args()
    rclpy.init()
    try:
        results = []
        for config in args.configs:
            agent, actors = config.split(':')
            results.append(
                measure(
                    agent, int(actors), args.duration, args.warmup, args.from_round, args.up_args
                )
            )
            print(results[-1], flush=True)
    finally:
        rclpy.try_shutdown()
    rows = []
    for r in results:
        cpu = ', '.join(f'{role} {ms:.1f}' for role, ms in sorted(r['cpu_ms_per_step'].items()))
        rows.append(
            (
                f'{r["agent"]}, {r["actors"]} actor(s)',
                f'{r["steps_per_s"]:.0f} steps/s ({r["real_time_multiple"]:.1f}x real time), '
                f'{r["steps"]:.0f} steps in {r["seconds"]:.0f} s, '
                f'{r["trainer_rounds"]:.0f} rounds, {r["rollouts_skipped"]} rollouts skipped, '
                f'{r["frames_sent_again"]:.0f} frames sent again, '
                f'{r["stray_markers"]:.0f} stray markers; '
                f'CPU ms/step: {cpu} (total {r["cpu_ms_per_step_total"]:.1f}); '
                f'agent step p50 {r["agent_step_p50_ms"]:.1f} ms'
                + (
                    f'; before round {r["measured_from_round"]}: '
                    f'{r["steps_per_s_before_that_round"]:.0f} steps/s '
                    f'({r["steps_before_that_round"]:.0f} steps in '
                    f'{r["seconds_before_that_round"]:.0f} s)'
                    if r['measured_from_round']
                    else ''
                ),
            )
        )
    benchlib.report(
        args.name, rows, {'duration_s': args.duration, 'up_args': args.up_args, 'results': results}
    )
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
