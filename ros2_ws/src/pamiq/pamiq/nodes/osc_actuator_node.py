"""osc_actuator_node: moves the avatar by sending VRChat OSC input packets (the agent's 'affect').

Subscribes `action` (sensor_msgs/JointState, names = VRChat input names) and `cmd_vel`
(geometry_msgs/Twist from teleop_twist_keyboard) and sends `/input/<Name>` over UDP
(pamiq.vrchat.osc). Axes go out as floats in [-1, 1], buttons as ints 0/1. A watchdog returns every
input to neutral when no command arrived for `timeout` seconds, and shutdown sends all of
VRChat's reset values.
"""

from __future__ import annotations

from dataclasses import dataclass
import time

from geometry_msgs.msg import Twist
from rclpy.node import Node
from sensor_msgs.msg import JointState

from pamiq.ros import qos, spin, topics
from pamiq.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from pamiq.ros.parameters import declare_settings
from pamiq.settings import setting
from pamiq.vrchat import controller
from pamiq.vrchat.osc import OscSender, frame_marker
from pamiq.vrchat.smoothing import AxisLag, ButtonHold


@dataclass(frozen=True)
class ActuatorConfig:
    osc_host: str = setting(
        controller.INPUT_HOST, 'Host that receives the OSC input (VRChat or the Doom world)'
    )
    osc_port: int = setting(
        controller.INPUT_PORT, "UDP port of VRChat's OSC input", low=1, high=65535
    )
    timeout: float = setting(
        0.5,
        'Seconds without a command before all inputs return to neutral',
        low=0.05,
        high=60.0,
        dynamic=True,
    )
    deadzone: float = setting(
        0.0,
        'Axis magnitudes below this are sent as 0.0 (the original experiment used 0.25)',
        low=0.0,
        high=1.0,
        dynamic=True,
    )
    tap_buttons: tuple[str, ...] = setting(
        ('Jump',),
        'Buttons where every 1 is a new press: a repeated 1 is released first '
        'so VRChat registers it',
        dynamic=True,
    )
    retap_delay: float = setting(
        0.03,
        'Seconds a tap button stays released before it is pressed again',
        low=0.0,
        high=0.5,
        dynamic=True,
    )
    frame_markers: bool = setting(
        False,
        'After each action send /pamiq/frame <stamp> (a lockstep world steps on it; '
        'VRChat knows no such address)',
    )
    cmd_vel_scale: float = setting(
        1.0,
        'Factor from cmd_vel (m/s, rad/s) to VRChat axis values',
        low=0.0,
        high=10.0,
        dynamic=True,
    )
    axis_time_constant: float = setting(
        0.0,
        'Axes follow their command through a first-order lag of this time constant (s; 0: off)',
        low=0.0,
        high=5.0,
    )
    button_min_hold: float = setting(
        0.0,
        'A button stays pressed, or released, at least this long (s; 0: off)',
        low=0.0,
        high=5.0,
    )


PARAMETERS = (ActuatorConfig,)

WATCHDOG_PERIOD = 0.05  # s: 20 Hz in real time
SIMULATED_WATCHDOG_PERIOD = 0.1  # s of simulated time: one world step at 10 Hz


