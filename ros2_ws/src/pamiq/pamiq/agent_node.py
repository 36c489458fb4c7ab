"""agent_node: turns each new camera frame into one action (pamiq-core's observe -> step).

Per frame: convert to RGB, crop the centre square and resize to 84x84 like the original,
publish it on `agent/observation`, decide, and publish `action` (VRChat input names and values)
with the frame's stamp, so a frame, its observation and its action share one stamp.
"""

from __future__ import annotations

import time

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from pamiq import qos, spin
from pamiq.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image
from pamiq.parameters import declare
from pamiq.preprocessing import preprocess
from pamiq.random_policy import RandomPolicy


class Agent(Node):
    def __init__(self) -> None:
        super().__init__('agent')
        policy = declare(
            self, 'policy', 'random', 'How actions are chosen', choices=('random',), read_only=True
        )
        action_space = declare(
            self,
            'action_space',
            'continuous',
            "'continuous': 3 axes in [-1, 1]; 'discrete': the (3,3,3,2,2) buttons",
            choices=('continuous', 'discrete'),
            read_only=True,
        )
        report_period = declare(
            self,
            'report_period',
            10.0,
            'Seconds between progress lines in the log (0: none)',
            low=0.0,
            high=3600.0,
            read_only=True,
        )
        seed = declare(
            self,
            'seed',
            0,
            'Seed of the policy sampling (-1: from entropy)',
            low=-1,
            high=2**31 - 1,
            read_only=True,
        )

        self.policy = RandomPolicy(action_space, None if seed < 0 else seed)
        self.steps = 0
        self.rejected_frames = 0
        self.step_ms: list[float] = []
        self.reported_steps = 0

        self.observation_pub = self.create_publisher(Image, 'agent/observation', qos.OBSERVATION)
        self.action_pub = self.create_publisher(JointState, 'action', qos.ACTION)
        self.image_sub = self.create_subscription(
            Image, 'camera/image_raw', self.image_callback, qos.IMAGE
        )
        if report_period > 0:
            self.report_timer = self.create_timer(report_period, self.report_callback)
        self.report_period = report_period
        self.get_logger().info(f'{policy} policy, {action_space} actions')

    def image_callback(self, msg: Image) -> None:
        started = time.perf_counter()
        try:
            frame = image_to_numpy(msg, 'rgb8')
        except ImageConversionError as error:
            self.rejected_frames += 1
            self.get_logger().warning(
                f'frame rejected: {error} ({self.rejected_frames} so far)',
                throttle_duration_sec=5.0,
            )
            return
        observation = preprocess(frame)
        names, values = self.policy.step(observation)

        self.observation_pub.publish(
            numpy_to_image(observation, 'rgb8', msg.header.stamp, msg.header.frame_id)
        )
        action = JointState()
        action.header.stamp = msg.header.stamp
        action.name = names
        action.position = values
        self.action_pub.publish(action)
        self.steps += 1
        self.step_ms.append((time.perf_counter() - started) * 1e3)

    def report_callback(self) -> None:
        count = self.steps - self.reported_steps
        self.reported_steps = self.steps
        median = sorted(self.step_ms)[len(self.step_ms) // 2] if self.step_ms else 0.0
        self.step_ms.clear()
        self.get_logger().info(
            f'acting at {count / self.report_period:.1f} Hz ({self.steps} actions so far, '
            f'step median {median:.1f} ms, {self.rejected_frames} frames rejected)'
        )


def main(args: list[str] | None = None) -> int:
    return spin.run(Agent, args)


if __name__ == '__main__':
    raise SystemExit(main())
