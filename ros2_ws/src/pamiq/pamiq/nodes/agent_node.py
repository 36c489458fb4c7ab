"""agent_node: turns each new camera frame into one action (pamiq-core's observe -> step).

Per frame: convert to RGB, crop the centre square and resize to 84x84 like the original,
publish it on `agent/observation`, let the policy decide, and publish `action` (VRChat input
names and values), `agent/step` (what PPO needs) and `agent/reward`, all with the frame's stamp.
New weights from `trainer/weights` are validated off the acting path and swapped in between two
steps. The random and the curiosity policy are driven the same way (pamiq.learning.policy).

With `max_steps_per_version` (set by `pamiq up` in lockstep) the agent holds its action once it
has acted that many steps since the newest weights arrived, until the next ones arrive: a
lockstep world waits for the action, so the world never runs more than that far ahead of the
trainer. (The trainer publishes its weights after every round, and again whenever it starts
listening to an actor, so steps it could not have received are never owed to it. That second
publication is the version the agent already has: it does not give a whole new allowance, which
would let every actor run a rollout ahead each time another joins, only enough for the trainer to
complete a rollout from what it hears from now on.)
"""

from __future__ import annotations

from array import array
from collections import deque
from dataclasses import dataclass
import queue
import threading
import time

from rclpy.event_handler import SubscriptionEventCallbacks, UnsupportedEventTypeError
from rclpy.node import Node
from rclpy.subscription import Subscription
from rclpy.time import Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray
from std_srvs.srv import SetBool

from pamiq.learning.config import (
    RECURRENT_NEEDS_PLUGINS,
    action_space_setting,
    encoder_setting,
    memory_horizon_setting,
    model_setting,
    recurrent_setting,
    reward_setting,
    senses_setting,
    uses_plugins,
)
from pamiq.learning.policy import Policy
from pamiq.learning.random_policy import RandomPolicy
from pamiq.learning.sense_arrays import is_multimodal
from pamiq.media.preprocessing import preprocess
from pamiq.ros import messages, qos, spin, topics
from pamiq.ros.diagnostics import (
    ERROR,
    OK,
    WARN,
    Diagnostics,
    RateMeter,
    TransitLoss,
    rate_level,
    steady_clock,
)
from pamiq.ros.heap import reserve_heap
from pamiq.ros.image_conversion import ImageConversionError, image_to_numpy, numpy_to_image
from pamiq.ros.parameters import ParameterError, check_senses, declare_settings
from pamiq.ros.priority import lower_thread_priority
from pamiq.ros.sense_inputs import SenseInputs
from pamiq.settings import setting
from pamiq.storage.errors import WeightsError
from pamiq.vocabulary import POLICIES, REWARD_KEY, REWARD_WINDOW
from pamiq.vrchat import controller

# Above this share of camera frames lost in transit (over 5 s) the agent's diagnostics warn.
LOSS_WARNING = 0.05
SLOW_STEP_MS = 50.0  # a step (frame in, action out) over this is logged and counted


def transit_advice(lost: float) -> str:
    return (
        f'{100 * lost:.0f} % of camera frames lost in transit: large frames need the '
        "project's Fast DDS profile (config/fastdds_loopback.xml), see docs/troubleshooting.md"
    )


