"""`pamiq replay`: publish recorded bags back onto their topics with the original timing.

Messages go out still serialized (the bytes the recorder stored), at their recorded spacing
divided by `rate`, optionally looped, from a start offset, for a topic selection, with remaps
(e.g. agent/observation:=camera/image_raw feeds an agent without a world: open loop), and with
`/clock` set to each message's recorded time so nodes started with use_sim_time follow it.
"""

from __future__ import annotations

from collections.abc import Callable
import time

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from pamiq.ros import qos, topics
from pamiq.ros.bags import BagMessage, message_class, read_messages

# Seconds a replay waits, after its last message, for reliable subscribers to have them all.
DELIVERY_LIMIT = 5.0


def selected(topic: str, names: list[str]) -> bool:
    """A topic is selected by its full name or by its name relative to the namespace."""
    return not names or any(topics.matches(topic, name) for name in names)


def remapped(topic: str, remaps: dict[str, str]) -> str:
    """The topic a remap sends `topic` to; a relative target stays in the topic's namespace."""
    for source, target in remaps.items():
        if topics.matches(topic, source):
            if target.startswith('/') or source.startswith('/'):
                return target if target.startswith('/') else '/' + target
            return topic[: len(topic) - len(source)] + target
    return topic


class Replayer(Node):
    def __init__(self, publish_clock: bool) -> None:
        super().__init__('replay')
        self.pubs: dict[str, object] = {}
        self.clock_pub = qos.publisher(self, Clock, '/clock', 10) if publish_clock else None

    def advertise(self, topic: str, msgtype: str) -> None:
        profile = qos.IMAGE_PUBLISHER if topics.matches(topic, topics.IMAGE) else qos.OBSERVATION
        self.pubs[topic] = qos.publisher(self, message_class(msgtype), topic, profile)

    def publish(self, topic: str, stamp_ns: int, data: bytes) -> None:
        if self.clock_pub is not None:
            clock = Clock()
            clock.clock.sec, clock.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
            self.clock_pub.publish(clock)
        self.pubs[topic].publish(data)

    def deliver(self, limit: float) -> bool:
        """Wait up to `limit` seconds for every reliable subscriber to acknowledge what was
        published: a publisher destroyed at once takes its last unacknowledged messages with it
        (seen as a replay's last messages missing on a loaded machine)."""
        deadline = time.monotonic() + limit
        for publisher in self.pubs.values():
            left = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(Duration(seconds=left)):
                return False
        return True


def wait_for_discovery(node: Replayer, minimum: float, limit: float = 5.0) -> None:
    """Wait `minimum` seconds, then until the subscriber counts have been steady for 0.5 s.

    The counts are what this side has matched; a subscriber may take longer to match us (a
    loaded machine), and a volatile one drops what came before: give slow graphs a longer
    `minimum` (`pamiq replay --delay`).
    """
    started = time.monotonic()
    counts, steady_since = None, started
    while time.monotonic() - started < limit:
        now_counts = [pub.get_subscription_count() for pub in node.pubs.values()]
        if now_counts != counts:
            counts, steady_since = now_counts, time.monotonic()
        if time.monotonic() - started >= minimum and time.monotonic() - steady_since >= 0.5:
            return
        time.sleep(0.05)


def replay(
    paths: list[str],
    rate: float = 1.0,
    loop: bool = False,
    start: float = 0.0,
    topics: list[str] | None = None,
    remaps: dict[str, str] | None = None,
    publish_clock: bool = True,
    say: Callable[[str], None] = print,
    discovery_wait: float = 1.0,
) -> int:
    """Play the bags; returns the number of messages published. Ctrl-C stops it."""
    if rate <= 0:
        raise ValueError(f'rate must be positive, got {rate}')
    topics, remaps = topics or [], remaps or {}
    rclpy.init(args=[])
    node = Replayer(publish_clock)
    published = 0
    try:
        messages: list[BagMessage] = [m for m in read_messages(paths) if selected(m.topic, topics)]
        if not messages:
            say('nothing to replay: no message of the selected topics')
            return 0
        first = messages[0].timestamp + int(start * 1e9)
        messages = [m for m in messages if m.timestamp >= first]
        span = (messages[-1].timestamp - first) / 1e9 if messages else 0.0
        # Publishers first, then a pause: subscribers match before the first message goes out.
        for topic, msgtype in {(remapped(m.topic, remaps), m.msgtype) for m in messages}:
            node.advertise(topic, msgtype)
        wait_for_discovery(node, discovery_wait)
        say(
            f'replaying {len(messages)} messages over {span:.1f} s at rate {rate:g}'
            + (' (looping)' if loop else '')
        )
        while True:
            wall_start = time.monotonic()
            last_report = wall_start
            for message in messages:
                due = wall_start + (message.timestamp - first) / 1e9 / rate
                while (remaining := due - time.monotonic()) > 0:
                    time.sleep(min(remaining, 0.05))
                if not rclpy.ok():  # SIGTERM: rclpy shut the context down
                    say(f'stopped after {published} messages')
                    return published
                node.publish(remapped(message.topic, remaps), message.timestamp, message.data)
                published += 1
                if time.monotonic() - last_report > 5.0:
                    last_report = time.monotonic()
                    say(
                        f'{(message.timestamp - first) / 1e9:.1f} / {span:.1f} s, '
                        f'{published} messages'
                    )
            if not loop:
                break
        if not node.deliver(DELIVERY_LIMIT):
            say(f'some subscriber did not acknowledge the last messages within {DELIVERY_LIMIT} s')
        say(f'replayed {published} messages')
        return published
    except KeyboardInterrupt:
        say(f'stopped after {published} messages')
        return published
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
