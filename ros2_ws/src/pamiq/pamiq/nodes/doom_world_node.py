"""doom_world_node: the built-in world, a headless ViZDoom map driven by VRChat OSC input.

It listens where VRChat would (UDP 127.0.0.1:9000) for `/input/<Name>` packets, holds each value
until it changes (as VRChat does), advances the game in real time at Doom's 35 tics/s and
publishes what the avatar sees on `camera/image_raw` plus ground truth on `world/pose`.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
import time

from geometry_msgs.msg import PoseStamped
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
import vizdoom as vzd

from pamiq import vrchat
from pamiq.ros import qos, spin
from pamiq.ros.diagnostics import Diagnostics, RateMeter, rate_level
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.parameters import ParameterError, declare

TICRATE = 35  # Doom's fixed simulation rate
# Doom's own per-tic command magnitudes (forwardmove/sidemove/angleturn of a walking player).
WALK_FORWARD, WALK_SIDE = 25.0, 24.0
RESOLUTIONS = ('160x120', '320x240', '640x480')


class HeldInputs:
    """The last value received for each VRChat input, written by the OSC server thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}
        self.packets = 0

    def handle(self, address: str, *args: object) -> None:
        name = address.removeprefix(vrchat.ADDRESS_PREFIX)
        if not args or not isinstance(args[0], (int, float)):
            return
        value, _ = vrchat.sanitize(name, args[0])  # unknown names and NaN are ignored
        if value is None:
            return
        with self.lock:
            self.values[name] = float(value)
            self.packets += 1

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return dict(self.values)

    def clear(self) -> None:
        with self.lock:
            self.values.clear()


def doom_command(inputs: dict[str, float], turn_per_tic: float) -> list[float]:
    """One tic's [forward, strafe right, turn right (deg), jump, unused] from held inputs."""

    def get(name: str) -> float:
        return inputs.get(name, 0.0)

    forward = get('Vertical') + get('MoveForward') - get('MoveBackward')
    right = get('Horizontal') + get('MoveRight') - get('MoveLeft')
    turn = get('LookHorizontal') + get('LookRight') - get('LookLeft')
    speed = 2.0 if get('Run') >= 0.5 else 1.0
    clamp = lambda v: max(-1.0, min(1.0, v))
    return [
        clamp(forward) * WALK_FORWARD * speed,
        clamp(right) * WALK_SIDE * speed,
        clamp(turn) * turn_per_tic,
        1.0 if get('Jump') >= 0.5 else 0.0,
    ]


def make_game(
    scenario: str, resolution: str, seed: int, engine_dir: str, timeout: int | None = None
) -> vzd.DoomGame:
    """A headless ViZDoom game with VRChat-like continuous controls and pose variables.

    ViZDoom writes its engine config and a _vizdoom/ folder into the working directory, so
    they go to `engine_dir` instead of the user's checkout. `timeout` overrides the scenario's
    episode length in tics.
    """
    path = (
        scenario
        if scenario.endswith('.cfg')
        else os.path.join(vzd.scenarios_path, scenario + '.cfg')
    )
    if not os.path.isfile(path):
        raise ParameterError(f"parameter 'scenario': no ViZDoom scenario at {path}")
    game = vzd.DoomGame()
    game.load_config(path)
    game.set_doom_config_path(os.path.join(engine_dir, '_vizdoom.ini'))
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_screen_resolution(getattr(vzd.ScreenResolution, 'RES_' + resolution.upper()))
    game.set_available_buttons(
        [
            vzd.Button.MOVE_FORWARD_BACKWARD_DELTA,
            vzd.Button.MOVE_LEFT_RIGHT_DELTA,
            vzd.Button.TURN_LEFT_RIGHT_DELTA,
            vzd.Button.JUMP,
        ]
    )
    game.set_available_game_variables(
        [vzd.GameVariable.POSITION_X, vzd.GameVariable.POSITION_Y, vzd.GameVariable.ANGLE]
    )
    game.set_mode(vzd.Mode.PLAYER)
    game.set_seed(seed)
    if timeout is not None:
        game.set_episode_timeout(timeout)
    working_dir = os.getcwd()
    os.chdir(engine_dir)
    try:
        game.init()
    finally:
        os.chdir(working_dir)
    return game


