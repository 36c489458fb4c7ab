"""doom_world_node: the built-in world, a headless ViZDoom map driven by VRChat OSC input.

It listens where VRChat would (UDP 127.0.0.1:9000) for `/input/<Name>` packets, holds each value
until it changes (as VRChat does), advances the game (pamiq.doom) in real time at Doom's 35
tics/s and publishes what the avatar sees on `camera/image_raw` plus ground truth on
`world/pose`.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
import tempfile
import time

from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pamiq import vrchat
from pamiq.doom import RESOLUTIONS, TICRATE, doom_command, make_game
from pamiq.osc import HeldInputs, listen
from pamiq.ros import qos, spin, topics
from pamiq.ros.diagnostics import Diagnostics, RateMeter, rate_level
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.settings import setting


@dataclass(frozen=True)
class WorldConfig:
    scenario: str = setting(
        'my_way_home', 'ViZDoom scenario (a .cfg bundled with vizdoom, or a path to one)'
    )
    resolution: str = setting('320x240', 'Rendered frame size', choices=RESOLUTIONS)
    osc_host: str = setting(
        vrchat.INPUT_HOST,
        'Address the OSC input server binds (loopback unless you need otherwise)',
    )
    osc_port: int = setting(
        vrchat.INPUT_PORT, 'UDP port of the OSC input server (VRChat: 9000)', low=1, high=65535
    )
    publish_rate: float = setting(10.0, 'Frames published per second (Hz)', low=1.0, high=35.0)
    turn_rate: float = setting(
        120.0, 'Degrees per second at LookHorizontal = 1', low=1.0, high=720.0, dynamic=True
    )
    report_period: float = setting(
        10.0, 'Seconds between progress lines in the log (0: none)', low=0.0, high=3600.0
    )
    seed: int = setting(
        0, 'ViZDoom seed (spawn points of my_way_home are random)', low=0, high=2**31 - 1
    )


PARAMETERS = (WorldConfig,)


class DoomWorld(Node):
    def __init__(self) -> None:
        super().__init__('world')
        config = self.config = declare_settings(self, WorldConfig, self.reconfigure)
        self.engine_dir = tempfile.TemporaryDirectory(prefix='pamiq-vizdoom-')
        try:
            self.game = make_game(
                config.scenario, config.resolution, config.seed, self.engine_dir.name
            )
        except ValueError as error:
            self.engine_dir.cleanup()
            raise ParameterError(f"parameter 'scenario': {error}") from error
        self.inputs = HeldInputs()
        self.input_url = f'udp://{config.osc_host}:{config.osc_port}'
        try:
            self.server = listen(config.osc_host, config.osc_port, self.inputs)
        except OSError as error:
            self.game.close()
            self.engine_dir.cleanup()
            raise ParameterError(
                f"parameters 'osc_host'/'osc_port': cannot listen on "
                f'{config.osc_host}:{config.osc_port}: {error}'
            ) from error
        self.episode = 0
        self.start_time = time.monotonic()
        self.tics = 0
        self.last_tick = 0.0
        self.travelled = 0.0
        self.last_xy: tuple[float, float] | None = None

        self.image_pub = self.create_publisher(Image, topics.IMAGE, qos.IMAGE_PUBLISHER)
        self.pose_pub = self.create_publisher(PoseStamped, topics.POSE, qos.DEFAULT)
        self.reset_srv = self.create_service(Trigger, topics.WORLD_RESET, self.reset_callback)
        self.tick_timer = self.create_timer(1.0 / config.publish_rate, self.tick_callback)
        self.meter = RateMeter()
        self.diagnostics = Diagnostics(self, f'vizdoom {config.scenario}')
        self.diagnostics.add('world', self.world_check)
        if config.report_period > 0:
            self.report_timer = self.create_timer(config.report_period, self.report_callback)
        self.get_logger().info(
            f'Doom world {config.scenario} at {config.resolution}, OSC input on {self.input_url}'
        )

    def reconfigure(self, config: WorldConfig) -> None:
        self.config = config

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
        command = doom_command(self.inputs.snapshot(), self.config.turn_rate / TICRATE)
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
            'OSC input': self.input_url,
        }
        level = rate_level(rate, self.config.publish_rate, self.meter.started)
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
