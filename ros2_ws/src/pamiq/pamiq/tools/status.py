"""The one-line live status `pamiq up` prints every few seconds (`--quiet` turns it off)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
import os
import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float32

from pamiq.ros.diagnostics import LEVEL_NAMES

SHORT = {
    'inverse_dynamics/loss': 'id',
    'vae/loss': 'vae',
    'forward_dynamics/loss': 'fd',
    'ppo/loss': 'ppo',
}


def disk_use(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # a file that a node just replaced
    return total


class StatusLine:
    def __init__(
        self, namespace: str, run_dir: str, say: Callable[[str], None], period: float = 5.0
    ) -> None:
        self.run_dir, self.say = run_dir, say
        self.context = Context()
        # Ctrl-C belongs to the supervisor: rclpy must not install its own signal handlers.
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node('pamiq_status', namespace=namespace, context=self.context)
        self.statuses: dict[str, DiagnosticStatus] = {}
        self.rewards: deque[float] = deque(maxlen=50)
        self.losses: dict[str, float] = {}
        self.node.create_subscription(
            DiagnosticArray, '/diagnostics', self.diagnostics_callback, 10
        )
        self.node.create_subscription(
            Float32, 'agent/reward', lambda m: self.rewards.append(m.data), 10
        )
        for topic, short in SHORT.items():
            self.node.create_subscription(
                Float32,
                f'trainer/{topic}',
                lambda m, s=short: self.losses.__setitem__(s, m.data),
                10,
            )
        self.node.create_timer(period, self.print_line)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, name='status', daemon=True)
        self.thread.start()

    def diagnostics_callback(self, array: DiagnosticArray) -> None:
        for status in array.status:
            self.statuses[status.name] = status

    def value(self, node_suffix: str, key: str) -> str | None:
        for name, status in self.statuses.items():
            if name.split(':')[0].endswith(node_suffix):
                for kv in status.values:
                    if kv.key == key:
                        return kv.value
        return None

    def line(self) -> str:
        parts = []
        rate = self.value('agent', 'action rate (Hz)')
        parts.append(f'acting {float(rate):.1f} Hz' if rate is not None else 'acting ?')
        if self.rewards:
            parts.append(f'reward {sum(self.rewards) / len(self.rewards):.3f}')
        version = self.value('agent', 'weights version')
        if version not in (None, 'n/a'):
            parts.append(f'weights v{version}')
        if self.losses:
            parts.append(
                'losses ' + ' '.join(f'{k} {v:.3g}' for k, v in sorted(self.losses.items()))
            )
        parts.append(f'run_dir {disk_use(self.run_dir) / 1e6:.0f} MB')
        worst = max(self.statuses.values(), key=lambda s: s.level, default=None)
        if worst is None:
            parts.append('no diagnostics yet')
        elif worst.level == DiagnosticStatus.OK:
            parts.append('all OK')
        else:
            parts.append(f'{LEVEL_NAMES.get(worst.level, "STALE")} {worst.name}: {worst.message}')
        return ' | '.join(parts)

    def print_line(self) -> None:
        self.say(f'[status] {self.line()}')

    def stop(self) -> None:
        self.executor.shutdown()
        self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
