"""Lockstep throughput: how many simulated steps per wall second the whole graph takes.

Starts `pamiq up world:=doom real_time_factor:=0` for each agent, lets it warm up, then counts
the world's simulated steps (its diagnostics) over a measured window. Each step is one frame, one
action applied through the actuator's OSC, and 0.1 s of simulated time (10 steps/s = real time).

    .venv/bin/python bench/lockstep.py [--duration 60] [--warmup 15] [--agents random curiosity]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time

import benchlib

benchlib.setup()

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import NAMESPACE, Probe, diagnostic_value, free_udp_port, wait_until  # noqa: E402


def counter(probe: Probe, node: str, key: str) -> float:
    value = diagnostic_value(probe, f'{NAMESPACE}/{node}', key)
    return float(value) if value is not None else 0.0


def measure(agent: str, duration: float, warmup: float) -> dict:
    probe = Probe()
    probe.record(DiagnosticArray, '/diagnostics', 100)
    with tempfile.TemporaryDirectory(prefix='pamiq-lockstep-') as run_dir:
        command = [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', '--quiet']
        command += ['world:=doom', f'agent:={agent}', 'real_time_factor:=0']
        command += [f'osc_port:={free_udp_port()}', f'run_dir:={run_dir}']
        up = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            assert wait_until(lambda: counter(probe, 'world', 'simulated steps') > 0, 90.0)
            time.sleep(warmup)
            steps0, t0 = counter(probe, 'world', 'simulated steps'), time.monotonic()
            version0 = counter(probe, 'agent', 'weights version')
            time.sleep(duration)
            steps1, t1 = counter(probe, 'world', 'simulated steps'), time.monotonic()
            version1 = counter(probe, 'agent', 'weights version')
            resent = counter(probe, 'world', 'lockstep frames sent again')
            stray = counter(probe, 'world', 'stray frame markers')
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(60)
            probe.close()
    # Diagnostics come once per simulated second: their counters lag by up to 10 steps.
    return {
        'agent': agent,
        'steps': steps1 - steps0,
        'seconds': t1 - t0,
        'steps_per_s': (steps1 - steps0) / (t1 - t0),
        'real_time_multiple': (steps1 - steps0) / (t1 - t0) / 10.0,
        'weights_versions_during': version1 - version0,
        'frames_sent_again': resent,
        'stray_markers': stray,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=60.0)
    parser.add_argument('--warmup', type=float, default=15.0)
    parser.add_argument('--agents', nargs='+', default=['random', 'curiosity'])
    parser.add_argument('--name', default='lockstep')
    args = parser.parse_args()
    rclpy.init()
    try:
        results = [measure(agent, args.duration, args.warmup) for agent in args.agents]
    finally:
        rclpy.try_shutdown()
    rows = []
    for r in results:
        rows.append(
            (
                f'{r["agent"]}, 1 actor',
                f'{r["steps_per_s"]:.0f} steps/s ({r["real_time_multiple"]:.1f}x real time), '
                f'{r["steps"]:.0f} steps in {r["seconds"]:.0f} s, '
                f'{r["weights_versions_during"]:.0f} weight versions, '
                f'{r["frames_sent_again"]:.0f} frames sent again, '
                f'{r["stray_markers"]:.0f} stray markers',
            )
        )
    benchlib.report(args.name, rows, {'duration_s': args.duration, 'results': results})
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
