"""VRChat on another PC: pamiq on one host drives a VRChat on another host of the LAN, OSC both
ways. Two network namespaces joined by a switch stand in for the two PCs (tests/netns.py);
VRChat itself is a stand-in that listens for OSC input on its port 9000 and sends avatar
parameters to pamiq's host, as `VRChat.exe --osc=9000:<pamiq host>:9001` does."""

from __future__ import annotations

import json
import os
import sys

from netns import Lab
from pamiq.tools.graph import default_params_file
from rosgraph import wait_until
from videos import write_video
import yaml

SECONDS = 18.0  # what the stand-ins run for once started (pamiq up acts after ~8 s)

VRCHAT = """
import json, sys, threading, time
from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import ThreadingOSCUDPServer
from pythonosc.udp_client import SimpleUDPClient
me, pamiq, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
heard = {'inputs': 0, 'senders': []}
def on_message(client, address, *values):
    if address.startswith('/input/'):
        heard['inputs'] += 1
        if client[0] not in heard['senders']:
            heard['senders'].append(client[0])
dispatcher = Dispatcher()
dispatcher.set_default_handler(on_message, needs_reply_address=True)
server = ThreadingOSCUDPServer((me, 9000), dispatcher)
threading.Thread(target=server.serve_forever, daemon=True).start()
avatar = SimpleUDPClient(pamiq, 9001)
end, sent = time.monotonic() + seconds, 0
while time.monotonic() < end:
    avatar.send_message('/avatar/parameters/VelocityX', 0.5 + 0.01 * (sent % 10))
    sent += 1
    time.sleep(0.1)
server.shutdown()
json.dump({**heard, 'parameters_sent': sent}, open(out, 'w'))
"""

BODY_PROBE = """
import json, sys, time, rclpy
from sensor_msgs.msg import JointState
from pamiq.ros import qos
seconds, out = float(sys.argv[1]), sys.argv[2]
rclpy.init()
node = rclpy.create_node('lan_probe', namespace='pamiq')
states = []
node.create_subscription(JointState, 'body/state', states.append, qos.SENSE)
end = time.monotonic() + seconds
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.1)
velocity = [dict(zip(m.name, m.position)).get('VelocityX') for m in states]
json.dump({'states': len(states), 'velocity_x': velocity[-5:]}, open(out, 'w'))
"""


def test_pamiq_drives_vrchat_on_another_pc_with_osc_both_ways(tmp_path):
    with Lab.open(tmp_path, ['pamiq', 'vrchat']) as lab:
        pamiq, vrchat = lab.hosts['pamiq'], lab.hosts['vrchat']
        # The body sense listens on the LAN: a params file with the body node's osc_host set.
        with open(default_params_file()) as stream:
            params = yaml.safe_load(stream)
        params['/**/body']['ros__parameters']['osc_host'] = pamiq.address
        lan = tmp_path / 'lan.yaml'
        lan.write_text(yaml.safe_dump(params))
        video = write_video(str(tmp_path / 'screen.avi'), frames=30)
        pamiq.run(
            [sys.executable, '-m', 'pamiq.tools.cli', 'up', '--supervise', '--quiet',
             'world:=vrchat', f'camera:={video}', 'agent:=random', 'senses:=vision,body',
             f'osc_host:={vrchat.address}', f'params_file:={lan}', f'run_dir:={tmp_path / "run"}'],
            {}, 'pamiq-up',
        )  # fmt: skip
        heard, probed = tmp_path / 'vrchat.json', tmp_path / 'body.json'
        vrchat.run(
            [sys.executable, '-c', VRCHAT, vrchat.address, pamiq.address, str(SECONDS),
             str(heard)],
            {}, 'vrchat',
        )  # fmt: skip
        pamiq.run([sys.executable, '-c', BODY_PROBE, str(SECONDS), str(probed)], {}, 'probe')
        done = lambda: os.path.exists(heard) and os.path.exists(probed)
        assert wait_until(done, SECONDS + 60.0, 0.5), (
            pamiq.log('pamiq-up')[-3000:] + vrchat.log('vrchat') + pamiq.log('probe')
        )
        # Written whole at the end by each stand-in (a partial file would fail to parse).
        assert wait_until(lambda: os.path.getsize(heard) and os.path.getsize(probed), 5.0)
        inputs, body = json.loads(heard.read_text()), json.loads(probed.read_text())
    # pamiq -> VRChat: the actuator's inputs reached the other PC from pamiq's address.
    assert inputs['senders'] == [pamiq.address], inputs
    assert inputs['inputs'] >= 3 * 10 * 5, inputs  # 3 axes at 10 Hz for 5 s at least
    # VRChat -> pamiq: the avatar's parameters reached the body sense on the LAN.
    assert body['states'] >= 10 * 5, (body, pamiq.log('pamiq-up')[-3000:])
    assert all(v is not None and 0.49 < v < 0.6 for v in body['velocity_x']), body
