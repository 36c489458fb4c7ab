"""The hearing topics of a node that hears (audio_node, the Doom world): audio/pcm, audio/level
and the latched audio/format, as pamiq.ros.sense_messages lays them out."""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import Float32, Int16MultiArray, String

from pamiq.media.audio import SILENCE_DBFS, Chunk, format_description, level_dbfs
from pamiq.ros import qos, topics
from pamiq.ros.diagnostics import RateMeter
from pamiq.ros.sense_messages import audio_message, format_message


class AudioPublisher:
    def __init__(self, node: Node, source: str) -> None:
        self.pcm_pub = qos.publisher(node, Int16MultiArray, topics.AUDIO_PCM, qos.SENSE)
        self.level_pub = qos.publisher(node, Float32, topics.AUDIO_LEVEL, qos.DEFAULT)
        self.format_pub = qos.publisher(node, String, topics.AUDIO_FORMAT, qos.LATCHED)
        self.meter = RateMeter(node.get_clock())
        self.chunks = 0
        self.level = SILENCE_DBFS
        self.announce(source)

    def announce(self, source: str) -> None:
        """State the format and where the sound comes from (again when the source changes)."""
        self.source = source
        self.format_pub.publish(format_message(format_description(source)))

    def publish(self, chunk: Chunk) -> None:
        self.pcm_pub.publish(audio_message(chunk.stamp_ns, chunk.pcm))
        self.level = level_dbfs(chunk.pcm)
        self.level_pub.publish(Float32(data=self.level))
        self.chunks += 1
        self.meter.tick()

    def values(self) -> dict[str, object]:
        """What diagnostics show of the stream."""
        return {
            'audio source': self.source,
            'chunks published': self.chunks,
            'chunk rate (Hz)': self.meter.rate(),
            'level (dBFS)': self.level,
        }
