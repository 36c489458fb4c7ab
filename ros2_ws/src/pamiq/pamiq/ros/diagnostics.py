"""Node health on /diagnostics (diagnostic_msgs/DiagnosticArray) at 1 Hz, as rqt_runtime_monitor
and rqt_robot_monitor read it. diagnostic_updater has no PyPI wheel, so this is its small core:
checks registered by name, each returning a level, a message a person can act on, and values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from pamiq.ros import qos, topics

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', DiagnosticStatus.STALE: 'STALE'}
Check = Callable[[], tuple[bytes, str, dict[str, object]]]


class RateMeter:
    """Events per second over the last `window` seconds, in the node's time.

    With a node's clock the meter follows simulated time under use_sim_time (a lockstep world's
    10 Hz is 10 frames per simulated second, however fast the wall clock runs); without one it
    uses the monotonic wall clock.
    """

    def __init__(self, clock: Clock | None = None, window: float = 5.0) -> None:
        self.clock, self.window = clock, window
        self.times: deque[float] = deque()
        self.started = self.now()

    def now(self) -> float:
        return self.clock.now().nanoseconds / 1e9 if self.clock else time.monotonic()

    def tick(self) -> None:
        self.times.append(self.now())

    def rate(self) -> float:
        now = self.now()
        while self.times and now - self.times[0] > self.window:
            self.times.popleft()
        span = min(self.window, now - self.started)
        return len(self.times) / span if span > 0 else 0.0

    def age(self) -> float:
        """Seconds since the last event (since creation if none)."""
        return self.now() - (self.times[-1] if self.times else self.started)

    def running_for(self) -> float:
        return self.now() - self.started


class TransitLoss:
    """Messages lost between a publisher and us, counted two ways.

    DDS numbers every sample a writer sends (rclpy hands it over as the message info's
    `publication_sequence_number`), so a jump from n to n + k means k - 1 samples were published
    and never arrived. That needs arrivals: when every large frame loses a fragment none arrives,
    so the middleware's own count (the subscription's message-lost event) is taken too, and the
    larger of the two counts. A lower sequence number means a new publisher (a restarted camera)
    and starts the gap count afresh; 0 means the RMW does not say.
    """

    def __init__(self, window: float = 5.0) -> None:
        self.window = window
        self.last = 0
        self.received = 0
        self.gaps = 0
        self.reported = 0
        self.arrivals: deque[tuple[float, int]] = deque()  # (arrival, lost just before it)
        self.reports: deque[tuple[float, int]] = deque()  # (report, lost since the last one)

    @property
    def lost(self) -> int:
        return max(self.gaps, self.reported)

    def arrived(self, sequence: int) -> None:
        if sequence <= 0:
            return
        gap = sequence - self.last - 1 if 0 < self.last < sequence else 0
        self.last = sequence
        self.received += 1
        self.gaps += gap
        self.arrivals.append((time.monotonic(), gap))

    def middleware_lost(self, count: int) -> None:
        """The middleware says `count` more samples were lost (message-lost event)."""
        if count > 0:
            self.reported += count
            self.reports.append((time.monotonic(), count))

    def recent_fraction(self) -> float:
        """The share of the last `window` seconds' messages that never arrived (0 to 1)."""
        now = time.monotonic()
        for events in (self.arrivals, self.reports):
            while events and now - events[0][0] > self.window:
                events.popleft()
        lost = max(sum(gap for _, gap in self.arrivals), sum(n for _, n in self.reports))
        total = lost + len(self.arrivals)
        return lost / total if total else 0.0


def rate_level(meter: RateMeter, target: float, grace: float = 5.0) -> bytes:
    """WARN below 80 % of the target rate, once the meter has had `grace` seconds to start."""
    if meter.running_for() < grace:
        return OK
    return OK if meter.rate() >= 0.8 * target else WARN


def steady_clock() -> Clock:
    """A monotonic wall clock: what paces a world that runs faster than real time."""
    return Clock(clock_type=ClockType.STEADY_TIME)


class Diagnostics:
    def __init__(self, node: Node, hardware_id: str, period: float = 1.0) -> None:
        self.node, self.hardware_id = node, hardware_id
        self.checks: list[tuple[str, Check]] = []
        self.pub = qos.publisher(node, DiagnosticArray, topics.DIAGNOSTICS, 10)
        # On the node's clock: under use_sim_time once per simulated second, like the rates
        # inside. (A steady-clock timer beside sim-time ones made lockstep slower, measured.)
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


def node_of(status_name: str) -> str:
    """The node a status comes from: 'pamiq/world' of 'pamiq/world: engine'."""
    return status_name.split(':')[0]


class DiagnosticsCollector:
    """The newest status under every name seen on /diagnostics (what `pamiq ctl status` and
    the status line read)."""

    def __init__(self, node: Node) -> None:
        self.latest: dict[str, DiagnosticStatus] = {}
        self.sub = node.create_subscription(
            DiagnosticArray, topics.DIAGNOSTICS, self.diagnostics_callback, 10
        )

    def diagnostics_callback(self, array: DiagnosticArray) -> None:
        for status in array.status:
            self.latest[status.name] = status

    def nodes(self) -> set[str]:
        """The nodes heard from ('pamiq/actor0/world')."""
        return {node_of(name) for name in self.latest}

    def value(self, node_name: str, key: str) -> str | None:
        """The value of `key` in the newest status of the node whose name ends in `node_name`."""
        return next(iter(self.values(node_name, key).values()), None)

    def values(self, node_name: str, key: str) -> dict[str, str]:
        """Node -> the value of `key` in its newest status, for every node named `node_name`
        (one per actor: 'pamiq/actor0/agent', 'pamiq/actor1/agent'), sorted by node."""
        found = {}
        for name, status in sorted(self.latest.items()):
            node = node_of(name)
            if node == node_name or node.endswith('/' + node_name):
                for pair in status.values:
                    if pair.key == key:
                        found[node] = pair.value
        return found

    def worst(self) -> DiagnosticStatus | None:
        return max(list(self.latest.values()), key=lambda s: s.level, default=None)


def format_value(value: object) -> str:
    return f'{value:.3f}' if isinstance(value, float) else str(value)