class DoomWorld(Node):
    def __init__(self) -> None:
        super().__init__('world')
        scenario = declare(
            self,
            'scenario',
            'my_way_home',
            'ViZDoom scenario (a .cfg bundled with vizdoom, or a path to one)',
            read_only=True,
        )
        resolution = declare(
            self,
            'resolution',
            '320x240',
            'Rendered frame size',
            choices=RESOLUTIONS,
            read_only=True,
        )
        self.osc_host = declare(
            self,
            'osc_host',
            '127.0.0.1',
            'Address the OSC input server binds (loopback unless you need otherwise)',
            read_only=True,
        )
        self.osc_port = declare(
            self,
            'osc_port',
            9000,
            'UDP port of the OSC input server (VRChat: 9000)',
            low=1,
            high=65535,
            read_only=True,
        )
        rate = declare(
            self,
            'publish_rate',
            10.0,
            'Frames published per second (Hz)',
            low=1.0,
            high=35.0,
            read_only=True,
        )
        self.turn_rate = declare(
            self,
            'turn_rate',
            120.0,
            'Degrees per second at LookHorizontal = 1',
            low=1.0,
            high=720.0,
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
            'ViZDoom seed (spawn points of my_way_home are random)',
            low=0,
            high=2**31 - 1,
            read_only=True,
        )

        self.engine_dir = tempfile.TemporaryDirectory(prefix='pamiq-vizdoom-')
        self.game = make_game(scenario, resolution, seed, self.engine_dir.name)
        self.inputs = HeldInputs()
        self.server = self.start_osc_server()
        self.episode = 0
        self.start_time = time.monotonic()
        self.tics = 0
        self.last_tick = 0.0
        self.travelled = 0.0
        self.last_xy: tuple[float, float] | None = None

        self.image_pub = self.create_publisher(Image, 'camera/image_raw', qos.IMAGE)
        self.pose_pub = self.create_publisher(PoseStamped, 'world/pose', qos.DEFAULT)
        self.reset_srv = self.create_service(Trigger, 'world/reset', self.reset_callback)
        self.tick_timer = self.create_timer(1.0 / rate, self.tick_callback)
        self.rate, self.meter = rate, RateMeter()
        self.diagnostics = Diagnostics(self, f'vizdoom {scenario}')
        self.diagnostics.add('world', self.world_check)
        if report_period > 0:
            self.report_timer = self.create_timer(report_period, self.report_callback)
        self.get_logger().info(
            f'Doom world {scenario} at {resolution}, OSC input on udp://{self.osc_host}:{self.osc_port}'
        )

    def start_osc_server(self) -> BlockingOSCUDPServer:
        dispatcher = Dispatcher()
        dispatcher.map(vrchat.ADDRESS_PREFIX + '*', self.inputs.handle)
        try:
            server = BlockingOSCUDPServer((self.osc_host, self.osc_port), dispatcher)
        except OSError as error:
            raise ParameterError(
                f"parameters 'osc_host'/'osc_port': cannot listen on "
                f'{self.osc_host}:{self.osc_port}: {error}'
            ) from error
        threading.Thread(target=server.serve_forever, name='osc-input', daemon=True).start()
        return server

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
        steps = min(due - self.tics, TICRATE // 2)
        self.tics = due
        command = doom_command(self.inputs.snapshot(), self.turn_rate / TICRATE)
        for _ in range(max(steps, 0)):
            if self.game.is_episode_finished():
                self.new_episode('episode finished')
            self.game.set_action(command)
            self.game.advance_action(1)
        if self.game.is_episode_finished():
            self.new_episode('episode finished')
        self.publish_state()

    def publish_state(self) -> None:
        state = self.game.get_state()
        if state is None:
            return
        stamp = self.get_clock().now().to_msg()
        self.image_pub.publish(numpy_to_image(state.screen_buffer, 'rgb8', stamp, 'doom_camera'))
        self.meter.tick()
        x, y, angle = (float(v) for v in state.game_variables)
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

    def world_check(self):
        x, y = self.last_xy or (math.nan, math.nan)
        rate = self.meter.rate()
        values = {
            'frame rate (Hz)': rate,
            'episode': self.episode,
            'position': f'({x:.0f}, {y:.0f})',
            'OSC packets received': self.inputs.packets,
            'OSC input': f'udp://{self.osc_host}:{self.osc_port}',
        }
        level = rate_level(rate, self.rate, self.meter.started)
        return level, f'episode {self.episode}, frames at {rate:.1f} Hz', values

    def report_callback(self) -> None:
        x, y = self.last_xy or (math.nan, math.nan)
        self.get_logger().info(
            f'episode {self.episode}: avatar at ({x:.0f}, {y:.0f}), '
            f'travelled {self.travelled:.0f} '
            f'map units since the last report, {self.inputs.packets} OSC packets received'
        )
        self.travelled = 0.0

    def new_episode(self, why: str) -> None:
        self.game.new_episode()
        self.last_xy = None  # a new spawn point is not travel
        self.episode += 1
        self.get_logger().info(f'{why}: episode {self.episode} started')

    def reset_callback(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        self.new_episode('reset requested')
        response.success = True
        response.message = f'episode {self.episode} started'
        return response

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.game.close()
        self.engine_dir.cleanup()


def main(args: list[str] | None = None) -> int:
    return spin.run(DoomWorld, args)


if __name__ == '__main__':
    raise SystemExit(main())
