"""A process that discovery left out, over TCP + TLS, ends so that it is started again.

Fast DDS 2.14 (the Jazzy wheels) now and then leaves one participant of a secure graph out: its
TLS connection to the discovery server is up, but discovery through it never completes, nobody
finds it and it finds nobody, and nothing in Fast DDS reconnects it (docs/scale.md: "The known
Fast DDS issue: discovery over TCP + TLS"). A new process makes a new connection, and that has
found its peers.

So with `secure:=true` every pamiq node watches itself: connected to the server, yet no other
ROS node discovered for `seconds`, it ends with ISOLATED_EXIT, and `pamiq up` and the launch
file start it again (on the server's host on a listening port of its own). Once it has found
another node it stops watching: later silence is peers leaving, not this. `pamiq up` keeps a
participant of its own on every secure host (pamiq.tools.status), so that a node alone there
(a trainer whose actors have not started) still has somebody to find.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rest is plain Python: pamiq.ros.transport reads the constants
    from rclpy.node import Node

# "<server port> <seconds>": set by NetworkPlan for every process of a secure graph.
WATCH_VARIABLE = 'PAMIQ_ISOLATION_WATCH'
ISOLATED_EXIT = 75  # sysexits' EX_TEMPFAIL: try again
# Discovery through a reachable server takes 1-3 s here; a start-up on a loaded 2-core machine
# some more. PAMIQ_ISOLATED_AFTER (seconds) replaces it for a graph that `pamiq up` or the launch
# file starts: longer on a slower machine, shorter in the tests.
ISOLATED_AFTER = 20.0
ISOLATED_AFTER_VARIABLE = 'PAMIQ_ISOLATED_AFTER'
CHECK_PERIOD = 1.0
FOUND_MESSAGE = 'discovered other ROS nodes over the discovery server: not isolated'
ESTABLISHED = '01'  # the `st` column of /proc/net/tcp


class Isolated(Exception):
    """This process is connected to the discovery server, and discovered by nobody."""


def watch_setting(environ: dict[str, str] | None = None) -> tuple[int, float] | None:
    """(server port, seconds) from the environment, or None: not a secure graph's process."""
    value = (os.environ if environ is None else environ).get(WATCH_VARIABLE, '')
    try:
        port, seconds = value.split()
        return int(port), float(seconds)
    except ValueError:
        return None


def watch_value(server_port: int, seconds: float | None = None) -> str:
    """The watch setting for a server's port; `seconds` defaults to PAMIQ_ISOLATED_AFTER from
    the environment, else ISOLATED_AFTER.

    Raises:
        ValueError: PAMIQ_ISOLATED_AFTER is not a number of seconds above 0.
    """
    if seconds is None:
        seconds = isolated_after(os.environ)
    return f'{server_port} {seconds:g}'


def isolated_after(environ) -> float:
    value = environ.get(ISOLATED_AFTER_VARIABLE, '')
    if not value:
        return ISOLATED_AFTER
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f'{ISOLATED_AFTER_VARIABLE} must be seconds above 0, got {value!r}')
    return seconds


def own_socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir('/proc/self/fd'):
        try:
            target = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:  # closed meanwhile
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:[') : -1])
    return inodes


def connected_to(port: int) -> bool:
    """Whether this process has an established TCP connection to `port` (any address).

    Linux only (/proc); elsewhere it says False, and nothing is ever judged isolated.
    """
    try:
        inodes = own_socket_inodes()
    except OSError:
        return False
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            with open(table) as stream:
                rows = stream.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            remote_port = int(remote.rsplit(':', 1)[1], 16)
            if state == ESTABLISHED and remote_port == port and inode in inodes:
                return True
    return False


def others_discovered(node: Node) -> bool:
    me = (node.get_name(), node.get_namespace())
    return any(entry != me for entry in node.get_node_names_and_namespaces())


class IsolationWatch:
    """Raises Isolated from its timer (out of the node's spin) once `node` has been connected
    to the server on `server_port` for `seconds` without discovering any other node."""

    def __init__(self, node: Node, server_port: int, seconds: float) -> None:
        from pamiq.ros.diagnostics import steady_clock

        self.node, self.server_port, self.seconds = node, server_port, seconds
        self.alone_since: float | None = None
        self.timer = node.create_timer(CHECK_PERIOD, self.check, clock=steady_clock())

    def check(self) -> None:
        if others_discovered(self.node):
            self.timer.cancel()  # found: from here on silence is peers leaving
            self.node.get_logger().info(FOUND_MESSAGE)
            return
        if not connected_to(self.server_port):  # the server is not up (yet): wait for it
            self.alone_since = None
            return
        now = time.monotonic()
        if self.alone_since is None:
            self.alone_since = now
        elif now - self.alone_since >= self.seconds:
            raise Isolated(
                f'connected to the discovery server (port {self.server_port}) for '
                f'{self.seconds:g} s, yet no other ROS node discovered: Fast DDS left this '
                'participant out; ending so that it is started again with a new connection'
            )


def watch_isolation(node: Node) -> IsolationWatch | None:
    """Watch `node` when the environment says this process is part of a secure graph."""
    setting = watch_setting()
    return None if setting is None else IsolationWatch(node, *setting)
