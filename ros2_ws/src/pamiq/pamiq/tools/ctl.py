"""`pamiq ctl pause|resume|save|status`: the graph's services for people without the ROS 2 CLI."""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from pamiq.ros import topics
from pamiq.ros.diagnostics import LEVEL_NAMES, DiagnosticsCollector


def call(node: Node, service_type, name: str, request, timeout: float) -> object | None:
    client = node.create_client(service_type, name)
    if not client.wait_for_service(timeout_sec=timeout):
        return None
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    return future.result()


def status_lines(node: Node, seconds: float) -> list[str]:
    collector = DiagnosticsCollector(node)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    return [
        f'{LEVEL_NAMES.get(s.level, "?"):<5} {name}: {s.message}'
        + ''.join(f'\n        {kv.key}: {kv.value}' for kv in s.values)
        for name, s in sorted(collector.latest.items())
    ]


def ctl(verb: str, namespace: str = 'pamiq', timeout: float = 5.0, say=print) -> int:
    rclpy.init(args=[])
    node = Node('pamiq_ctl')
    try:
        if verb in ('pause', 'resume'):
            active = verb == 'resume'
            code = 0
            for target, service in (
                ('agent', topics.AGENT_SET_ACTIVE),
                ('trainer', topics.TRAINER_SET_ACTIVE),
            ):
                name = topics.namespaced(namespace, service)
                reply = call(node, SetBool, name, SetBool.Request(data=active), timeout)
                if reply is None:
                    say(f'{target}: no {name} service (is it running?)')
                    code = 1 if target == 'agent' else code
                else:
                    say(f'{target}: {reply.message}')
            return code
        if verb == 'save':
            name = topics.namespaced(namespace, topics.TRAINER_SAVE)
            reply = call(node, Trigger, name, Trigger.Request(), timeout * 6)
            if reply is None:
                say(f'no {name} service (is the trainer running?)')
                return 1
            say(('checkpoint ' if reply.success else '') + reply.message)
            return 0 if reply.success else 1
        if verb == 'status':
            lines = status_lines(node, 3.0)
            say(
                '\n'.join(lines)
                if lines
                else 'no /diagnostics received in 3 s: is the graph running?'
            )
            return 0 if lines else 1
        raise ValueError(f'unknown ctl verb {verb!r}')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