class OscActuator(Node):
    def __init__(self, sender: OscSender | None = None) -> None:
        super().__init__('osc_actuator')
        self.config = declare_settings(self, ActuatorConfig, self.reconfigure)
        self.sender = sender or OscSender(self.config.osc_host, self.config.osc_port)
        self.last_command = self.now()
        self.neutral = True  # nothing non-neutral has been sent yet
        self.rejected = 0
        self.pending_presses: list[tuple[float, str]] = []
        # Optional smoothing for natural movement (pamiq.vrchat.smoothing); neutral bypasses it.
        self.lag = AxisLag(self.config.axis_time_constant)
        self.hold = ButtonHold(self.config.button_min_hold)

        self.action_sub = self.create_subscription(
            JointState, topics.ACTION, self.action_callback, qos.ACTION
        )
        self.cmd_vel_sub = self.create_subscription(
            Twist, topics.CMD_VEL, self.cmd_vel_callback, qos.DEFAULT
        )
        # On the node's clock (simulated under use_sim_time): the watchdog and delayed
        # re-presses are checked well inside one 10 Hz period of the time the world keeps.
        # Simulated time jumps a whole world step at once, and a timer fires for each period
        # the jump covers: there once per step is as often as anything can change.
        simulated = self.get_parameter('use_sim_time').value
        period = SIMULATED_WATCHDOG_PERIOD if simulated else WATCHDOG_PERIOD
        self.watchdog_timer = self.create_timer(period, self.watchdog_callback)
        self.diagnostics = Diagnostics(self, 'osc')
        self.diagnostics.add('osc output', self.osc_check)
        host, port = self.sender.destination
        self.get_logger().info(f'sending VRChat OSC input to {host}:{port}')

    def reconfigure(self, config: ActuatorConfig) -> None:
        self.config = config

    def now(self) -> float:
        """Seconds of the node's clock: simulated time under use_sim_time, as the watchdog must
        be (a lockstep world waiting for the trainer is not a silent agent)."""
        return self.get_clock().now().nanoseconds / 1e9

    def action_callback(self, msg: JointState) -> None:
        if len(msg.name) != len(msg.position):
            self.reject(f'action has {len(msg.name)} names but {len(msg.position)} positions')
            return
        if not self.config.frame_markers:
            self.apply(dict(zip(msg.name, msg.position)))
            return
        # Lockstep: the inputs and then the frame's marker, in one bundle (one datagram).
        self.sender.start_bundle()
        self.apply(dict(zip(msg.name, msg.position)))
        stamp = msg.header.stamp
        self.sender.send_message(*frame_marker(stamp.sec * 1_000_000_000 + stamp.nanosec))
        self.sender.send_bundle()

    def cmd_vel_callback(self, msg: Twist) -> None:
        s = self.config.cmd_vel_scale
        self.apply(controller.twist_to_axes(msg.linear.x * s, msg.linear.y * s, msg.angular.z * s))

    def apply(self, command: dict[str, float]) -> None:
        self.last_command = self.now()
        for name, raw in command.items():
            value, problem = controller.sanitize(name, raw, self.config.deadzone)
            if problem:
                self.reject(problem)
            if value is None:
                continue
            value = self.smoothed(name, value)
            if value is None:
                continue
            if name in self.config.tap_buttons and value == 1 and self.sender.sent.get(name) == 1:
                self.sender.send(name, 0)
                self.pending_presses.append((self.now() + self.config.retap_delay, name))
                continue
            self.sender.send(name, value)
        self.neutral = False

    def smoothed(self, name: str, value: float | int) -> float | int | None:
        """The value to send now with smoothing on (None: a button must hold a while)."""
        if controller.is_axis(name) and self.config.axis_time_constant > 0:
            return self.lag.command(name, float(value), self.now())
        if controller.is_button(name) and self.config.button_min_hold > 0:
            return self.hold.command(name, int(value), self.now())
        return value

    def smoothing_callback(self, now: float) -> None:
        """Axes on their way to the command and buttons whose hold is over, sent."""
        if self.neutral:
            return
        for name, value in self.lag.advance(now).items():
            if abs(value - float(self.sender.sent.get(name, 0.0))) > 1e-3:
                self.sender.send(name, value)
        for name, value in self.hold.due(now).items():
            self.sender.send(name, value)

    def reject(self, problem: str) -> None:
        self.rejected += 1
        self.get_logger().warning(
            f'{problem} (rejected inputs so far: {self.rejected})', throttle_duration_sec=2.0
        )

    def watchdog_callback(self) -> None:
        now = self.now()
        due = [name for when, name in self.pending_presses if when <= now]
        self.pending_presses = [(w, n) for w, n in self.pending_presses if w > now]
        for name in due:
            self.sender.send(name, 1)
        self.smoothing_callback(now)
        if not self.neutral and now - self.last_command > self.config.timeout:
            self.get_logger().warning(
                f'no command for {self.config.timeout:.2f} s: inputs back to neutral'
            )
            self.send_all(controller.NEUTRAL_VALUES)
            self.neutral = True
        # Send errors are wall-clock events (the socket fails in wall time, whatever the clock).
        if self.sender.errors and time.monotonic() - self.sender.last_error_time < 1.0:
            self.get_logger().error(
                f'OSC send failed {self.sender.errors} times: {self.sender.last_error}',
                throttle_duration_sec=5.0,
            )

    def osc_check(self):
        age = self.now() - self.last_command
        values = {
            'destination': f'{self.sender.destination[0]}:{self.sender.destination[1]}',
            'packets sent': self.sender.packets,
            'send errors': self.sender.errors,
            'rejected inputs': self.rejected,
            'seconds since last command': age,
        }
        if self.sender.errors and time.monotonic() - self.sender.last_error_time < 5.0:
            return ERROR, f'OSC send failing: {self.sender.last_error}', values
        if age > 2.0:
            return WARN, f'no action for {age:.0f} s (inputs neutral)', values
        return OK, 'sending', values

    def send_all(self, values: dict[str, float | int]) -> None:
        self.pending_presses.clear()
        self.lag.reset({n: float(v) for n, v in values.items() if controller.is_axis(n)})
        self.hold.reset({n: int(v) for n, v in values.items() if controller.is_button(n)})
        for name, value in values.items():
            self.sender.send(name, value)

    def shutdown(self) -> None:
        """Leave VRChat with every input released (runs on Ctrl-C and SIGTERM)."""
        self.send_all(controller.RESET_VALUES)
        self.get_logger().info('sent VRChat reset values')


def main(args: list[str] | None = None) -> int:
    return spin.run(OscActuator, args)


if __name__ == '__main__':
    raise SystemExit(main())
