"""doom_world_node: the built-in world, a headless ViZDoom map driven by VRChat OSC input.

It listens where VRChat would (UDP 127.0.0.1:9000) for `/input/<Name>` packets, holds each value
until it changes (as VRChat does), advances the game (pamiq.doom.game) at Doom's 35 tics/s and
publishes what the avatar sees on `camera/image_raw` plus ground truth on `world/pose`.

`real_time_factor` sets the pace. 1: real time, wall clock stamps (VRChat's pace). Above 1:
each frame advances one step of simulated time (35 / publish_rate tics) at publish_rate x factor
frames per wall second. 0, lockstep: the next step starts only once the action for the current
frame has been applied: the actuator sends that action's inputs and then the frame marker
`/pamiq/frame <stamp>` (pamiq.vrchat.osc), and the world steps on the marker of exactly the frame
it published. In both simulated modes the world publishes `/clock` (Doom's tics as time), stamps
with it, and the other nodes run with use_sim_time. The world is the clock: it sets its own
node's clock to each step's time rather than hearing its `/clock` back (use_sim_time stays
false here), which would wake it once more every step in the middle of the next one.

With `audio` it also publishes what the player hears (ViZDoom's audio buffer, resampled to
pamiq.media.audio's format) on `audio/pcm`, stamped in the world's time, before each frame. Like
VRChat it sends the avatar's body parameters (velocity in the avatar's frame, AngularY from the
yaw, Grounded from the game) as OSC to `body_osc_port`, each when it changes.

In real time an episode starts on a thread of its own. ViZDoom usually starts one in a few ms,
but inside a busy graph it has taken 0.2-0.8 s; the world then does what VRChat does while a
world loads: time goes on, the last frame is shown again (stamped now, with silence), actions
do nothing, and the count `frames shown while an episode starts` says so. Simulated time and
lockstep wait for the engine instead: there the next frame is simply later.
"""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
import math
import os
import tempfile
import threading
import time
import traceback

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.time import Time
from rclpy.time_source import TimeSource
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pamiq.doom import process_usage
from pamiq.doom.game import (
    RESOLUTIONS,
    TICRATE,
    DoomHearing,
    avatar_parameters,
    doom_command,
    make_game,
)
from pamiq.ros import qos, spin, topics
from pamiq.ros.audio_publisher import AudioPublisher
from pamiq.ros.diagnostics import Diagnostics, RateMeter, rate_level, steady_clock
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.settings import setting
from pamiq.vrchat import avatar, controller
from pamiq.vrchat.osc import HeldInputs, OscSender, listen


@dataclass(frozen=True)
class WorldConfig:
    scenario: str = setting(
        'my_way_home', 'ViZDoom scenario (a .cfg bundled with vizdoom, or a path to one)'
    )
    resolution: str = setting(
        '160x120',
        'Rendered frame size (the agent sees its central square at 84x84)',
        choices=RESOLUTIONS,
    )
    osc_host: str = setting(
        controller.INPUT_HOST,
        'Address the OSC input server binds (loopback unless you need otherwise)',
    )
    osc_port: int = setting(
        controller.INPUT_PORT, 'UDP port of the OSC input server (VRChat: 9000)', low=1, high=65535
    )
    publish_rate: float = setting(10.0, 'Frames published per second (Hz)', low=1.0, high=35.0)
    turn_rate: float = setting(
        120.0, 'Degrees per second at LookHorizontal = 1', low=1.0, high=720.0, dynamic=True
    )
    report_period: float = setting(
        10.0,
        'Wall-clock seconds between progress lines in the log (0: none; also under simulated '
        'time)',
        low=0.0,
        high=3600.0,
    )
    seed: int = setting(
        0, 'ViZDoom seed (spawn points of my_way_home are random)', low=0, high=2**31 - 1
    )
    real_time_factor: float = setting(
        1.0,
        'Simulated seconds per wall second: 1 real time; above 1 faster, with /clock; '
        '0 lockstep: step only when the action for the current frame has been applied',
        low=0.0,
        high=1000.0,
    )
    lockstep_resend: float = setting(
        1.0,
        "Lockstep: wall seconds without the current frame's action before it is sent again",
        low=0.05,
        high=60.0,
    )
    audio: bool = setting(False, 'Publish what the player hears on audio/pcm (needs OpenAL)')
    body_osc_port: int = setting(
        avatar.OUTPUT_PORT,
        "UDP port the avatar's body parameters go to, as VRChat sends them (0: none)",
        low=0,
        high=65535,
    )


