"""The body sense over real UDP: VRChat's avatar parameters held and published, the Doom world
sending its body as VRChat would, bad OSC of every kind counted and dropped by both listeners
(with throttled logs), and the OSCQuery advertisement VRChat discovers."""

from __future__ import annotations

import json
import math
import random
import socket
import struct
import time
import urllib.request

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from pamiq.doom.game import avatar_parameters
from pamiq.ros import qos, topics
from pamiq.vrchat.avatar import BODY_FIELDS, HeldParameters
from pamiq.vrchat.osc import OscListener, OscSender, parse_datagram
import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from rosgraph import NAMESPACE, NodeProcess, diagnostic_value, free_udp_port, wait_until
from sensor_msgs.msg import JointState


def message(address: str, *args) -> bytes:
    builder = OscMessageBuilder(address=address)
    for arg in args:
        builder.add_arg(arg)
    return builder.build().dgram


def bad_datagrams(prefix: str, count: int, seed: int = 0) -> list[bytes]:
    """What went to the world's input in the field: random bytes, broken bundles, NaN/inf/1e30
    floats, strings for floats, 5,000-character addresses (in turn)."""
    rng = random.Random(seed)
    kinds = [
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
        lambda: b'#bundle\x00' + bytes(8) + struct.pack('>i', 999) + b'/x\x00\x00',
        lambda: b'#bundle\x00' + bytes(8) + struct.pack('>i', 8) + b'garbage!',
        lambda: message(prefix + 'VelocityX', math.nan),
        lambda: message(prefix + 'VelocityZ', math.inf),
        lambda: message(prefix + 'Vertical', 1e30 * -math.inf),
        lambda: message(prefix + 'AngularY', 'fast'),
        lambda: message('/' + 'a' * 5000, 1.0),
        lambda: message(prefix + 'Upright', 1.0e30),
    ]
    return [kinds[i % len(kinds)]() for i in range(count)]


def send_all(port: int, datagrams: list[bytes], paced: bool = True) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for index, datagram in enumerate(datagrams):
            sock.sendto(datagram, ('127.0.0.1', port))
            if paced and index % 10 == 9:
                time.sleep(0.005)  # a barrage, not an overflow of the kernel's socket buffer


def test_datagrams_that_are_not_osc_are_refused_with_a_reason():
    assert [m.address for m in parse_datagram(message('/avatar/parameters/AFK', True))] == [
        '/avatar/parameters/AFK'
    ]
    for bad in (b'', b'\x00\x01', b'#bundle\x00', b'#bundle\x00' + bytes(8) + b'\x00\x00\x00\x09'):
        with pytest.raises(ValueError):
            parse_datagram(bad)


def test_a_listener_counts_every_kind_of_bad_input_and_drops_floods():
    held = HeldParameters()
    problems: list[tuple[str, str]] = []
    port = free_udp_port()
    listener = OscListener(
        '127.0.0.1', port, held.routes(), lambda k, t: problems.append((k, t)), max_rate=500
    )
    try:
        send_all(port, [message('/avatar/parameters/VelocityZ', 1.5)])
        assert wait_until(lambda: held.snapshot() == {'VelocityZ': 1.5}, 5.0)
        send_all(port, bad_datagrams('/avatar/parameters/', 450))
        assert wait_until(lambda: listener.datagrams == 451, 10.0)
        assert listener.malformed == 150 and listener.rejected == 250 and listener.unrouted == 50
        assert held.snapshot() == {'VelocityZ': 1.5}  # nothing bad was held
        assert all(len(text) <= 200 for _, text in problems)  # never a 5,000-character line
        time.sleep(1.0)  # the bucket refills
        send_all(port, [message('/avatar/parameters/Seated', True)] * 2000, paced=False)
        time.sleep(1.0)
        burst = listener.datagrams - 451  # what the kernel delivered of the 2,000
        assert burst > 1000
        # A full bucket lets 500 through, and 500/s more while the rest are read.
        assert burst // 3 <= listener.flooded <= burst - 500
        assert held.snapshot()['Seated'] == 1.0
    finally:
        listener.close()


def test_doom_body_is_expressed_as_vrchat_does_it():
    forward = avatar_parameters((8.0, 0.0, 0.0), 0.0, 0.0, True)  # east, facing east
    assert forward['VelocityZ'] == pytest.approx(8.0 * 35 / 32) and forward['VelocityX'] == 0.0
    right = avatar_parameters((0.0, -8.0, 0.0), 0.0, 0.0, True)  # south: the avatar's right
    assert right['VelocityX'] > 0 and abs(right['VelocityZ']) < 1e-9
    assert avatar_parameters((0, 0, 0), 90.0, 60.0, False)['AngularY'] == -60.0  # left turn
    assert set(forward) == set(BODY_FIELDS)


