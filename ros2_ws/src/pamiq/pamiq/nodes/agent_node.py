"""agent_node: turns each new camera frame into one action (pamiq-core's observe -> step).

Per frame: convert to RGB, crop the centre square and resize to 84x84 like the original,
publish it on `agent/observation`, decide, and publish `action` (VRChat input names and values)
with the frame's stamp, so a frame, its observation and its action share one stamp. With the
curiosity policy it also publishes `agent/step` (what PPO needs) and `agent/reward`, and takes
new weights from `trainer/weights`, validated off the acting path and swapped between steps.
"""

from __future__ import annotations

import array
from collections import deque
import queue
import threading
import time

from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray
from std_srvs.srv import SetBool
import torch

from pamiq import vrchat
from pamiq.learning.preprocessing import preprocess
from pamiq.learning.random_policy import RandomPolicy
from pamiq.ros import messages, qos, spin
from pamiq.ros.diagnostics import ERROR, OK, Diagnostics, RateMeter, rate_level
from pamiq.ros.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image
from pamiq.ros.parameters import declare
from pamiq.storage.checkpoint import load_latest_checkpoint
from pamiq.storage.weights import WeightsError, unpack_weights


class Agent(Node):
    def __init__(self) -> None:
        super().__init__('agent')
        d = lambda *a, **k: declare(self, *a, **k)
        policy = d(
            'policy',
            'curiosity',
            'How actions are chosen',
            choices=('curiosity', 'random'),
            read_only=True,
        )
        self.action_space = d(
            'action_space', 'continuous', "'continuous': 3 axes; 'discrete': (3,3,3,2,2) buttons",
            choices=('continuous', 'discrete'), read_only=True,
        )  # fmt: skip
        encoder = d(
            'encoder',
            'inverse_dynamics',
            'Must match the trainer',
            choices=('inverse_dynamics', 'vae'),
            read_only=True,
        )
        run_dir = d('run_dir', '', 'Start from the newest checkpoint here, if any', read_only=True)
        seed = d(
            'seed',
            0,
            'Seed of initial weights and sampling (-1: entropy)',
            low=-1,
            high=2**31 - 1,
            read_only=True,
        )
        self.expected_rate = d(
            'expected_rate',
            10.0,
            'Action rate below which diagnostics warn (80 %)',
            low=0.1,
            high=120.0,
        )
        threads = d(
            'torch_threads',
            1,
            'CPU threads for inference (the trainer keeps a core)',
            low=1,
            high=64,
            read_only=True,
        )
        self.report_period = d(
            'report_period',
            10.0,
            'Seconds between progress lines (0: none)',
            low=0.0,
            high=3600.0,
            read_only=True,
        )

        torch.set_num_threads(threads)
        self.learning = policy == 'curiosity'
        if self.learning:
            from pamiq.learning.curiosity_policy import CuriosityPolicy

            self.policy = CuriosityPolicy(encoder, self.action_space, max(seed, 0))
            self.resume(run_dir)
        else:
            self.policy = RandomPolicy(self.action_space, None if seed < 0 else seed)
        self.steps = 0
        self.rejected_frames = 0
        self.rejected_weights = 0
        self.reported_steps = 0
        self.last_frame = 0.0
        self.active = True
        self.frames = RateMeter()
        self.acted = RateMeter()
        self.latencies: deque[float] = deque(maxlen=100)  # ms of the last 100 steps

        self.observation_pub = self.create_publisher(Image, 'agent/observation', qos.OBSERVATION)
        self.action_pub = self.create_publisher(JointState, 'action', qos.ACTION)
        if self.learning:
            self.step_pub = self.create_publisher(JointState, 'agent/step', qos.STEP)
            self.reward_pub = self.create_publisher(Float32, 'agent/reward', qos.DEFAULT)
            # Validating a blob takes longer than a step: a worker thread does it, so the
            # executor only hands the bytes over and acting never waits for it.
            self.weights_queue: queue.Queue[array.array] = queue.Queue(maxsize=1)
            self.weights_sub = self.create_subscription(
                UInt8MultiArray, 'trainer/weights', self.weights_callback, qos.WEIGHTS
            )
            threading.Thread(target=self.weights_worker, name='weights', daemon=True).start()
        self.image_sub = self.create_subscription(
            Image, 'camera/image_raw', self.image_callback, qos.IMAGE
        )
        self.active_srv = self.create_service(
            SetBool, 'agent/set_active', self.set_active_callback
        )
        if self.report_period > 0:
            self.report_timer = self.create_timer(self.report_period, self.report_callback)
        self.diagnostics = Diagnostics(self, 'agent')
        self.diagnostics.add('acting', self.acting_check)
        self.get_logger().info(f'{policy} policy, {self.action_space} actions')

    def resume(self, run_dir: str) -> None:
        if not run_dir:
            return
        resumed = load_latest_checkpoint(
            run_dir, self.policy.models, None, self.get_logger().warning
        )
        if resumed is not None:
            self.policy.active = (self.policy.models, resumed['version'])
            self.get_logger().info(
                f'starting from {resumed["path"]} (version {resumed["version"]})'
            )

    def image_callback(self, msg: Image) -> None:
        started = time.perf_counter()
        if self.last_frame and started - self.last_frame > 0.25:
            # The frame's age tells a late source (young frame) from late delivery (old frame).
            age = self.get_clock().now() - Time.from_msg(msg.header.stamp)
            self.get_logger().warning(
                f'{1e3 * (started - self.last_frame):.0f} ms since the previous frame '
                f'(this one is {age.nanoseconds / 1e6:.0f} ms old)'
            )
        self.last_frame = started
        self.frames.tick()
        if not self.active:
            return
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
        stamp = msg.header.stamp
        if self.learning:
            result = self.policy.step(observation)
            names, values = messages.action_names_values(result.action, self.action_space)
        else:
            names, values = messages.action_names_values(
                self.policy.step(observation), self.action_space
            )

        action = JointState()
        action.header.stamp = stamp
        action.name = names
        action.position = values
        self.action_pub.publish(action)  # first: it is what the avatar waits for
        self.observation_pub.publish(
            numpy_to_image(observation, 'rgb8', stamp, msg.header.frame_id)
        )
        if self.learning:
            self.step_pub.publish(
                messages.step_message(
                    stamp, self.steps, result.reward, result.value, result.log_prob, result.version
                )
            )
            self.reward_pub.publish(Float32(data=result.reward))
        self.steps += 1
        self.acted.tick()
        step_ms = (time.perf_counter() - started) * 1e3
        self.latencies.append(step_ms)
        if step_ms > 50.0:
            self.get_logger().warning(f'slow step: {step_ms:.0f} ms')

    def set_active_callback(
        self, request: SetBool.Request, response: SetBool.Response
    ) -> SetBool.Response:
        if request.data == self.active:
            response.success, response.message = (
                True,
                'already ' + ('acting' if self.active else 'paused'),
            )
            return response
        self.active = request.data
        if not self.active:
            # One neutral command now: the actuator releases every input within this period.
            neutral = JointState(
                name=list(vrchat.NEUTRAL_VALUES), position=[0.0] * len(vrchat.NEUTRAL_VALUES)
            )
            neutral.header.stamp = self.get_clock().now().to_msg()
            self.action_pub.publish(neutral)
        # A skipped step index tells the trainer not to link steps across the pause.
        self.steps += 1
        if self.learning:
            self.policy.reset()
        response.success = True
        response.message = 'acting' if self.active else 'paused: inputs neutral'
        self.get_logger().info(response.message)
        return response

    def acting_check(self):
        rate = self.acted.rate()
        latency = sorted(self.latencies)
        values = {
            'action rate (Hz)': rate,
            'step p50 (ms)': latency[len(latency) // 2] if latency else 0.0,
            'step max (ms)': latency[-1] if latency else 0.0,
            'actions': self.steps,
            'rejected frames': self.rejected_frames,
            'rejected weights': self.rejected_weights,
            'weights version': self.policy.version if self.learning else 'n/a',
        }
        if not self.active:
            return OK, 'paused (agent/set_active)', values
        if not self.frames.times and time.monotonic() - self.frames.started < 10.0:
            return OK, 'waiting for the first camera frame', values
        if self.frames.age() > 2.0:
            return (
                ERROR,
                f'no camera frame for {self.frames.age():.1f} s: no action for 2 s',
                values,
            )
        level = rate_level(rate, self.expected_rate, self.frames.started)
        return (
            level,
            f'acting at {rate:.1f} Hz'
            + ('' if level == OK else f' (target {self.expected_rate:g} Hz)'),
            values,
        )

    def weights_callback(self, msg: UInt8MultiArray) -> None:
        try:
            # The array itself: copying 29 MB here would hold up the next frame.
            self.weights_queue.put_nowait(msg.data)
        except queue.Full:  # a newer blob is on its way through the worker already
            self.get_logger().warning('weights arrive faster than they validate; one skipped')

    def weights_worker(self) -> None:
        while True:
            blob = self.weights_queue.get()
            try:
                version, state_dicts = unpack_weights(blob, self.policy.models)
                self.policy.swap(version, state_dicts)
            except WeightsError as error:
                self.rejected_weights += 1
                self.get_logger().error(
                    f'weights rejected, keeping version {self.policy.version}: {error}'
                )
                continue
            self.get_logger().info(f'weights version {version} in use ({len(blob) / 1e6:.1f} MB)')

    def report_callback(self) -> None:
        count = self.steps - self.reported_steps
        self.reported_steps = self.steps
        latency = sorted(self.latencies)
        median = latency[len(latency) // 2] if latency else 0.0
        version = f', weights version {self.policy.version}' if self.learning else ''
        self.get_logger().info(
            f'acting at {count / self.report_period:.1f} Hz ({self.steps} actions so far, '
            f'step median {median:.1f} ms, {self.rejected_frames} frames rejected{version})'
        )


def main(args: list[str] | None = None) -> int:
    return spin.run(Agent, args)


if __name__ == '__main__':
    raise SystemExit(main())
