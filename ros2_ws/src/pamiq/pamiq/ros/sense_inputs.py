"""What the agent hears and feels at each frame, besides what it sees.

The agent steps once per camera frame; the other senses arrive at their own pace. This keeps
the newest of each: the log-mel spectrogram of the last second of `audio/pcm` (built as the
chunks come, pamiq.learning.hearing) and the newest `body/state`. At a frame the agent takes
them (`current`), acts on them and publishes them with the frame's stamp on `agent/hearing`
and `agent/body`, so the trainer learns from exactly what the agent perceived. A sense whose
input stopped for `missing_after` seconds (device unplugged, OSC stopped, node gone) is
missing: the agent goes on with the others and that sense's absent input (silence, a body
standing still), and diagnostics name it.
"""

from __future__ import annotations

import time

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Int16MultiArray

from pamiq.learning.hearing import LogMelStream
from pamiq.learning.sense_arrays import absent, extra_senses
from pamiq.ros import qos, topics
from pamiq.ros.diagnostics import OK, WARN
from pamiq.ros.sense_messages import SENSE_PARTS, audio_chunk, body_input, hearing_message
from pamiq.vrchat.avatar import BODY_FIELDS


class SenseInputs:
    def __init__(self, node: Node, senses: tuple[str, ...], missing_after: float = 1.0) -> None:
        self.node, self.missing_after = node, missing_after
        self.extras = extra_senses(senses)
        self.hearing = LogMelStream()
        self.body = absent('body')
        self.started = time.monotonic()
        self.last: dict[str, float] = {}  # sense -> monotonic time of its newest input
        self.received = dict.fromkeys(self.extras, 0)
        self.rejected = 0
        self.was_missing: tuple[str, ...] = ()
        # sense -> (its stream in, its callback, what the agent perceived out)
        wiring = {
            'hearing': (Int16MultiArray, topics.AUDIO_PCM, self.audio_callback, Image),
            'body': (JointState, topics.BODY_STATE, self.body_callback, JointState),
        }
        self.subs, self.pubs = [], {}
        for sense in self.extras:
            stream, topic, callback, perceived = wiring[sense]
            self.subs.append(node.create_subscription(stream, topic, callback, qos.SENSE))
            self.pubs[sense] = qos.publisher(node, perceived, SENSE_PARTS[sense], qos.OBSERVATION)

    def reject(self, sense: str, error: ValueError) -> None:
        self.rejected += 1
        self.node.get_logger().warning(
            f'{sense} input rejected: {error} ({self.rejected} so far)', throttle_duration_sec=5.0
        )

    def audio_callback(self, msg: Int16MultiArray) -> None:
        try:
            _, pcm = audio_chunk(msg)
        except ValueError as error:
            self.reject('hearing', error)
            return
        self.hearing.push(pcm)
        self.arrived('hearing')

    def body_callback(self, msg: JointState) -> None:
        try:
            self.body = body_input(msg)
        except ValueError as error:
            self.reject('body', error)
            return
        self.arrived('body')

    def arrived(self, sense: str) -> None:
        self.last[sense] = time.monotonic()
        self.received[sense] += 1

    def missing(self) -> tuple[str, ...]:
        now = time.monotonic()
        return tuple(
            sense
            for sense in self.extras
            if now - self.last.get(sense, self.started) > self.missing_after
        )

    def current(self) -> dict[str, np.ndarray]:
        """Each sense's input for the frame now: its newest, or its absent input if missing."""
        missing = self.missing()
        if missing != self.was_missing:
            gone = ', '.join(missing) or 'none'
            self.node.get_logger().warning(f'senses missing: {gone}; acting on the others')
            self.was_missing = missing
        if 'hearing' in missing:
            self.hearing.reset()  # a stale second must not be heard again and again
        inputs = {}
        if 'hearing' in self.extras:
            inputs['hearing'] = self.hearing.spectrogram()
        if 'body' in self.extras:
            inputs['body'] = absent('body') if 'body' in missing else self.body.copy()
        return inputs

    def publish(self, stamp, inputs: dict[str, np.ndarray]) -> None:
        """What the agent perceived at the frame with this stamp."""
        if 'hearing' in inputs:
            self.pubs['hearing'].publish(hearing_message(stamp, inputs['hearing']))
        if 'body' in inputs:
            msg = JointState(name=list(BODY_FIELDS), position=inputs['body'].tolist())
            msg.header.stamp = stamp
            self.pubs['body'].publish(msg)

    def check(self):
        missing = self.missing()
        values = {
            'senses': ', '.join(self.extras),
            'missing': ', '.join(missing) or 'none',
            'rejected sense inputs': self.rejected,
            **{f'{sense} inputs': count for sense, count in self.received.items()},
        }
        if missing:
            return WARN, f'missing: {", ".join(missing)} (acting on the others)', values
        return OK, f'hearing and feeling: {", ".join(self.extras)}', values