@dataclass(frozen=True)
class AgentConfig:
    policy: str = setting(POLICIES[0], 'How actions are chosen', choices=POLICIES)
    action_space: str = action_space_setting()
    model: str = model_setting()
    reward: str = reward_setting()
    memory_horizon: int = memory_horizon_setting()
    recurrent: bool = recurrent_setting()
    encoder: str = encoder_setting()
    senses: str = senses_setting()
    run_dir: str = setting('', 'Start from the newest checkpoint here, if any')
    seed: int = setting(
        0, 'Seed of initial weights and sampling (-1: entropy)', low=-1, high=2**31 - 1
    )
    expected_rate: float = setting(
        10.0, 'Action rate below which diagnostics warn (80 %)', low=0.1, high=120.0, dynamic=True
    )
    torch_threads: int = setting(
        1, 'CPU threads for inference (the trainer keeps a core)', low=1, high=64
    )
    report_period: float = setting(
        10.0,
        'Wall-clock seconds between progress lines (0: none; also under simulated time)',
        low=0.0,
        high=3600.0,
    )
    max_steps_per_version: int = setting(
        0,
        'Hold the action after this many steps with one weights version until newer weights '
        'arrive (lockstep: the world waits for the trainer); 0: never wait',
        low=0,
        high=2**31 - 1,
    )
    trainer_wait_timeout: float = setting(
        60.0,
        'Wall seconds a held action waits for new weights before acting on the old ones',
        low=0.1,
        high=3600.0,
    )


PARAMETERS = (AgentConfig,)

# Niceness added to the thread that validates and loads new weights (not to acting's).
WEIGHTS_WORKER_NICENESS = 10


def make_policy(config: AgentConfig) -> Policy:
    if config.policy == 'random':
        return RandomPolicy(config.action_space, None if config.seed < 0 else config.seed)
    # Only the curiosity agent loads torch (seconds of start-up a random agent goes without).
    import torch

    from pamiq.learning.curiosity_policy import CuriosityPolicy

    torch.set_num_threads(config.torch_threads)
    senses = check_senses(config.senses, config.encoder)
    if uses_plugins(config.model, config.reward):
        from pamiq.learning.plugin_policy import PluginPolicy

        if senses != ('vision',):
            raise ParameterError(
                f"parameter 'senses' is {config.senses!r}: model {config.model!r} with reward "
                f'{config.reward!r} sees vision only (more senses: model original, reward '
                'prediction_error)'
            )
        try:
            return PluginPolicy(
                config.model, config.reward, config.action_space, max(config.seed, 0),
                config.memory_horizon, config.recurrent,
            )  # fmt: skip
        except ValueError as error:
            raise ParameterError(f"parameter 'reward': {error}") from error
    if config.recurrent:
        raise ParameterError(f"parameter 'recurrent': {RECURRENT_NEEDS_PLUGINS}")
    return CuriosityPolicy(config.encoder, config.action_space, max(config.seed, 0), senses)


