"""Soak: the full graph for a long time, sampling memory, CPU, step rate and disk every 10 s.

Reports, per node, resident memory at the start and the end and its growth rate over the second
half of the run (a linear fit, so start-up allocation does not count), plus the action rate and
the growth of the run directory, and says whether anything grew without bound.

    .venv/bin/python bench/soak.py [--duration 1800] [--interval 10] [--record]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import benchlib

benchlib.setup()

import numpy as np  # noqa: E402
from pamiq.ros import qos  # noqa: E402
from pamiq.run_dir import disk_use  # noqa: E402
import rclpy  # noqa: E402
from rosgraph import Probe, free_udp_port, wait_until  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

TICKS = os.sysconf('SC_CLK_TCK')
# Growth that counts as unbounded: more than this many MB per hour over the second half.
RSS_LIMIT_MB_PER_H = 50.0
# ... and by more than this over the second half in all: RSS moves by allocator chunks, and in a
# short run a step of a fraction of a MB reads as a steep slope (0.13 MB in 5 s: 77 MB/h).
RSS_FLOOR_MB = 8.0


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as stream:
        match = re.search(r'VmRSS:\s+(\d+) kB', stream.read())
    return int(match.group(1)) / 1024 if match else 0.0


def cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat') as stream:
        fields = stream.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def slope_per_hour(times: list[float], values: list[float]) -> float:
    half = len(times) // 2
    if len(times) - half < 2:
        return 0.0
    return float(np.polyfit(np.array(times[half:]) / 3600, values[half:], 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=1800.0)
    parser.add_argument('--interval', type=float, default=10.0)
    parser.add_argument('--record', action='store_true', help='record the session too')
    parser.add_argument('--name', default='soak')
    args = parser.parse_args()

    run_dir = tempfile.mkdtemp(prefix='pamiq-soak-')
    command = benchlib.graph_command(run_dir, free_udp_port(), args.record)
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(up.stdout), daemon=True).start()
    rclpy.init()
    probe = Probe()
    probe.record(JointState, 'action', qos.ACTION)
    samples = []
    try:
        assert wait_until(lambda: len(probe.messages('action')) > 20, 120.0), ''.join(lines)
        pids = {
            m.group(1): int(m.group(2))
            for m in re.finditer(r'started (\w+) \(pid (\d+)\)', ''.join(lines))
        }
        started = time.monotonic()
        last_cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
        last_time = started
        while time.monotonic() - started < args.duration:
            time.sleep(args.interval)
            now = time.monotonic()
            if up.poll() is not None:
                raise RuntimeError('pamiq up exited during the soak:\n' + ''.join(lines[-30:]))
            pids.update(
                {
                    m.group(1): int(m.group(2))
                    for m in re.finditer(r'started (\w+) \(pid (\d+)\)', ''.join(lines))
                }
            )
            sample = {'t': now - started, 'disk_mb': disk_use(run_dir) / 1e6}
            arrivals = [t for t in probe.arrivals('action') if t > now - args.interval]
            sample['action_hz'] = len(arrivals) / args.interval
            for name, pid in pids.items():
                try:
                    cpu = cpu_seconds(pid)
                    sample[f'{name}_rss_mb'] = rss_mb(pid)
                    sample[f'{name}_cpu_pct'] = (
                        100 * (cpu - last_cpu.get(name, cpu)) / (now - last_time)
                    )
                    last_cpu[name] = cpu
                except FileNotFoundError:
                    sample[f'{name}_rss_mb'] = float('nan')  # restarting (the trainer respawns)
            last_time = now
            samples.append(sample)
            print(f"{sample['t']:6.0f} s  {sample['action_hz']:.1f} Hz  disk {sample['disk_mb']:.0f} MB  "
                  + '  '.join(f"{n} {sample.get(n + '_rss_mb', 0):.0f} MB {sample.get(n + '_cpu_pct', 0):.0f}%" for n in pids), flush=True)  # fmt: skip
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
        probe.close()
        rclpy.try_shutdown()

    times = [s['t'] for s in samples]
    rows, nodes, unbounded = [], {}, []
    for name in pids:
        rss = [s.get(f'{name}_rss_mb', float('nan')) for s in samples]
        valid = [(t, r) for t, r in zip(times, rss) if np.isfinite(r)]
        growth = slope_per_hour([t for t, _ in valid], [r for _, r in valid])
        cpu = [s.get(f'{name}_cpu_pct', 0.0) for s in samples]
        nodes[name] = {
            'rss_start_mb': valid[0][1],
            'rss_end_mb': valid[-1][1],
            'rss_growth_mb_per_h': growth,
            'cpu_mean_pct': float(np.mean(cpu)),
        }
        second_half = [r for t, r in valid if t >= valid[len(valid) // 2][0]]
        if growth > RSS_LIMIT_MB_PER_H and second_half[-1] - second_half[0] > RSS_FLOOR_MB:
            unbounded.append(name)
        rows.append(
            (
                f'{name}: RSS start / end (MB), growth (MB/h), CPU',
                f'{valid[0][1]:.0f} / {valid[-1][1]:.0f}, {growth:+.1f}, {np.mean(cpu):.0f}%',
            )
        )
    rates = [s['action_hz'] for s in samples]
    disk = [s['disk_mb'] for s in samples]
    disk_growth = slope_per_hour(times, disk)
    rows += [
        ('action rate min / mean (Hz)', f'{min(rates):.1f} / {np.mean(rates):.2f}'),
        (
            'run_dir start / end (MB), growth (MB/h)',
            f'{disk[0]:.0f} / {disk[-1]:.0f}, {disk_growth:+.0f}',
        ),
        (
            'verdict',
            'nothing grew without bound' if not unbounded else 'GROWS: ' + ', '.join(unbounded),
        ),
    ]
    benchlib.report(args.name, rows, {
        'duration_s': args.duration, 'interval_s': args.interval, 'exit_code': code, 'nodes': nodes,
        'action_hz_min': min(rates), 'action_hz_mean': float(np.mean(rates)), 'disk_growth_mb_per_h': disk_growth,
        'unbounded': unbounded, 'samples': samples, 'run_dir': run_dir, 'limit_mb_per_h': RSS_LIMIT_MB_PER_H,
    })  # fmt: skip


if __name__ == '__main__':
    main()
