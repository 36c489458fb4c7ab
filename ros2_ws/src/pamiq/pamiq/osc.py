"""VRChat's OSC input over UDP, both ways: sending it (the actuator) and holding what arrives
(the Doom world, which listens where VRChat would). No ROS here.
"""

from __future__ import annotations

import socket
import threading
import time

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_server import BlockingOSCUDPServer

from pamiq import vrchat


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

    def send(self, name: str, value: float | int) -> None:
        builder = OscMessageBuilder(address=vrchat.address(name))
        builder.add_arg(value)  # float -> OSC float32, int -> OSC int32
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sock.connect(self.destination)
            self.sock.send(builder.build().dgram)
        except OSError as error:  # no route, port closed, name not resolved: report, go on
            self.errors += 1
            self.last_error = f'{self.destination[0]}:{self.destination[1]}: {error}'
            self.last_error_time = time.monotonic()
            if not isinstance(error, ConnectionRefusedError) and self.sock is not None:
                self.sock.close()
                self.sock = None
            return
        self.packets += 1
        self.sent[name] = value


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


def listen(host: str, port: int, inputs: HeldInputs) -> BlockingOSCUDPServer:
    """Serve VRChat input packets on UDP host:port into `inputs`, from a thread of its own.

    Raises:
        OSError: The address cannot be bound (in use, not local).
    """
    dispatcher = Dispatcher()
    dispatcher.map(vrchat.ADDRESS_PREFIX + '*', inputs.handle)
    server = BlockingOSCUDPServer((host, port), dispatcher)
    threading.Thread(target=server.serve_forever, name='osc-input', daemon=True).start()
    return server
