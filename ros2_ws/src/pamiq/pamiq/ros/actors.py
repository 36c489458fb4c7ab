"""Finding the graph's actors: each is a namespace with an agent publishing `agent/step`.

One actor (the default graph) is the namespace itself, `/pamiq`; with `actors:=N` or actors on
other hosts each lives in a namespace of its own below it, `/pamiq/actor0`, `/pamiq/actor1`, ...
The trainer and the recorder follow them through the ROS graph, so an actor started later (on
another host, after the trainer) is picked up without a restart, and one that leaves (its
`agent/step` has no publisher any more) is reported while the rest go on.
"""

from __future__ import annotations

from collections.abc import Callable
import re

from rclpy.node import Node

from pamiq.ros import topics
from pamiq.ros.diagnostics import steady_clock

STEP_TYPE = 'sensor_msgs/msg/JointState'


def actor_pattern(namespace: str, name: str = topics.STEP) -> re.Pattern[str]:
    """Matches the topic or service `name` (relative) of an actor in `namespace`: in the
    namespace itself or one level down. Group 1 is the actor's namespace."""
    base = re.escape(topics.namespaced(namespace, '').rstrip('/'))
    return re.compile(f'^({base}(?:/[^/]+)?)/{re.escape(name)}$')


class ActorDiscovery:
    """Calls `joined(actor)` when an actor's agent starts publishing and `left(actor)` when the
    last publisher of its `agent/step` is gone (an actor that comes back joins again)."""

    def __init__(
        self,
        node: Node,
        joined: Callable[[str], None],
        left: Callable[[str], None],
        period: float = 1.0,
    ) -> None:
        self.node, self.joined, self.left = node, joined, left
        self.pattern = actor_pattern(node.get_namespace())
        self.active: set[str] = set()
        self.departed: set[str] = set()
        # Wall time: an actor in lockstep is no less present while its world waits.
        self.timer = node.create_timer(period, self.scan, clock=steady_clock())

    def scan(self) -> None:
        present = set()
        for name, types in self.node.get_topic_names_and_types():
            match = self.pattern.match(name)
            if match and STEP_TYPE in types and self.node.count_publishers(name) > 0:
                present.add(match.group(1))
        for actor in sorted(present - self.active):
            self.active.add(actor)
            self.departed.discard(actor)
            self.joined(actor)
        for actor in sorted(self.active - present):
            self.active.discard(actor)
            self.departed.add(actor)
            self.left(actor)

    def actors(self) -> list[str]:
        """The active actors, sorted (a copy: other threads may read it)."""
        return sorted(self.active)
