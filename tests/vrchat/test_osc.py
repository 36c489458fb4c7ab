"""VRChat OSC over real UDP both ways (pamiq.vrchat.osc): a bundle arrives whole and in order,
and a lockstep world's inputs hold what came before the frame marker."""

from __future__ import annotations

from pamiq.vrchat.osc import HeldInputs, OscSender, frame_marker, listen
from rosgraph import OscRecorder, free_udp_port, wait_until


def test_a_bundle_delivers_its_messages_in_order():
    recorder = OscRecorder()
    try:
        sender = OscSender('127.0.0.1', recorder.port)
        sender.start_bundle()
        sender.send('Vertical', 0.5)
        sender.send('LookHorizontal', -0.25)
        sender.send_message(*frame_marker(3_100_000_000))
        assert recorder.snapshot() == []  # nothing goes out before the bundle is complete
        sender.send_bundle()
        assert wait_until(lambda: len(recorder.snapshot()) == 3, 5.0)
        assert recorder.take() == [
            ('/input/Vertical', 0.5),
            ('/input/LookHorizontal', -0.25),
            ('/pamiq/frame', (3, 100_000_000)),
        ]
        assert sender.packets == 3 and sender.sent == {'Vertical': 0.5, 'LookHorizontal': -0.25}
    finally:
        recorder.close()


def test_the_marker_arrives_after_the_inputs_it_closes():
    inputs = HeldInputs()
    port = free_udp_port()
    server = listen('127.0.0.1', port, inputs)
    try:
        sender = OscSender('127.0.0.1', port)
        for step in range(50):
            stamp = (step + 1) * 100_000_000
            inputs.expect(stamp)
            sender.start_bundle()
            sender.send('Vertical', step / 50)
            sender.send_message(*frame_marker(stamp))
            sender.send_bundle()
            assert inputs.wait(2.0), step
            assert abs(inputs.snapshot()['Vertical'] - step / 50) < 1e-6  # float32 on the wire
        assert inputs.stray_markers == 0
    finally:
        server.close()
