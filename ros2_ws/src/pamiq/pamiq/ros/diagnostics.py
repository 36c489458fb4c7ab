"""Node health on /diagnostics (diagnostic_msgs/DiagnosticArray) at 1 Hz, as rqt_runtime_monitor
and rqt_robot_monitor read it. diagnostic_updater has no PyPI wheel, so this is its small core:
checks registered by name, each returning a level, a message a person can act on, and values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', DiagnosticStatus.STALE: 'STALE'}
Check = Callable[[], tuple[bytes, str, dict[str, object]]]


class RateMeter:
    """Events per second over the last `window` seconds."""

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self.times: deque[float] = deque()
        self.started = time.monotonic()

    def tick(self) -> None:
        self.times.append(time.monotonic())

    def rate(self) -> float:
        now = time.monotonic()
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        span = min(self.window, now - self.started)
        return len(self.times) / span if span > 0 else 0.0

    def age(self) -> float:
        """Seconds since the last event (since creation if none)."""
        return time.monotonic() - (self.times[-1] if self.times else self.started)


def rate_level(rate: float, target: float, started: float, grace: float = 5.0) -> bytes:
    """WARN below 80 % of the target rate, once the node has had `grace` seconds to start."""
    if time.monotonic() - started < grace:
        return OK
    return OK if rate >= 0.8 * target else WARN


class Diagnostics:
    def __init__(self, node: Node, hardware_id: str, period: float = 1.0) -> None:
        self.node, self.hardware_id = node, hardware_id
        self.checks: list[tuple[str, Check]] = []
        self.pub = node.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.timer = node.create_timer(period, self.publish)

    def add(self, name: str, check: Check) -> None:
        self.checks.append((name, check))

    def publish(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.node.get_clock().now().to_msg()
        for name, check in self.checks:
            try:
                level, message, values = check()
            except Exception as error:  # a broken check must not take the node down
                level, message, values = ERROR, f'diagnostic check failed: {error}', {}
            status = DiagnosticStatus(
                level=level,
                name=f'{self.node.get_fully_qualified_name().lstrip("/")}: {name}',
                message=message,
                hardware_id=self.hardware_id,
            )
            status.values = [KeyValue(key=k, value=format_value(v)) for k, v in values.items()]
            array.status.append(status)
        self.pub.publish(array)


def format_value(value: object) -> str:
    return f'{value:.3f}' if isinstance(value, float) else str(value)
