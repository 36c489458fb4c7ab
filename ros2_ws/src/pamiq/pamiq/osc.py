"""VRChat's OSC input over UDP, both ways: sending it (the actuator) and holding what arrives
(the Doom world, which listens where VRChat would). No ROS here.
"""

from __future__ import annotations

import socket
import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from pamiq import vrchat

# Lockstep worlds: after an action's inputs the actuator sends FRAME_ADDRESS with the stamp of
# the frame the action answers (int32 seconds, int32 nanoseconds). It is pamiq's own address,
# outside VRChat's /input/ namespace, and only sent when the actuator's `frame_markers` is on.
FRAME_ADDRESS = '/pamiq/frame'


def frame_marker(stamp_ns: int) -> tuple[str, tuple[int, int]]:
    """The OSC address and arguments that say "the inputs for frame `stamp_ns` are sent"."""
    return FRAME_ADDRESS, divmod(stamp_ns, 1_000_000_000)


class OscSender:
    """Sends VRChat inputs over UDP and remembers the last value sent for each input.

    The socket is connected to the destination, so a closed port shows up (ECONNREFUSED on
    the next send, from the ICMP reply) and an unreachable host fails the send: both are
    counted and reported, and sending simply goes on.
    """

    def __init__(self, host: str, port: int) -> None:
        self.destination = (host, port)
        self.sock: socket.socket | None = None
        self.sent: dict[str, float | int] = {}
        self.errors = 0
        self.last_error = ''
        self.last_error_time = 0.0
        self.packets = 0
        self.bundled: list[OscMessage] | None = None

    def start_bundle(self) -> None:
        """Collect the next messages into one OSC bundle, sent by `send_bundle`: one datagram
        per lockstep action instead of one per input (VRChat itself gets single messages)."""
        self.bundled = []

    def send_bundle(self) -> None:
        messages, self.bundled = self.bundled or [], None
        builder = OscBundleBuilder(IMMEDIATELY)
        for message in messages:
            builder.add_content(message)
        self.transmit(builder.build().dgram, len(messages))

    def send(self, name: str, value: float | int) -> None:
        if self.send_message(vrchat.address(name), (value,)):
            self.sent[name] = value

    def send_message(self, address: str, args: tuple[float | int, ...]) -> bool:
        """Send one OSC message; False (counted, reported) when the send failed."""
        builder = OscMessageBuilder(address=address)
        for arg in args:
            builder.add_arg(arg)  # float -> OSC float32, int -> OSC int32
        if self.bundled is not None:
            self.bundled.append(builder.build())
            return True
        return self.transmit(builder.build().dgram, 1)

    def transmit(self, datagram: bytes, messages: int) -> bool:
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.connect(self.destination)
            self.sock.send(datagram)
        except OSError as error:  # no route, port closed, name not resolved: report, go on
            self.errors += 1
            self.last_error = f'{self.destination[0]}:{self.destination[1]}: {error}'
            self.last_error_time = time.monotonic()
            if not isinstance(error, ConnectionRefusedError) and self.sock is not None:
                self.sock.close()
                self.sock = None
            return False
        self.packets += messages
        return True


class HeldInputs:
    """The last value received for each VRChat input, written by the OSC server thread.

    For a lockstep world it also matches frame markers: `expect(stamp)` before a frame goes
    out, `wait(timeout)` until the marker of exactly that frame arrives. Packets on one UDP
    socket keep their order on loopback, so the inputs sent before a marker are held when it
    arrives. A marker for another frame (a repeated or late answer) is counted, never applied.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, float] = {}
        self.packets = 0
        self.answered = threading.Condition(self.lock)
        self.expected: int | None = None  # stamp (ns) of the frame waiting for its action
        self.answer: int | None = None
        self.stray_markers = 0

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

    def handle_frame(self, address: str, *args: object) -> None:
        if len(args) != 2 or not all(isinstance(a, int) for a in args):
            return
        stamp = args[0] * 1_000_000_000 + args[1]
        with self.lock:
            if stamp == self.expected and self.answer is None:
                self.answer = stamp
                self.answered.notify_all()
            else:
                self.stray_markers += 1

    def expect(self, stamp_ns: int) -> None:
        """The next frame goes out with this stamp: only its marker will answer `wait`."""
        with self.lock:
            self.expected, self.answer = stamp_ns, None

    def wait(self, timeout: float) -> bool:
        """True once the expected frame's marker arrived (its inputs are held); False on
        timeout."""
        with self.lock:
            return self.answered.wait_for(lambda: self.answer is not None, timeout)

    def snapshot(self) -> dict[str, float]:
        with self.lock:
            return dict(self.values)

    def clear(self) -> None:
        with self.lock:
            self.values.clear()


def listen(host: str, port: int, inputs: HeldInputs) -> BlockingOSCUDPServer:
    """Serve VRChat input packets on UDP host:port into `inputs`, from a thread of its own.

    Raises:
        OSError: The address cannot be bound (in use, not local).
    """
    dispatcher = Dispatcher()
    dispatcher.map(vrchat.ADDRESS_PREFIX + '*', inputs.handle)
    dispatcher.map(FRAME_ADDRESS, inputs.handle_frame)
    server = BlockingOSCUDPServer((host, port), dispatcher)
    threading.Thread(target=server.serve_forever, name='osc-input', daemon=True).start()
    return server
