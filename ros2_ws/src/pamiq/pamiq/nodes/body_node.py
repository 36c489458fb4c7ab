"""body_node: the agent's sense of its own body, from VRChat's avatar parameters over OSC.

VRChat sends `/avatar/parameters/<Name>` to UDP 9001 whenever a value changes (velocities,
AngularY, Grounded, Upright, Seated, AFK and the avatar's own), and `/avatar/change` when an
avatar loads; the Doom world sends the same. This node listens there (127.0.0.1 unless told
otherwise), holds the last value of each and publishes them at the agent's rate: `body/state`
(a named vector, BODY_FIELDS first) and `body/twist` (REP 103). Bad datagrams (not OSC, wrong
types, NaN, floods) are counted, logged throttled and dropped. With `oscquery` the listener is
advertised the way VRChat 2023.3+ finds OSC apps (pamiq.vrchat.oscquery).
"""

from __future__ import annotations

from dataclasses import dataclass
import time

from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from pamiq.ros import qos, spin, topics
from pamiq.ros.diagnostics import OK, WARN, Diagnostics, RateMeter
from pamiq.ros.parameters import ParameterError, declare_settings
from pamiq.ros.sense_messages import body_message, twist_message
from pamiq.settings import setting
from pamiq.vrchat.avatar import OUTPUT_HOST, OUTPUT_PORT, HeldParameters
from pamiq.vrchat.osc import OscListener


@dataclass(frozen=True)
class BodyConfig:
    osc_host: str = setting(OUTPUT_HOST, 'Address the OSC listener binds (VRChat sends here)')
    osc_port: int = setting(
        OUTPUT_PORT, "UDP port of VRChat's OSC output (VRChat: 9001)", low=1, high=65535
    )
    publish_rate: float = setting(10.0, 'Body states published per second', low=1.0, high=100.0)
    max_packet_rate: float = setting(
        2000.0,
        'Datagrams per second above which they are dropped as a flood (0: no limit)',
        low=0.0,
        high=1e6,
    )
    silence_warning: float = setting(
        10.0,
        'Seconds without any OSC from VRChat before diagnostics warn (a still avatar sends '
        'nothing)',
        low=1.0,
        high=3600.0,
        dynamic=True,
    )
    oscquery: bool = setting(False, 'Advertise the listener with OSCQuery (mDNS + HTTP)')


PARAMETERS = (BodyConfig,)


class Body(Node):
    def __init__(self) -> None:
        super().__init__('body')
        config = self.config = declare_settings(self, BodyConfig, self.reconfigure)
        self.held = HeldParameters()
        self.started = time.monotonic()
        try:
            self.listener = OscListener(
                config.osc_host,
                config.osc_port,
                self.held.routes(),
                self.bad_input,
                config.max_packet_rate,
                name='osc-body',
            )
        except OSError as error:
            raise ParameterError(
                f"parameters 'osc_host'/'osc_port': cannot listen on "
                f'{config.osc_host}:{config.osc_port}: {error}'
            ) from error
        self.advertiser = None
        if config.oscquery:
            from pamiq.vrchat.oscquery import OscQueryAdvertiser

            self.advertiser = OscQueryAdvertiser('pamiq', config.osc_host, config.osc_port)
        self.state_pub = qos.publisher(self, JointState, topics.BODY_STATE, qos.SENSE)
        self.twist_pub = qos.publisher(self, TwistStamped, topics.BODY_TWIST, qos.DEFAULT)
        self.timer = self.create_timer(1.0 / config.publish_rate, self.timer_callback)
        self.meter = RateMeter(self.get_clock())
        self.diagnostics = Diagnostics(self, f'osc udp://{config.osc_host}:{config.osc_port}')
        self.diagnostics.add('body', self.body_check)
        advertised = (
            f', advertised by OSCQuery on http port {self.advertiser.http_port}'
            if self.advertiser
            else ''
        )
        self.get_logger().info(
            f'listening for VRChat avatar parameters on {config.osc_host}:{config.osc_port}'
            + advertised
        )

    def reconfigure(self, config: BodyConfig) -> None:
        self.config = config

    def bad_input(self, kind: str, text: str) -> None:
        self.get_logger().warning(
            f'bad OSC input ({kind}): {text} ({self.listener.bad_input()} dropped so far)',
            throttle_duration_sec=5.0,
        )

    def timer_callback(self) -> None:
        stamp = self.get_clock().now().to_msg()
        values = self.held.snapshot()
        self.state_pub.publish(body_message(stamp, values))
        self.twist_pub.publish(twist_message(stamp, values))
        self.meter.tick()

    def body_check(self):
        listener = self.listener
        heard = listener.last_datagram or self.started
        silent = time.monotonic() - heard
        values = {
            'OSC input': f'udp://{listener.address[0]}:{listener.address[1]}',
            'avatar': self.held.avatar or '(none announced)',
            'parameters held': len(self.held.snapshot()),
            'values received': self.held.received,
            'datagrams': listener.datagrams,
            'malformed datagrams': listener.malformed,
            'rejected values': listener.rejected,
            'unknown addresses': listener.unrouted,
            'flood drops': listener.flooded,
            'seconds since OSC': silent,
            'state rate (Hz)': self.meter.rate(),
        }
        if silent > self.config.silence_warning:
            return (
                WARN,
                f'body sense silent: no OSC for {silent:.0f} s (is OSC on in VRChat?)',
                values,
            )
        return OK, f'{self.held.received} values from {self.held.avatar or "VRChat"}', values

    def shutdown(self) -> None:
        if self.advertiser is not None:
            self.advertiser.close()
        self.listener.close()


def main(args: list[str] | None = None) -> int:
    return spin.run(Body, args)


if __name__ == '__main__':
    raise SystemExit(main())
