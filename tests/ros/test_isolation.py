"""pamiq.ros.isolation: a node of a secure graph that discovery left out ends, and is started
again. The real discovery server over TLS: tests/test_multihost.py."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap

from pamiq.ros.isolation import (
    ISOLATED_AFTER,
    ISOLATED_AFTER_VARIABLE,
    ISOLATED_EXIT,
    WATCH_VARIABLE,
    connected_to,
    isolated_after,
    watch_setting,
    watch_value,
)
from pamiq.ros.transport import NetworkPlan, parse_transport
from pamiq.tools.certs import make_certs
from pamiq.tools.graph import NodeSpec, respawns
import pytest
import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rosgraph import wait_until

# A node process that holds a TCP connection to a port the test listens on: what its
# connection to the discovery server is to a pamiq node.
CONNECTED_NODE = textwrap.dedent(
    """
    import socket, sys
    from rclpy.node import Node
    from pamiq.ros import spin

    class Lonely(Node):
        def __init__(self):
            super().__init__(sys.argv[2])
            if sys.argv[1] == 'connect':
                self.server = socket.create_connection(('127.0.0.1', int(sys.argv[3])))
            print('started', flush=True)

        def shutdown(self):
            print('cleaned up', flush=True)

    raise SystemExit(spin.run(Lonely, []))
    """
)


def listener() -> socket.socket:
    server = socket.create_server(('127.0.0.1', 0))
    server.listen()
    return server


def test_connected_to_counts_only_this_processes_established_connections():
    server = listener()
    port = server.getsockname()[1]
    assert not connected_to(port)  # listening is not connected
    elsewhere = subprocess.Popen(
        [sys.executable, '-c', f'import socket,time; s=socket.create_connection(("127.0.0.1",'
         f' {port})); print("in", flush=True); time.sleep(30)'],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert elsewhere.stdout.readline() == 'in\n'
        accepted, _ = server.accept()
        assert not connected_to(port)  # another process's, and the accepted end's
        client = socket.create_connection(('127.0.0.1', port))
        assert connected_to(port)
        client.close()
        assert not connected_to(port)
        accepted.close()
    finally:
        elsewhere.kill()
        elsewhere.wait()
        server.close()


def test_only_a_secure_graph_watches_for_isolation(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'certs'), ['trainer'])
    secure = parse_transport('lan', 'server', 'true', trainer, '')
    plan = NetworkPlan(secure, str(tmp_path / 'hub'), ['trainer'], 'pamiq')
    port = secure.server.port
    # Every process of the host: nodes, restarted ones, and the ROS tools' file alike.
    assert plan.environment('trainer')[WATCH_VARIABLE] == watch_value(port)
    assert plan.restart_environment('trainer')[WATCH_VARIABLE] == watch_value(port)
    assert f'export {WATCH_VARIABLE}=' in open(plan.tools_env).read()
    assert watch_setting({WATCH_VARIABLE: watch_value(port, 3)}) == (port, 3.0)
    assert watch_setting({}) is None and watch_setting({WATCH_VARIABLE: 'x'}) is None
    # PAMIQ_ISOLATED_AFTER replaces the 20 s for the graph's processes; nonsense is refused.
    assert isolated_after({}) == ISOLATED_AFTER
    assert isolated_after({ISOLATED_AFTER_VARIABLE: '45'}) == 45.0
    for bad in ('0', '-3', 'soon'):
        with pytest.raises(ValueError, match=ISOLATED_AFTER_VARIABLE):
            isolated_after({ISOLATED_AFTER_VARIABLE: bad})
    udp = parse_transport('lan', 'server', 'false', '', '')
    plan = NetworkPlan(udp, str(tmp_path / 'udp'), ['trainer'], 'pamiq')
    assert WATCH_VARIABLE not in plan.environment('trainer')


def test_any_node_left_out_starts_again_and_other_exits_keep_their_rule():
    world = NodeSpec('doom_world_node', 'world')
    trainer = NodeSpec('trainer_node', 'trainer', respawn=True)
    assert respawns(world, ISOLATED_EXIT) and respawns(trainer, ISOLATED_EXIT)
    assert not respawns(world, 1) and respawns(trainer, 1)
    assert not respawns(world, 0) and not respawns(trainer, 0)


class LonelyNode:
    """A CONNECTED_NODE process, its output in a file: a pipe nobody reads could fill with
    Fast DDS's warnings and block the node where it writes them."""

    def __init__(self, directory, port: int, name: str, seconds: float, connect: bool = True):
        self.path = directory / f'{name}.log'
        env = {**os.environ, WATCH_VARIABLE: watch_value(port, seconds)}
        how = 'connect' if connect else 'stay'
        with open(self.path, 'w') as log:
            self.process = subprocess.Popen(
                [sys.executable, '-c', CONNECTED_NODE, how, name, str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def output(self) -> str:
        return self.path.read_text()

    def started(self) -> bool:
        return wait_until(lambda: 'started' in self.output(), 30.0)

    def stop(self) -> int | None:
        """Ctrl-C; a clean-up stuck for 20 s is ended by SIGTERM, which writes its stacks."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait(10)
            return None


def test_a_connected_node_that_finds_nobody_ends_isolated_after_cleaning_up(tmp_path):
    server = listener()
    node = LonelyNode(tmp_path, server.getsockname()[1], 'lonely', 2.0)
    try:
        node.process.wait(30)
    finally:
        node.process.kill()
        server.close()
    output = node.output()
    assert node.process.returncode == ISOLATED_EXIT, output
    assert 'yet no other ROS node discovered' in output
    assert output.index('started') < output.index('cleaned up')


def test_a_node_that_found_another_is_not_isolated_and_one_without_its_server_waits(tmp_path):
    server = listener()
    port = server.getsockname()[1]
    context = Context()
    rclpy.init(context=context)
    company = Node('company', context=context)
    found = LonelyNode(tmp_path, port, 'found', 2.0)
    # Not connected to the server it was told of: the server is not up yet.
    waiting = LonelyNode(tmp_path, port, 'waiting', 2.0, connect=False)
    try:
        assert found.started() and waiting.started()
        assert not wait_until(lambda: found.process.poll() is not None, 6.0), found.output()
        # Having found a node it stops watching: that node leaving is not isolation.
        company.destroy_node()
        assert not wait_until(lambda: found.process.poll() is not None, 5.0), found.output()
        assert waiting.process.poll() is None, waiting.output()
    finally:
        codes = found.stop(), waiting.stop()
        rclpy.try_shutdown(context=context)
        server.close()
    assert codes == (0, 0), found.output() + waiting.output()