PARAMETERS = (WorldConfig,)

# Seconds a failed lockstep step is given to turn out to be a Ctrl-C before it counts as a crash.
STOP_GRACE = 3.0
# A real-time tick's own work (the engine's tics, publishing) takes a few ms; one over this
# makes a late frame, logged with where the time went.
SLOW_TICK = 0.05
# How long the real-time tick that starts an episode waits for it before it shows the last
# frame again: an episode usually starts in 2-22 ms, and a frame later than this by a
# whole tick period would be a gap of more than 125 ms.
EPISODE_START_WAIT = 0.025


class DoomWorld(Node):
    def __init__(self) -> None:
        super().__init__('world')
        config = self.config = declare_settings(self, WorldConfig, self.reconfigure)
        self.open_game(config)
        self.listen_for_input(config)
        self.episode = 0
        self.start_time = time.monotonic()
        self.tics = 0
        self.last_tick = 0.0
        self.slow_ticks = 0  # real-time ticks whose own work took longer than SLOW_TICK
        self.slow_publishes = 0  # frames (any mode) whose publishing took longer than SLOW_TICK
        self.slowest_publish = 0.0  # seconds
        self.frames_while_starting = 0  # real time: frames shown again while an episode started
        self.slow_episode_starts = 0
        # The engine is a child process; what it used tells a slow episode start's cause.
        self.engine_pid = next(iter(process_usage.children_named(os.getpid(), b'vizdoom')), None)
        self.starter = futures.ThreadPoolExecutor(1, thread_name_prefix='episode-start')
        self.starting: futures.Future | None = None  # real time: an episode start under way
        self.starting_why = ''
        self.last_frame: Image | None = None
        self.last_pose: PoseStamped | None = None
        self.travelled = 0.0
        self.last_xy: tuple[float, float] | None = None

        self.game_lock = threading.Lock()  # the reset service and the lockstep thread share it
        self.simulated = config.real_time_factor != 1.0
        self.own_time = self.own_time_source()
        self.steps = 0  # simulated steps taken
        self.resent = 0  # lockstep frames sent again for want of an action

        self.create_outputs(config)
        self.reset_srv = self.create_service(Trigger, topics.WORLD_RESET, self.reset_callback)
        self.stopping = threading.Event()
        self.lockstep_thread: threading.Thread | None = None
        self.pace_steps(config)
        self.create_diagnostics(config)
        self.get_logger().info(
            f'Doom world {config.scenario} at {config.resolution}, OSC input on {self.input_url}'
        )
        if self.lockstep_thread is not None:
            self.lockstep_thread.start()

    def open_game(self, config: WorldConfig) -> None:
        self.engine_dir = tempfile.TemporaryDirectory(prefix='pamiq-vizdoom-')
        try:
            self.game = make_game(
                config.scenario,
                config.resolution,
                config.seed,
                self.engine_dir.name,
                audio=config.audio,
            )
        except ValueError as error:
            self.engine_dir.cleanup()
            raise ParameterError(f"parameter 'scenario': {error}") from error

    def listen_for_input(self, config: WorldConfig) -> None:
        self.inputs = HeldInputs()
        self.input_url = f'udp://{config.osc_host}:{config.osc_port}'
        try:
            self.server = listen(config.osc_host, config.osc_port, self.inputs, self.bad_input)
        except OSError as error:
            self.game.close()
            self.engine_dir.cleanup()
            raise ParameterError(
                f"parameters 'osc_host'/'osc_port': cannot listen on "
                f'{config.osc_host}:{config.osc_port}: {error}'
            ) from error

    def own_time_source(self) -> TimeSource | None:
        """The clock of a world whose time is simulated: set by the world itself, step by step."""
        if not self.simulated:
            return None
        # Timers, diagnostics and logs follow the time this world keeps.
        own_time = TimeSource()  # no node: it never subscribes to /clock
        own_time.attach_clock(self.get_clock())
        own_time.clock_callback(Clock())
        own_time.ros_time_is_active = True
        return own_time

    def create_outputs(self, config: WorldConfig) -> None:
        """The frame, pose and clock publishers, and what the player hears and its body."""
        self.image_pub = qos.publisher(self, Image, topics.IMAGE, qos.IMAGE_PUBLISHER)
        self.pose_pub = qos.publisher(self, PoseStamped, topics.POSE, qos.POSE_PUBLISHER)
        # /clock exists only where the time is simulated: advertised in real time, it would tell
        # anyone reading `ros2 topic list` that the graph runs on simulated time.
        self.clock_pub = (
            qos.publisher(self, Clock, topics.CLOCK, qos.CLOCK) if self.simulated else None
        )
        # The world's time of tic 0: the clock at start in real time, 0 in simulated time.
        self.epoch_ns = 0 if self.simulated else self.get_clock().now().nanoseconds
        self.hearing = DoomHearing() if config.audio else None
        self.heard_tics = (0, 0)  # (first tic, count) advanced since the last frame
        self.audio = AudioPublisher(self, f'ViZDoom {config.scenario}') if config.audio else None
        self.body = (
            OscSender(controller.INPUT_HOST, config.body_osc_port)
            if config.body_osc_port
            else None
        )
        self.body_sent: dict[str, float | bool] = {}
        self.last_yaw: tuple[int, float] | None = None  # (tic, angle)
        self.announce_avatar()

    def pace_steps(self, config: WorldConfig) -> None:
        """Lockstep: a thread that steps on each frame marker; else a timer at the step rate."""
        if config.real_time_factor == 0.0:
            # Started last, in __init__: it publishes at once, with everything it uses in place.
            self.lockstep_thread = threading.Thread(
                target=self.lockstep_loop, name='lockstep', daemon=True
            )
        else:
            period = 1.0 / (config.publish_rate * config.real_time_factor)
            # Simulated time is paced by the wall clock: the world is the source of /clock.
            if self.simulated:
                self.tick_timer = self.create_timer(
                    period,
                    self.simulated_tick_callback,
                    clock=steady_clock(),
                )
            else:
                self.tick_timer = self.create_timer(period, self.tick_callback)

    def create_diagnostics(self, config: WorldConfig) -> None:
        self.meter = RateMeter(self.get_clock())
        self.diagnostics = Diagnostics(self, f'vizdoom {config.scenario}')
        self.diagnostics.add('world', self.world_check)
        if config.report_period > 0:
            # Wall time: in lockstep 10 simulated seconds pass in about 0.2 s.
            self.report_timer = self.create_timer(
                config.report_period, self.report_callback, clock=steady_clock()
            )

    def reconfigure(self, config: WorldConfig) -> None:
        self.config = config

    # --- simulated time ----------------------------------------------------------------------
    def sim_stamp(self) -> Time:
        return Time(nanoseconds=round(self.tics * 1_000_000_000 / TICRATE))

    def step(self) -> None:
        """Advance one step of simulated time with the held inputs (35 / publish_rate tics)."""
        self.steps += 1
        target = round(self.steps * TICRATE / self.config.publish_rate)
        with self.game_lock:
            if self.game.is_episode_finished():
                self.new_episode('episode finished')
            self.advance(target - self.tics)
            self.tics = target
            if self.game.is_episode_finished():
                self.new_episode('episode finished')

    def simulated_tick_callback(self) -> None:
        self.step()
        self.publish_state(self.sim_stamp())

    def lockstep_loop(self) -> None:
        try:
            self.lockstep_steps()
        except Exception:  # the thread's top: nothing above it would report it
            # Ctrl-C reaches the engine (same process group) and shuts rclpy's context down
            # before this node stops: a step or publish failing then is the stop, not a fault.
            if not self.context.ok() or self.stopping.wait(STOP_GRACE):
                return
            # A crash (the engine died): exit as the real-time world does when a tick fails,
            # rather than leave a frozen world that the launch would not notice.
            self.get_logger().fatal(f'lockstep failed, the world stops:\n{traceback.format_exc()}')
            os._exit(1)

    def lockstep_steps(self) -> None:
        """Publish a frame, wait for its action to be applied, step; again."""
        while not self.stopping.is_set():
            stamp = self.sim_stamp()
            self.inputs.expect(stamp.nanoseconds)
            self.publish_state(stamp)
            while not self.inputs.wait(self.config.lockstep_resend):
                if self.stopping.is_set():
                    return
                # Before the first action the graph is still starting: that is no miss.
                if self.steps:
                    self.resent += 1
                    self.get_logger().info(
                        f'no action for step {self.steps} within '
                        f'{self.config.lockstep_resend:g} s: sending its frame again '
                        f'({self.resent} so far; a lost frame, a paused agent, or one that '
                        'waits for the trainer)',
                        throttle_duration_sec=10.0,
                    )
                self.publish_state(stamp)  # a dropped frame, a paused agent: again
            self.step()

    # --- real time ---------------------------------------------------------------------------
    def tick_callback(self) -> None:
        now = time.monotonic()
        if self.last_tick and now - self.last_tick > 0.25:
            self.get_logger().warning(
                f'{1e3 * (now - self.last_tick):.0f} ms since the previous tick'
            )
        self.last_tick = now
        # Advance as many tics as wall time demands, so the world runs in real time even if a
        # callback is late; cap the catch-up so a long stall does not fast-forward the game.
        due = int((time.monotonic() - self.start_time) * TICRATE)
        if not self.episode_ready(wait=0.0):
            self.show_last_frame(due)
            return
        with self.game_lock:
            if self.game.is_episode_finished():
                self.start_episode('episode finished')
            else:
                self.advance(min(due - self.tics, TICRATE // 2))
                if self.game.is_episode_finished():
                    self.start_episode('episode finished')
        advanced = time.monotonic()
        if not self.episode_ready(wait=EPISODE_START_WAIT):
            self.show_last_frame(due)
            return
        self.tics = due
        self.publish_state(self.get_clock().now())
        took = time.monotonic() - now
        if took > SLOW_TICK:
            self.slow_ticks += 1
            self.get_logger().warning(
                f'a tick took {1e3 * took:.0f} ms: the engine {1e3 * (advanced - now):.0f} ms, '
                f'publishing {1e3 * (time.monotonic() - advanced):.0f} ms '
                f'({self.slow_ticks} so far)',
                throttle_duration_sec=5.0,
            )

    def start_episode(self, why: str) -> None:
        """Real time: start an episode on the episode-start thread (callers hold game_lock)."""
        if self.starting is None:
            self.starting_why = why
            self.starting = self.starter.submit(self.start_engine_episode)

    def start_engine_episode(self) -> None:
        with self.game_lock:
            self.engine_new_episode()

    def episode_ready(self, wait: float) -> bool:
        """Whether no episode start is under way, after waiting up to `wait` s for one."""
        if self.starting is None:
            return True
        try:
            self.starting.result(timeout=wait)
        except futures.TimeoutError:
            return False
        self.starting = None
        self.episode_started(self.starting_why)
        return True

    def show_last_frame(self, due: int) -> None:
        """While an episode starts: the last frame and pose again, stamped now, and silence
        for the time it covers; the world's time goes on without the game."""
        stamp = self.get_clock().now().to_msg()
        # The last tics' sound went with the engine's episode; silence stands for them too.
        (first, count), self.heard_tics = self.heard_tics, (0, 0)
        silent_from = first if count else self.tics
        if self.hearing is not None:
            start = self.epoch_ns + round(silent_from * 1e9 / TICRATE)
            for chunk in self.hearing.silence(due - silent_from, start):
                self.audio.publish(chunk)
        self.tics = due
        if self.last_frame is None:
            return
        self.frames_while_starting += 1
        self.last_frame.header.stamp = stamp
        self.image_pub.publish(self.last_frame)
        self.meter.tick()
        self.last_pose.header.stamp = stamp
        self.pose_pub.publish(self.last_pose)

    def advance(self, tics: int) -> None:
        """`tics` tics with the held inputs (callers hold game_lock)."""
        if tics <= 0:
            return
        # One call for all tics: the same command each tic, the screen rendered once at the end
        # (ViZDoom stops early if the episode ends within them).
        self.game.set_action(doom_command(self.inputs.snapshot(), self.config.turn_rate / TICRATE))
        self.game.advance_action(tics)
        first, count = self.heard_tics
        self.heard_tics = (first if count else self.tics, count + tics)

    def publish_state(self, time_now: Time) -> None:
        """The frame and the pose at `time_now`; in simulated time /clock first, so every
        node's clock has reached the frame's stamp when the frame arrives."""
        with self.game_lock:
            state = self.game.get_state()
            (first, count), self.heard_tics = self.heard_tics, (0, 0)
        if state is None:
            return
        started = time.monotonic()
        stamp = time_now.to_msg()
        if self.clock_pub is not None:
            clock = Clock(clock=stamp)
            self.own_time.clock_callback(clock)
            self.clock_pub.publish(clock)
        if self.hearing is not None:  # what was heard up to the frame, before the frame
            start = self.epoch_ns + round(first * 1e9 / TICRATE)
            for chunk in self.hearing.take(state.audio_buffer, count, start):
                self.audio.publish(chunk)
        self.last_frame = numpy_to_image(state.screen_buffer, 'rgb8', stamp, 'doom_camera')
        self.image_pub.publish(self.last_frame)
        self.meter.tick()
        x, y, angle = (float(v) for v in state.game_variables[:3])
        self.send_body(state.game_variables)
        if self.last_xy is not None:
            self.travelled += math.dist(self.last_xy, (x, y))
        self.last_xy = (x, y)
        pose = PoseStamped()
        pose.header.stamp = stamp
        pose.header.frame_id = 'doom_map'
        pose.pose.position.x, pose.pose.position.y = x, y
        yaw = math.radians(angle)
        pose.pose.orientation.z, pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        self.pose_pub.publish(pose)
        self.last_pose = pose
        # Publishing is where another participant's arrival could hold the world (issue 24).
        took = time.monotonic() - started
        self.slowest_publish = max(self.slowest_publish, took)
        self.slow_publishes += took > SLOW_TICK

    def send_body(self, variables) -> None:
        """The avatar parameters VRChat would send now: those that changed since last sent."""
        if self.body is None:
            return
        angle = float(variables[2])
        turn_rate = 0.0
        if self.last_yaw is not None and self.tics > self.last_yaw[0]:
            turned = (angle - self.last_yaw[1] + 180.0) % 360.0 - 180.0
            turn_rate = turned * TICRATE / (self.tics - self.last_yaw[0])
        self.last_yaw = (self.tics, angle)
        velocity = (float(variables[3]), float(variables[4]), float(variables[5]))
        for name, value in avatar_parameters(velocity, angle, turn_rate, variables[6] > 0).items():
            previous = self.body_sent.get(name)
            changed = previous is None or abs(float(value) - float(previous)) > 1e-4
            if changed and self.body.send_message(avatar.PARAMETER_PREFIX + name, (value,)):
                self.body_sent[name] = value

    def announce_avatar(self) -> None:
        """/avatar/change, as VRChat says when an avatar loads (here: each episode's start);
        every parameter is sent afresh after it."""
        if self.body is not None:
            self.body.send_message(
                avatar.CHANGE_ADDRESS, (f'avtr_pamiq_doom_{self.config.scenario}',)
            )
            self.body_sent.clear()

    def bad_input(self, kind: str, text: str) -> None:
        self.get_logger().warning(f'bad OSC input ({kind}): {text}', throttle_duration_sec=5.0)

    def world_check(self):
        x, y = self.last_xy or (math.nan, math.nan)
        rate = self.meter.rate()
        values = {
            'frame rate (Hz)': rate,
            'real time factor': self.config.real_time_factor,
            'simulated steps': self.steps,
            'lockstep frames sent again': self.resent,
            'slow ticks (> 50 ms)': self.slow_ticks,
            'slow publishes (> 50 ms)': self.slow_publishes,
            'slowest publish (ms)': 1e3 * self.slowest_publish,
            'slow episode starts (> 50 ms)': self.slow_episode_starts,
            'frames shown while an episode starts': self.frames_while_starting,
            'stray frame markers': self.inputs.stray_markers,
            'episode': self.episode,
            'position': f'({x:.0f}, {y:.0f})',
            'OSC packets received': self.inputs.packets,
            'frame subscribers': self.image_pub.get_subscription_count(),
            'OSC input': self.input_url,
            'OSC malformed datagrams': self.server.malformed,
            'OSC rejected values': self.server.rejected,
            'OSC unknown addresses': self.server.unrouted,
        }
        if self.audio is not None:
            values.update(self.audio.values())
        if self.body is not None:
            values['body parameters sent'] = self.body.packets
            values['body OSC send errors'] = self.body.errors
        level = rate_level(self.meter, self.config.publish_rate)
        return level, f'episode {self.episode}, frames at {rate:.1f} Hz', values

    def report_callback(self) -> None:
        x, y = self.last_xy or (math.nan, math.nan)
        self.get_logger().info(
            f'episode {self.episode}: avatar at ({x:.0f}, {y:.0f}), '
            f'travelled {self.travelled:.0f} '
            f'map units since the last report, {self.inputs.packets} OSC packets received, '
            f'frames to {self.image_pub.get_subscription_count()} subscriber(s)'
        )
        self.travelled = 0.0

    def new_episode(self, why: str) -> None:
        """Start an episode and wait for it (callers hold game_lock)."""
        self.engine_new_episode()
        self.episode_started(why)

    def engine_new_episode(self) -> None:
        """The engine's part of an episode start, timed; a slow one is logged with what the
        engine did meanwhile (callers hold game_lock)."""
        before = self.engine_usage()
        started = time.monotonic()
        self.game.new_episode()
        took = time.monotonic() - started
        if took > SLOW_TICK:
            self.slow_episode_starts += 1
            after = self.engine_usage()
            used = after.since(before).describe() if before and after else 'no usage known'
            self.get_logger().warning(
                f'the engine took {1e3 * took:.0f} ms to start an episode '
                f'(it used {used}; {self.slow_episode_starts} slow starts so far)'
            )

    def engine_usage(self) -> process_usage.Usage | None:
        return None if self.engine_pid is None else process_usage.usage(self.engine_pid)

    def episode_started(self, why: str) -> None:
        self.announce_avatar()
        self.last_xy = None  # a new spawn point is not travel
        self.episode += 1
        self.get_logger().info(f'{why}: episode {self.episode} started')

    def reset_callback(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        response.success = True
        if self.simulated:
            with self.game_lock:
                self.new_episode('reset requested')
        else:  # the ticks go on meanwhile
            with self.game_lock:
                self.start_episode('reset requested')
            if not self.episode_ready(wait=EPISODE_START_WAIT):
                response.message = f'episode {self.episode + 1} starting'
                return response
        response.message = f'episode {self.episode} started'
        return response

    def shutdown(self) -> None:
        self.stopping.set()
        if self.lockstep_thread is not None:
            self.lockstep_thread.join(timeout=5.0)
        self.starter.shutdown(wait=True)
        self.server.close()
        self.game.close()
        self.engine_dir.cleanup()


def main(args: list[str] | None = None) -> int:
    return spin.run(DoomWorld, args)


if __name__ == '__main__':
    raise SystemExit(main())
