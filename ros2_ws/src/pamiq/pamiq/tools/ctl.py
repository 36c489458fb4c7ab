"""`pamiq ctl pause|resume|save|status`: the graph's services for people without the ROS 2 CLI.

Pause and resume reach every actor's agent (found by its `agent/set_active` service, in the
namespace itself or an actor namespace below it) and the trainer.
"""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from pamiq.ros import topics
from pamiq.ros.actors import actor_pattern
from pamiq.ros.diagnostics import LEVEL_NAMES, DiagnosticsCollector

# Discovery finds other actors' agents one participant at a time (slowly on a loaded machine): a
# search ends once what it knows has not grown for this long and every actor (or node) it knows
# of has answered.
SETTLE = 2.0
UNKNOWN_NODE_NAME = '_NODE_NAME_UNKNOWN_'


class DiscoverySearch:
    """A search of the graph that lasts at most `timeout`: settled once what it has found has
    not grown for SETTLE."""

    def __init__(self, timeout: float) -> None:
        self.deadline = self.settles_at = time.monotonic() + timeout
        self.found: set[str] = set()

    def saw(self, names: set[str]) -> None:
        if not names <= self.found:
            self.found |= names
            self.settles_at = min(self.deadline, time.monotonic() + SETTLE)

    def settled(self) -> bool:
        return time.monotonic() >= self.settles_at

    def over(self) -> bool:
        return time.monotonic() >= self.deadline


def call(node: Node, service_type, name: str, request, timeout: float) -> object | None:
    client = node.create_client(service_type, name)
    if not client.wait_for_service(timeout_sec=timeout):
        return None
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    return future.result()


def known_actors(node: Node, namespace: str) -> set[str]:
    """Actors the graph names so far: by an agent node, by a publisher of their `agent/step`,
    or (below the namespace) by any endpoint of it.

    The trainer and the recorder subscribe to every actor's steps once they have seen it, so
    their participant alone (often discovered long before the agent's own, on a loaded machine)
    names every actor. They subscribe to the namespace's own steps from the start, so there a
    subscriber names no one.
    """
    own = topics.namespaced(namespace, topics.STEP)
    steps = actor_pattern(namespace)
    agents = actor_pattern(namespace, 'agent')
    names = [
        name
        for name, _ in node.get_topic_names_and_types()
        if name != own or node.count_publishers(name) > 0
    ]
    names += [f'{ns.rstrip("/")}/{name}' for name, ns in node.get_node_names_and_namespaces()]
    return {m.group(1) for name in names if (m := steps.match(name) or agents.match(name))}


def agent_services(node: Node, namespace: str, timeout: float) -> tuple[list[str], list[str]]:
    """Every actor's agent/set_active service in `namespace` once discovery has found them, and
    the actors known (see known_actors) whose service did not appear within `timeout` (an actor
    that left, whose steps the trainer still subscribes to, or one discovery has not reached)."""
    pattern = actor_pattern(namespace, topics.AGENT_SET_ACTIVE)
    search = DiscoverySearch(timeout)
    while True:
        services = {
            m.group(1): name
            for name, _ in node.get_service_names_and_types()
            if (m := pattern.match(name))
        }
        known = known_actors(node, namespace) | set(services)
        search.saw(known)
        if (search.settled() and known <= set(services)) or search.over():
            return sorted(services.values()), sorted(known - set(services))
        rclpy.spin_once(node, timeout_sec=0.1)


def diagnostics_publishers(node: Node) -> set[str]:
    """The nodes publishing /diagnostics, named as their statuses are ('pamiq/actor0/world')."""
    return {
        f'{info.node_namespace.strip("/")}/{info.node_name}'.lstrip('/')
        for info in node.get_publishers_info_by_topic(topics.DIAGNOSTICS)
        # Discovery can know an endpoint a moment before its node's name ('_NODE_NAME_UNKNOWN_').
        if info.node_name not in (node.get_name(), UNKNOWN_NODE_NAME)
    }


def status_lines(node: Node, seconds: float, namespace: str) -> list[str]:
    """Every node's newest status, listened for up to `seconds`: sooner once each node that
    publishes /diagnostics has been heard, so has each node that actors are alike in (see
    alike_nodes), and discovery has found no new one for SETTLE. A node expected and not heard
    gets a line of its own."""
    collector = DiagnosticsCollector(node)
    search = DiscoverySearch(seconds)
    expected: set[str] = set()
    while not search.over():
        rclpy.spin_once(node, timeout_sec=0.1)
        publishers = diagnostics_publishers(node)
        expected = publishers | alike_nodes(
            collector.nodes(), known_actors(node, namespace), namespace
        )
        search.saw(expected)
        if publishers and expected <= collector.nodes() and search.settled():
            break
    lines = [
        f'{LEVEL_NAMES.get(s.level, "?"):<5} {name}: {s.message}'
        + ''.join(f'\n        {kv.key}: {kv.value}' for kv in s.values)
        for name, s in sorted(collector.latest.items())
    ]
    if collector.latest:
        lines += [
            f'?     {name}: not heard in {seconds:g} s'
            for name in sorted(expected - collector.nodes())
        ]
    return lines


def alike_nodes(heard: set[str], actors: set[str], namespace: str) -> set[str]:
    """The nodes of every actor below the namespace that one of them has ('pamiq/actor1/world'
    heard: 'pamiq/actor0/world' too). On a loaded machine discovery can find one actor's
    participants seconds after another's, and actors are alike."""
    below = {actor.strip('/') for actor in actors} - {namespace.strip('/')}
    roles = {
        node.removeprefix(f'{actor}/')
        for node in heard
        for actor in below
        if node.startswith(f'{actor}/') and '/' not in node.removeprefix(f'{actor}/')
    }
    return {f'{actor}/{role}' for actor in below for role in roles}


def ctl(verb: str, namespace: str, listen: float, timeout: float = 5.0, say=print) -> int:
    rclpy.init(args=[])
    node = Node('pamiq_ctl')
    try:
        if verb in ('pause', 'resume'):
            request = SetBool.Request(data=verb == 'resume')
            agents, missing = agent_services(node, namespace, timeout)
            if not agents:
                say(f'no agent/set_active service in /{namespace.strip("/")} (is it running?)')
            for actor in missing:  # most likely gone: the trainer keeps its subscriptions
                say(
                    f'{actor}: its steps are subscribed to but no agent/set_active service '
                    f'appeared in {timeout:g} s (the actor left, or discovery is slower)'
                )
            code = 0 if agents else 1
            for name in agents:
                reply = call(node, SetBool, name, request, timeout)
                agent = name.removesuffix('/set_active')  # '/pamiq/actor1/agent'
                if reply is None:
                    say(f'{agent}: no answer from {name}')
                    code = 1
                else:
                    say(f'{agent}: {reply.message}')
            name = topics.namespaced(namespace, topics.TRAINER_SET_ACTIVE)
            reply = call(node, SetBool, name, request, timeout)
            say(f'trainer: {reply.message}' if reply else f'trainer: no {name} service')
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
            lines = status_lines(node, listen, namespace)
            say(
                '\n'.join(lines)
                if lines
                else f'no /diagnostics received in {listen:g} s: is the graph running? (a '
                'paused lockstep graph stops simulated time, and its diagnostics with it)'
            )
            return 0 if lines else 1
        raise ValueError(f'unknown ctl verb {verb!r}')
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