def test_the_doom_world_moves_the_body_sense_and_both_listeners_shrug_off_bad_input(probe):
    input_port, body_port = free_udp_port(), free_udp_port()
    world = NodeProcess(
        'doom_world_node', 'world', {'osc_port': input_port, 'body_osc_port': body_port}
    )
    body = NodeProcess('body_node', 'body', {'osc_port': body_port})
    probe.record(JointState, topics.BODY_STATE, qos.SENSE)
    probe.record(TwistStamped, topics.BODY_TWIST, qos.DEFAULT)
    probe.record(DiagnosticArray, topics.DIAGNOSTICS, 100)

    def latest() -> dict[str, float]:
        states = probe.messages(topics.BODY_STATE)
        return dict(zip(states[-1].name, states[-1].position)) if states else {}

    try:
        announced = 'avtr_pamiq_doom_my_way_home'
        assert wait_until(
            lambda: diagnostic_value(probe, f'{NAMESPACE}/body', 'avatar') == announced, 40.0
        ), world.output() + body.output()
        inputs = OscSender('127.0.0.1', input_port)
        inputs.send('MoveForward', 1)  # at this spawn the player slides along a wall
        assert wait_until(lambda: latest().get('VelocityMagnitude', 0.0) > 1.0, 10.0), latest()

        def speed() -> float:
            twist = probe.messages(topics.BODY_TWIST)[-1].twist.linear
            return math.hypot(twist.x, twist.y)

        assert wait_until(lambda: speed() > 1.0, 5.0)
        inputs.send('MoveForward', 0)
        inputs.send('LookHorizontal', 1.0)  # turning right: AngularY > 0, REP 103 angular.z < 0
        assert wait_until(lambda: latest().get('AngularY', 0.0) > 60.0, 10.0), latest()
        assert wait_until(
            lambda: probe.messages(topics.BODY_TWIST)[-1].twist.angular.z < -1.0, 5.0
        )
        inputs.send('LookHorizontal', 0.0)

        send_all(input_port, bad_datagrams('/input/', 5000, seed=1))
        send_all(body_port, bad_datagrams('/avatar/parameters/', 5000, seed=2))

        def count(node: str, key: str) -> int:
            value = diagnostic_value(probe, f'{NAMESPACE}/{node}', key)
            return int(value) if value is not None else 0

        # UDP may lose some of a barrage in the kernel; most must arrive and be counted.
        assert wait_until(lambda: count('world', 'OSC malformed datagrams') >= 1000, 15.0), count(
            'world', 'OSC malformed datagrams'
        )
        assert wait_until(lambda: count('body', 'malformed datagrams') >= 400, 15.0), count(
            'body', 'malformed datagrams'
        )
        assert count('world', 'OSC rejected values') >= 400
        assert count('body', 'rejected values') >= 400
        rate = diagnostic_value(probe, f'{NAMESPACE}/world', 'frame rate (Hz)')
        assert float(rate) > 8.0  # still acting at 10 Hz
        assert world.process.poll() is None and body.process.poll() is None
        assert latest()['Upright'] == 1.0 and math.isfinite(latest()['VelocityX'])
    finally:
        assert world.stop() == 0 and body.stop() == 0
    for node in (world, body):
        output = node.output()
        assert 'Could not identify content type' not in output  # python-osc's own logger
        assert output.count('bad OSC input') <= 10, output[-2000:]  # throttled, not 5,000 lines


def test_oscquery_tells_vrchat_where_the_body_sense_listens():
    zeroconf = pytest.importorskip('zeroconf')
    port = free_udp_port()
    body = NodeProcess('body_node', 'body', {'osc_port': port, 'oscquery': True})
    try:
        assert wait_until(lambda: 'advertised by OSCQuery' in body.output(), 30.0), body.output()
        http_port = int(body.output().split('OSCQuery on http port ')[1].split()[0])
        base = f'http://127.0.0.1:{http_port}'
        info = json.load(urllib.request.urlopen(base + '/?HOST_INFO', timeout=5))
        assert info['OSC_PORT'] == port and info['OSC_TRANSPORT'] == 'UDP'
        tree = json.load(urllib.request.urlopen(base + '/', timeout=5))
        assert tree['CONTENTS']['avatar']['CONTENTS']['change']['FULL_PATH'] == '/avatar/change'
        # What VRChat does: browse mDNS (here on loopback only) and resolve the service.
        browser = zeroconf.Zeroconf(interfaces=['127.0.0.1'])
        try:
            found = wait_until(
                lambda: (
                    browser.get_service_info(
                        '_oscjson._tcp.local.', 'pamiq._oscjson._tcp.local.', timeout=1000
                    )
                    is not None
                ),
                15.0,
            )
            assert found
            service = browser.get_service_info(
                '_oscjson._tcp.local.', 'pamiq._oscjson._tcp.local.', timeout=3000
            )
            assert service.port == http_port
        finally:
            browser.close()
    finally:
        assert body.stop() == 0, body.output()
