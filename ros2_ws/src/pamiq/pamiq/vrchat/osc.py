"""VRChat's OSC over UDP, both ways: sending it (the actuator, the Doom world's avatar
parameters) and receiving it (the Doom world's input, the body sense). No ROS here.
"""

from __future__ import annotations

from collections.abc import Callable
import socket
import struct
import threading
import time

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from pamiq.vrchat import controller

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
        if self.send_message(controller.address(name), (value,)):
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

    def handle(self, address: str, *args: object) -> str:
        """Hold one input; returns '' or why it was dropped (unknown names, NaN, strings)."""
        name = address.removeprefix(controller.ADDRESS_PREFIX)
        if len(args) != 1 or isinstance(args[0], bool) or not isinstance(args[0], (int, float)):
            return f'{short(address)}: arguments {short(args)} are not one number'
        value, problem = controller.sanitize(name, args[0])
        if value is None:
            return problem
        with self.lock:
            self.values[name] = float(value)
            self.packets += 1
        return ''

    def handle_frame(self, address: str, *args: object) -> str:
        if len(args) != 2 or not all(type(a) is int for a in args):
            return f'{address}: arguments {short(args)} are not two int32'
        stamp = args[0] * 1_000_000_000 + args[1]
        with self.lock:
            if stamp == self.expected and self.answer is None:
                self.answer = stamp
                self.answered.notify_all()
            else:
                self.stray_markers += 1
        return ''

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


Handler = Callable[..., str]  # (address, *arguments) -> '' or why it dropped them


def short(value: object, limit: int = 60) -> str:
    """repr() cut to `limit` characters: bad input is quoted in logs, never at full length."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + '...'


def parse_datagram(data: bytes) -> list[OscMessage]:
    """The messages of one OSC datagram (a message or a bundle, nested bundles flattened).

    python-osc's own packet parser logs every unknown bundle element through the root logger,
    unthrottled, and swallows errors; this one raises ValueError instead, so the listener can
    count and report bad input itself. Bundle time tags are ignored (VRChat applies at once).
    """
    if data.startswith(b'#bundle\x00'):
        if len(data) < 16:
            raise ValueError('bundle shorter than its header')
        messages, index = [], 16
        while index < len(data):
            if index + 4 > len(data):
                raise ValueError('bundle element without a complete size')
            (size,) = struct.unpack('>i', data[index : index + 4])
            index += 4
            if size <= 0 or size % 4 or index + size > len(data):
                raise ValueError(f'bundle element of size {size} at byte {index - 4}')
            messages += parse_datagram(data[index : index + size])
            index += size
        return messages
    if not OscMessage.dgram_is_message(data):
        raise ValueError('neither an OSC message nor a bundle')
    try:
        message = OscMessage(data)
        message.params  # noqa: B018 (parsed on construction; a bad type tag raises here)
    except Exception as error:  # python-osc raises ParseError, IndexError, UnicodeDecodeError
        raise ValueError(f'unparsable message: {error}') from error
    return [message]


class OscListener:
    """A UDP OSC server on a thread of its own that counts and reports what it cannot use.

    `routes` maps an address (or a prefix ending in '/') to a handler that returns '' when it
    used the message, else why it dropped it. Every datagram is accounted for: `malformed`
    (not OSC), `unrouted` (an address nobody takes), `rejected` (a handler refused its values),
    `flooded` (over `max_rate` datagrams per second, dropped unread). `on_problem` hears each
    problem (kind, text) so the node can log it, throttled; nothing is logged here.

    Raises:
        OSError: The address cannot be bound (in use, not local).
    """

    def __init__(
        self,
        host: str,
        port: int,
        routes: dict[str, Handler],
        on_problem: Callable[[str, str], None] = lambda kind, text: None,
        max_rate: float = 0.0,
        name: str = 'osc-listener',
    ) -> None:
        self.routes, self.on_problem, self.max_rate = routes, on_problem, max_rate
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for bursts (VRChat sends every parameter after an avatar change); the kernel
        # caps it at net.core.rmem_max.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            self.sock.bind((host, port))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.datagrams = self.messages = 0
        self.malformed = self.unrouted = self.rejected = self.flooded = 0
        self.last_datagram = 0.0  # monotonic time of the newest datagram, 0: none yet
        self.tokens, self.refilled = max_rate, time.monotonic()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, name=name, daemon=True)
        self.thread.start()

    def bad_input(self) -> int:
        return self.malformed + self.unrouted + self.rejected + self.flooded

    def serve(self) -> None:
        while not self.stopped.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            self.receive(data)

    def within_rate(self) -> bool:
        if self.max_rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.max_rate, self.tokens + (now - self.refilled) * self.max_rate)
        self.refilled = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def receive(self, data: bytes) -> None:
        self.datagrams += 1
        self.last_datagram = time.monotonic()
        if not self.within_rate():
            self.flooded += 1
            self.on_problem('flooded', f'more than {self.max_rate:g} datagrams/s: dropped')
            return
        try:
            messages = parse_datagram(data)
        except ValueError as error:
            self.malformed += 1
            self.on_problem('malformed', f'{len(data)}-byte datagram dropped: {error}')
            return
        for message in messages:
            self.messages += 1
            handler = self.route(message.address)
            if handler is None:
                self.unrouted += 1
                self.on_problem('unrouted', f'no use for address {short(message.address)}')
                continue
            try:
                problem = handler(message.address, *message.params)
            except Exception as error:  # a handler's bug must not end the listener
                problem = f'{short(message.address)}: {error!r}'
            if problem:
                self.rejected += 1
                self.on_problem('rejected', problem[:200])

    def route(self, address: str) -> Handler | None:
        if address in self.routes:
            return self.routes[address]
        for prefix, handler in self.routes.items():
            if prefix.endswith('/') and address.startswith(prefix) and len(address) > len(prefix):
                return handler
        return None

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        self.thread.join(timeout=2.0)


def listen(
    host: str,
    port: int,
    inputs: HeldInputs,
    on_problem: Callable[[str, str], None] = lambda kind, text: None,
) -> OscListener:
    """Serve VRChat input packets on UDP host:port into `inputs`, from a thread of its own.

    Raises:
        OSError: The address cannot be bound (in use, not local).
    """
    routes = {controller.ADDRESS_PREFIX: inputs.handle, FRAME_ADDRESS: inputs.handle_frame}
    return OscListener(host, port, routes, on_problem, name='osc-input')
