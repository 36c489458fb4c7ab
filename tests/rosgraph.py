"""Helpers to drive real pamiq node processes from tests: start, observe, stop."""

from __future__ import annotations

from collections.abc import Callable
import os
import random
import signal
import socket
import subprocess
import tempfile
import threading
import time

from pamiq.tools.graph import node_command, write_parameters
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

NAMESPACE = 'pamiq'
# Trainer parameters that finish a round in a second or two.
FAST_TRAINER = {
    'rollout_length': 16,
    'batch_size': 8,
    'encoder_batches': 2,
    'dynamics_batches': 2,
    'min_buffer_size': 8,
    'checkpoint_every': 1,
    'nice': 0,
}


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# Above Linux's ephemeral range (32768-60999) and the DDS ports of domains 1..100 (up to 32650):
# a port the kernel hands out for port 0 could be some other socket's (a DDS sender's) by the
# time the node binds it, one from here could not.
TEST_PORTS = range(61000, 65500)


def free_udp_port() -> int:
    for port in random.sample(TEST_PORTS, 200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    raise RuntimeError(f'no free UDP port in {TEST_PORTS}')


class NodeProcess:
    """One pamiq node as a real process, named and namespaced as the launch file does."""

    def __init__(
        self,
        executable: str,
        name: str,
        parameters: dict | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        files = []
        if parameters:
            handle, path = tempfile.mkstemp(suffix='.yaml', prefix=f'{name}-')
            os.close(handle)
            files.append(write_parameters(path, NAMESPACE, name, parameters))
        command = node_command(executable, name, NAMESPACE, files)
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, env=env
        )

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode('utf-8', 'replace')

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f'process did not exit on {sig!r}:\n{self.output()}') from None


class Probe(Node):
    """Test-side node spinning in a background thread; records what arrives."""

    def __init__(self) -> None:
        super().__init__('probe', namespace=NAMESPACE)
        self.received: dict[str, list[tuple[float, object]]] = {}
        self.lock = threading.Lock()
        self.executor_ = SingleThreadedExecutor()
        self.executor_.add_node(self)
        self.thread = threading.Thread(target=self.executor_.spin, daemon=True)
        self.thread.start()

    def record(self, msg_type, topic: str, qos) -> None:
        self.received[topic] = []

        def callback(msg) -> None:
            with self.lock:
                self.received[topic].append((time.monotonic(), msg))

        self.create_subscription(msg_type, topic, callback, qos)

    def messages(self, topic: str) -> list:
        with self.lock:
            return [msg for _, msg in self.received[topic]]

    def arrivals(self, topic: str) -> list[float]:
        with self.lock:
            return [t for t, _ in self.received[topic]]

    def clear(self, topic: str) -> None:
        with self.lock:
            self.received[topic].clear()

    def wait_for_subscribers(self, publisher, count: int = 1, timeout: float = 15.0) -> None:
        assert wait_until(lambda: publisher.get_subscription_count() >= count, timeout), (
            'no subscriber'
        )

    def close(self) -> None:
        self.executor_.shutdown()
        self.destroy_node()


# What the Makefile exports to keep DDS on this machine; a user's own shell has none of them.
MAKEFILE_DDS_VARIABLES = (
    'ROS_AUTOMATIC_DISCOVERY_RANGE',
    'FASTRTPS_DEFAULT_PROFILES_FILE',
    'FASTDDS_DEFAULT_PROFILES_FILE',
    'RMW_IMPLEMENTATION',
)


def without_dds_settings(keep_localhost: bool = False) -> dict[str, str]:
    """This process's environment as a user's shell has it: none of the Makefile's DDS settings
    (the test's own ROS_DOMAIN_ID stays, so tests stay apart). `keep_localhost` keeps discovery
    on this host for a node that gets no profile either."""
    env = {k: v for k, v in os.environ.items() if k not in MAKEFILE_DDS_VARIABLES}
    if keep_localhost:
        env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    return env


def statuses(probe: Probe, prefix: str) -> list:
    """Every DiagnosticStatus received on /diagnostics whose name starts with `prefix`."""
    return [
        s for a in probe.messages('/diagnostics') for s in a.status if s.name.startswith(prefix)
    ]


def diagnostic_value(probe: Probe, prefix: str, key: str) -> str | None:
    """The newest value of `key` in the newest status whose name starts with `prefix`."""
    for status in reversed(statuses(probe, prefix)):
        for pair in status.values:
            if pair.key == key:
                return pair.value
    return None


def versions_acted(probe: Probe) -> set[int]:
    """The weights versions named by the agent/step messages received so far."""
    return {
        int(dict(zip(m.name, m.position))['policy_version']) for m in probe.messages('agent/step')
    }


class OscRecorder:
    """A UDP OSC server on loopback recording packets in arrival order: (time, address, value)."""

    def __init__(self, port: int | None = None) -> None:
        dispatcher = Dispatcher()
        dispatcher.set_default_handler(self.handle)
        self.packets: list[tuple[float, str, object]] = []
        self.lock = threading.Lock()
        self.server = BlockingOSCUDPServer(('127.0.0.1', port or 0), dispatcher)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, address: str, *args) -> None:
        with self.lock:
            self.packets.append((time.monotonic(), address, args[0] if len(args) == 1 else args))

    def take(self) -> list[tuple[str, object]]:
        with self.lock:
            packets, self.packets = self.packets, []
        return [(address, value) for _, address, value in packets]

    def snapshot(self) -> list[tuple[float, str, object]]:
        with self.lock:
            return list(self.packets)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