class Agent(Node):
    def __init__(self) -> None:
        super().__init__('agent')
        self.config = declare_settings(self, AgentConfig, self.reconfigure)
        config = self.config
        self.policy = make_policy(config)
        # Warm heap for the weights messages in flight (pamiq.ros.heap): the one being taken, its
        # Python array, the one queued and the one being loaded.
        if self.policy.weights_nbytes:
            reserve_heap(4 * self.policy.weights_nbytes)
        senses = check_senses(config.senses, config.encoder)
        if config.run_dir:
            path = self.policy.load_checkpoint(config.run_dir, self.get_logger().warning)
            if path is not None:
                self.get_logger().info(f'starting from {path} (version {self.policy.version})')
        self.steps = 0
        self.rejected_frames = 0
        self.rejected_weights = 0
        self.reported_steps = 0
        self.reported_at = time.monotonic()
        self.slow_steps = 0  # steps over SLOW_STEP_MS since the start
        self.slowest_step_ms = 0.0
        self.last_frame = 0.0
        self.active = True
        self.frames = RateMeter(self.get_clock())
        self.acted = RateMeter(self.get_clock())
        self.transit = TransitLoss()
        self.latencies: deque[float] = deque(maxlen=100)  # ms of the last 100 steps
        self.rewards: deque[float] = deque(maxlen=REWARD_WINDOW)
        self.steps_with_version = 0  # since the newest weights arrived
        self.same_version_again = False  # the last weights to arrive: the version already in use
        self.held: Image | None = None  # the frame whose action waits for new weights
        self.held_since = 0.0
        self.trainer_waits = 0
        self.trainer_wait_seconds = 0.0
        self.gave_up_waiting = False

        self.observation_pub = qos.publisher(self, Image, topics.OBSERVATION, qos.OBSERVATION)
        self.action_pub = qos.publisher(self, JointState, topics.ACTION, qos.ACTION_PUBLISHER)
        self.step_pub = qos.publisher(self, JointState, topics.STEP, qos.STEP)
        self.reward_pub = qos.publisher(self, Float32, topics.REWARD, qos.DEFAULT)
        # Validating a blob takes longer than a step: a worker thread does it, so the executor
        # only hands the bytes over and acting never waits for it.
        self.weights_queue: queue.Queue[object | None] = queue.Queue(maxsize=1)
        self.weights_sub = self.create_subscription(
            UInt8MultiArray, topics.WEIGHTS, self.weights_callback, qos.WEIGHTS
        )
        # New weights wake the executor to act on a held frame (from the weights thread).
        self.weights_arrived = self.create_guard_condition(self.weights_arrived_callback)
        self.weights_thread = threading.Thread(
            target=self.weights_worker, name='weights', daemon=True
        )
        self.weights_thread.start()
        self.image_sub = self.image_subscription()
        self.active_srv = self.create_service(
            SetBool, topics.AGENT_SET_ACTIVE, self.set_active_callback
        )
        if config.report_period > 0:
            # Wall time: in lockstep 10 simulated seconds pass in about 0.2 s.
            self.report_timer = self.create_timer(
                config.report_period, self.report_callback, clock=steady_clock()
            )
        self.diagnostics = Diagnostics(self, 'agent')
        self.diagnostics.add('acting', self.acting_check)
        # Beyond vision: what is heard and felt at each frame (and which sense is missing).
        self.senses = SenseInputs(self, senses) if is_multimodal(senses) else None
        if self.senses is not None:
            self.diagnostics.add('senses', self.senses.check)
        self.get_logger().info(
            f'{config.policy} policy, {config.action_space} actions, senses {",".join(senses)}'
        )

    def image_subscription(self) -> Subscription:
        """The camera's frames; the callback takes the message info too, its sequence number
        counts lost frames, and so does the middleware's message-lost event where it has one."""
        lost = SubscriptionEventCallbacks(
            message_lost=lambda status: self.transit.middleware_lost(status.total_count_change)
        )
        try:
            return self.create_subscription(
                Image, topics.IMAGE, self.image_callback, qos.IMAGE, event_callbacks=lost
            )
        except UnsupportedEventTypeError:
            return self.create_subscription(Image, topics.IMAGE, self.image_callback, qos.IMAGE)

    def reconfigure(self, config: AgentConfig) -> None:
        self.config = config

    def image_callback(self, msg: Image, info: dict) -> None:
        started = time.perf_counter()
        self.transit.arrived(info['publication_sequence_number'])
        if self.last_frame and started - self.last_frame > 0.25 and self.held is None:
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
        if self.waiting_for_trainer():
            self.held = msg  # a frame sent again while we wait replaces the one held
            return
        self.act(msg, started)

    def waiting_for_trainer(self) -> bool:
        """Whether this frame's action must wait for newer weights (see the module doc)."""
        limit = self.config.max_steps_per_version
        if not limit or self.gave_up_waiting or self.steps_with_version < limit:
            return False
        now = time.monotonic()
        if self.held is None:
            self.held_since = now
            self.trainer_waits += 1
        if now - self.held_since <= self.config.trainer_wait_timeout:
            return True
        self.gave_up_waiting = True
        self.get_logger().warning(
            f'no new weights for {self.config.trainer_wait_timeout:g} s after '
            f'{self.steps_with_version} steps with version {self.policy.version}: '
            'acting on without waiting until new weights arrive (is the trainer running?)'
        )
        self.end_wait()
        return False

    def end_wait(self) -> None:
        if self.held is not None:
            self.trainer_wait_seconds += time.monotonic() - self.held_since
            self.held = None

    def weights_arrived_callback(self) -> None:
        # Counted from the newest weights: a new version, or a trainer that (re)started
        # listening to this actor and published its weights again.
        if self.same_version_again:
            # Half the limit (one rollout) and one step more: a rollout the trainer hears whole.
            allowance = self.config.max_steps_per_version // 2 + 1
            self.steps_with_version = min(
                self.steps_with_version, max(0, self.config.max_steps_per_version - allowance)
            )
        else:
            self.steps_with_version = 0
        self.gave_up_waiting = False
        held = self.held
        if held is None or not self.active:
            return
        self.end_wait()
        self.act(held, time.perf_counter())

    def act(self, msg: Image, started: float) -> None:
        """One step: the frame's observation, the policy's action, what the trainer needs."""
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
        senses = self.senses.current() if self.senses is not None else None
        # The action first: it is what the avatar waits for; the reward and the prediction
        # for the next step are computed once it is on its way.
        decision = self.policy.decide(observation, senses)
        names, values = messages.action_names_values(decision.action, self.config.action_space)
        self.action_pub.publish(messages.action_message(stamp, names, values))
        result = self.policy.complete()
        self.observation_pub.publish(
            numpy_to_image(observation, 'rgb8', stamp, msg.header.frame_id)
        )
        self.step_pub.publish(
            messages.step_message(
                stamp,
                self.steps,
                result.reward,
                result.value,
                result.log_prob,
                result.version,
                result.sense_rewards,
                result.policy_state,
            )
        )
        if senses is not None:
            self.senses.publish(stamp, senses)
        self.reward_pub.publish(Float32(data=result.reward))
        self.steps_with_version += 1
        self.steps += 1
        self.acted.tick()
        step_ms = (time.perf_counter() - started) * 1e3
        self.latencies.append(step_ms)
        self.rewards.append(result.reward)
        self.slowest_step_ms = max(self.slowest_step_ms, step_ms)
        if step_ms > SLOW_STEP_MS:
            self.slow_steps += 1
            self.get_logger().warning(f'slow step: {step_ms:.0f} ms')

    def set_active_callback(
        self, request: SetBool.Request, response: SetBool.Response
    ) -> SetBool.Response:
        if request.data == self.active:
            response.success = True
            response.message = 'already ' + ('acting' if self.active else 'paused')
            return response
        self.active = request.data
        if not self.active:
            self.end_wait()  # a frame held for newer weights is not acted on once paused
            # One neutral command now: the actuator releases every input within this period.
            stamp = self.get_clock().now().to_msg()
            neutral = controller.NEUTRAL_VALUES
            self.action_pub.publish(
                messages.action_message(
                    stamp, list(neutral), [0.0] * len(neutral), messages.NEUTRAL_FRAME_ID
                )
            )
        # A skipped step index tells the trainer not to link steps across the pause.
        self.steps += 1
        self.policy.reset()
        response.success = True
        response.message = 'acting' if self.active else 'paused: inputs neutral'
        self.get_logger().info(response.message)
        return response

    def acting_check(self):
        rate = self.acted.rate()
        latency = sorted(self.latencies)
        lost = self.transit.recent_fraction()
        values = {
            'action rate (Hz)': rate,
            'step p50 (ms)': latency[len(latency) // 2] if latency else 0.0,
            'step max (ms)': latency[-1] if latency else 0.0,
            'slow steps (> 50 ms)': self.slow_steps,
            'slowest step (ms)': self.slowest_step_ms,
            'actions': self.steps,
            'rejected frames': self.rejected_frames,
            'frames lost in transit': self.transit.lost,
            'frames lost in transit, last 5 s (%)': 100.0 * lost,
            'rejected weights': self.rejected_weights,
            'weights version': self.policy.version,
            REWARD_KEY: sum(self.rewards) / len(self.rewards) if self.rewards else 0.0,
            'waits for the trainer': self.trainer_waits,
            'waiting for the trainer (s)': self.trainer_wait_seconds,
        }
        if not self.active:
            return OK, 'paused (agent/set_active)', values
        if self.held is not None:
            return (
                OK,
                f'waiting for weights newer than version {self.policy.version} '
                f'({self.steps_with_version} steps acted with it)',
                values,
            )
        if not self.frames.times and self.frames.running_for() < 10.0:
            return OK, 'waiting for the first camera frame', values
        if self.frames.age() > 2.0:
            return (
                ERROR,
                f'no camera frame for {self.frames.age():.1f} s: no action for 2 s '
                f'({self.why_no_frames(lost)})',
                values,
            )
        if lost > LOSS_WARNING:
            return WARN, transit_advice(lost), values
        target = self.config.expected_rate
        level = rate_level(self.acted, target)
        message = f'acting at {rate:.1f} Hz' + ('' if level == OK else f' (target {target:g} Hz)')
        return level, message, values

    def why_no_frames(self, lost: float) -> str:
        """Frames lost in transit when the middleware says so, else where the sources stand."""
        return transit_advice(lost) if lost > LOSS_WARNING else self.frame_sources()

    def frame_sources(self) -> str:
        """Where the missing frames are lost: no publisher discovered (discovery), one
        discovered but not matched (QoS or type), or matched and silent (transport, source)."""
        topic = self.image_sub.topic_name
        return (
            f'{self.count_publishers(topic)} publisher(s) of {topic} discovered, '
            f'{self.image_sub.get_publisher_count()} matched'
        )

    def weights_callback(self, msg: UInt8MultiArray) -> None:
        try:
            # The array itself: copying 29 MB here would hold up the next frame.
            self.weights_queue.put_nowait(msg.data)
        except queue.Full:  # a newer blob is on its way through the worker already
            self.get_logger().warning('weights arrive faster than they validate; one skipped')

    def weights_worker(self) -> None:
        # Validating and warming up a new set takes tens of ms of CPU per blob; on a busy
        # machine that must come out of idle time, never out of acting's.
        lower_thread_priority(WEIGHTS_WORKER_NICENESS)
        while (blob := self.weights_queue.get()) is not None:
            self.use_weights(blob)
            del blob  # its 29 MB back to the warm heap (pamiq.ros.heap) now, not at the next blob

    def use_weights(self, blob: array) -> None:
        try:
            before = self.policy.version
            version = self.policy.load_weights(blob)
        except WeightsError as error:
            self.rejected_weights += 1
            self.get_logger().error(
                f'weights rejected, keeping version {self.policy.version}: {error}'
            )
            return
        self.get_logger().info(f'weights version {version} in use ({len(blob) / 1e6:.1f} MB)')
        self.same_version_again = version == before
        self.weights_arrived.trigger()

    def report_callback(self) -> None:
        count = self.steps - self.reported_steps
        self.reported_steps = self.steps
        now = time.monotonic()
        seconds, self.reported_at = now - self.reported_at, now
        latency = sorted(self.latencies)
        median = latency[len(latency) // 2] if latency else 0.0
        report = (
            f'acting at {count / seconds:.1f} Hz of wall time ({self.steps} actions so far, '
            f'step median {median:.1f} ms, {self.rejected_frames} frames rejected, '
            f'weights version {self.policy.version})'
        )
        if self.frames.age() > self.config.report_period:
            why = self.why_no_frames(self.transit.recent_fraction())
            report += f'; no camera frame for {self.frames.age():.0f} s: {why}'
        self.get_logger().info(report)

    def shutdown(self) -> None:
        """Stop the weights worker (a blob being validated is finished first)."""
        try:
            self.weights_queue.put(None, timeout=1.0)
        except queue.Full:
            return  # the worker is busy with a blob; it is a daemon and ends with the process
        self.weights_thread.join(timeout=5.0)


def main(args: list[str] | None = None) -> int:
    return spin.run(Agent, args)


if __name__ == '__main__':
    raise SystemExit(main())
