"""Recording, replaying, inspecting and learning from rosbag2 bags of pamiq sessions."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import cv2
from doom_frames import record
from mcap_ros2.reader import read_ros2_messages
import numpy as np
from pamiq.learning.models import build_models
from pamiq.ros import messages, qos
from pamiq.ros.bags import SESSION_TOPICS, TYPESTORE, SplitWriter, split_paths
from pamiq.ros.image_conversion import numpy_to_image
from pamiq.storage.checkpoint import load_latest_checkpoint
from pamiq.tools.bag_tools import bag_info, export_video
from pamiq.tools.cli import main as pamiq_main
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Reader
from rosgraph import NodeProcess, wait_until
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32
import yaml


def session_messages(count: int, seed: int = 0):
    """What an agent publishes for `count` frames: (topic, message) in publish order."""
    observations, actions = record('my_way_home', count, seed=seed)
    out = []
    for i in range(count):
        stamp = Image().header.stamp
        stamp.sec, stamp.nanosec = 1000 + i // 10, (i % 10) * 100_000_000
        names, values = messages.action_names_values(actions[i], 'continuous')
        action = JointState(name=names, position=values)
        action.header.stamp = stamp
        out.append(('agent/observation', numpy_to_image(observations[i], 'rgb8', stamp)))
        out.append(('action', action))
        out.append(('agent/step', messages.step_message(stamp, i, 0.01 * i, 0.5, -1.5, 0)))
        out.append(('agent/reward', Float32(data=0.01 * i)))
    return out


def write_session_bag(directory: str, count: int, storage: str = 'mcap', seed: int = 0) -> str:
    topics = {f'/pamiq/{t}': ty for t, ty in SESSION_TOPICS.items()}
    writer = SplitWriter(directory, topics, storage, 10**9, 3600.0)
    t0 = 1_700_000_000_000_000_000
    for i, (topic, msg) in enumerate(session_messages(count, seed)):
        writer.write(
            f'/pamiq/{topic}', t0 + (i // 4) * 100_000_000 + (i % 4) * 1000, serialize_message(msg)
        )
    writer.close()
    return directory


def publish_rewards(probe, count: int, period: float) -> None:
    """Rewards 0, 1, ... on agent/reward once a recorder listens, one every `period` s."""
    publisher = probe.create_publisher(Float32, 'agent/reward', 10)
    probe.wait_for_subscribers(publisher, timeout=30.0)
    for i in range(count):
        publisher.publish(Float32(data=float(i)))
        time.sleep(period)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_recorder_writes_what_was_published_byte_for_byte(probe, tmp_path, storage):
    session = tmp_path / 'session'
    # What made the actions is named in each split's metadata (rosbag2's custom_data).
    made_by = {'model': 'compact', 'reward': 'e3b', 'recurrent': True, 'action_space': 'discrete'}
    recorder = NodeProcess(
        'recorder_node', 'recorder', {'output': str(session), 'storage': storage, **made_by}
    )
    try:
        pubs = {
            'agent/observation': probe.create_publisher(
                Image, 'agent/observation', qos.OBSERVATION
            ),
            'action': probe.create_publisher(JointState, 'action', qos.ACTION),
            'agent/step': probe.create_publisher(JointState, 'agent/step', qos.STEP),
            'agent/reward': probe.create_publisher(Float32, 'agent/reward', 10),
        }
        for pub in pubs.values():
            probe.wait_for_subscribers(pub, timeout=30.0)
        sent = session_messages(20)
        for topic, msg in sent:
            pubs[topic].publish(msg)
            time.sleep(0.005)
        time.sleep(1.0)
    finally:
        assert recorder.stop() == 0, recorder.output()
    assert '80 messages in 1 splits' in recorder.output()
    [split] = split_paths(str(session))
    with open(os.path.join(split, 'metadata.yaml')) as stream:
        information = yaml.safe_load(stream)['rosbag2_bagfile_information']
    named = {f'pamiq.{k}': str(v).lower() for k, v in made_by.items()}
    assert information['custom_data'] == named
    made = 'made by:   model compact, reward e3b, recurrent true, action_space discrete'
    assert made in bag_info(str(session))
    expected = {f'/pamiq/{topic}' for topic, _ in sent}
    if storage == 'mcap':
        # An independent reader: foxglove's mcap + mcap-ros2-support, not rosbags.
        [mcap_file] = glob.glob(os.path.join(split, '*.mcap'))
        got: dict[str, list] = {}
        log_times = []
        for item in read_ros2_messages(mcap_file):
            got.setdefault(item.channel.topic, []).append(item.ros_msg)
            log_times.append(item.log_time_ns)
            assert item.schema.name == SESSION_TOPICS[item.channel.topic.removeprefix('/pamiq/')]
        assert {t: len(v) for t, v in got.items()} == dict.fromkeys(expected, 20)
        assert [m.header.stamp.sec for m in got['/pamiq/action']] == [
            1000 + i // 10 for i in range(20)
        ]
        assert [round(m.data, 5) for m in got['/pamiq/agent/reward']] == [
            round(0.01 * i, 5) for i in range(20)
        ]
        first = got['/pamiq/agent/observation'][0]
        assert (first.width, first.height, first.encoding) == (84, 84, 'rgb8')
    # What was stored is what was sent: rclpy decodes every stored message back to exactly the
    # published one, and every stored message is strict, standard CDR for its type. (A byte
    # comparison with a fresh serialize_message() cannot work: rmw leaves alignment padding and
    # spare bytes at the end of its buffer uninitialised, so two serializations of one message
    # differ there, and those are the only differences.)
    originals: dict[str, list] = {}
    for topic, msg in sent:  # as rclpy holds them once on the wire (Float32 is float32)
        wire = deserialize_message(serialize_message(msg), type(msg))
        originals.setdefault(f'/pamiq/{topic}', []).append(wire)
    with Reader(split) as reader:
        stored: dict[str, list] = {}
        for connection, _, data in reader.messages():
            TYPESTORE.deserialize_cdr(bytes(data), connection.msgtype)  # strict: raises if not
            decoded = deserialize_message(bytes(data), type(originals[connection.topic][0]))
            stored.setdefault(connection.topic, []).append(decoded)
    assert stored == originals


def test_a_killed_recorder_leaves_every_closed_split_readable(probe, tmp_path):
    session = tmp_path / 'session'
    recorder = NodeProcess(
        'recorder_node', 'recorder', {'output': str(session), 'split_duration': 1.0}
    )
    try:
        publish_rewards(probe, 45, period=0.1)
    finally:
        recorder.stop(signal.SIGKILL)
    splits = split_paths(str(session))
    assert len(splits) >= 3, os.listdir(session)
    counts = []
    for split in splits:
        with Reader(split) as reader:
            counts.append(sum(1 for _ in reader.messages()))
    assert all(counts)
    assert sum(counts) >= 30  # only the open split (at most ~1 s, 10 messages) is lost


def test_replay_keeps_order_and_timing_and_feeds_an_agent_open_loop(probe, tmp_path):
    bag = write_session_bag(str(tmp_path / 'bag'), 100)  # 10 s of frames at 10 Hz
    agent = NodeProcess('agent_node', 'agent', {'policy': 'random'})
    # The agent publishes its own (zero) agent/reward: the replayed one goes elsewhere.
    probe.record(Float32, 'replayed/reward', 10)
    probe.record(JointState, 'action', qos.ACTION)
    assert wait_until(lambda: 'random policy' in agent.output(), 30.0), agent.output()
    replay = subprocess.Popen(
        [sys.executable, '-m', 'pamiq.tools.cli', 'replay', bag,
         '--topics', 'agent/reward', 'agent/observation',
         '--remap', 'agent/observation:=camera/image_raw', 'agent/reward:=replayed/reward',
         '--delay', '5'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = replay.communicate(timeout=60)
    finally:
        agent.stop()
    assert replay.returncode == 0, output
    assert 'replayed 200 messages' in output
    assert wait_until(lambda: len(probe.messages('replayed/reward')) == 100, 5.0), [
        round(m.data, 2) for m in probe.messages('replayed/reward')
    ][:30]
    values = [round(m.data, 5) for m in probe.messages('replayed/reward')]
    assert values == [round(0.01 * i, 5) for i in range(100)]  # every message, in order
    arrivals = np.array(probe.arrivals('replayed/reward'))
    recorded = np.arange(100) * 0.1
    # Against the replay's own start, wherever the first message landed (it may have waited for
    # the subscription to match).
    offsets = arrivals - recorded
    error = np.abs(offsets - np.median(offsets))
    assert np.median(error) <= 0.010, np.median(error)
    # Open loop: the replayed observations drove the agent, one action per frame.
    assert len(probe.messages('action')) >= 97


def test_offline_training_lowers_the_forward_model_loss_and_the_agent_loads_it(tmp_path, capsys):
    bag = write_session_bag(str(tmp_path / 'bag'), 160, seed=4)
    run_dir = str(tmp_path / 'run')
    assert pamiq_main(['train', '--from-bag', bag, '--run-dir', run_dir, '--epochs', '6']) == 0
    out = capsys.readouterr().out
    assert '160 recorded steps' in out
    line = next(line for line in out.splitlines() if 'forward-dynamics loss' in line)
    before, after = (float(v) for v in line.rsplit('loss ', 1)[1].split(' -> '))
    assert after < 0.7 * before, line
    assert '(100 %)' in out  # progress was shown
    models = build_models('inverse_dynamics', 'continuous')
    resumed = load_latest_checkpoint(run_dir, models, None, print)
    assert resumed is not None and resumed['version'] == 1


def test_bag_info_and_export(tmp_path):
    bag = write_session_bag(str(tmp_path / 'bag'), 30, storage='sqlite3')
    info = bag_info(bag)
    assert '/pamiq/agent/observation' in info and 'sensor_msgs/msg/Image' in info
    assert 'duration:  ' in info
    row = next(line for line in info.splitlines() if line.startswith('/pamiq/action '))
    assert row.split()[2] == '30'
    mp4 = str(tmp_path / 'obs.mp4')
    assert export_video(bag, mp4) == 30
    capture = cv2.VideoCapture(mp4)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        336,
        336,
    )
    gif = str(tmp_path / 'obs.gif')
    assert export_video(bag, gif, scale=2) == 30
    from PIL import Image as PILImage

    with PILImage.open(gif) as picture:
        assert picture.n_frames == 30 and picture.size == (168, 168)
    with pytest.raises(ValueError, match=r'\.mp4 or \.gif'):
        export_video(bag, str(tmp_path / 'x.avi'))


def test_pamiq_record_stopped_by_a_sigint_to_it_alone_closes_its_bag_without_a_traceback(
    probe, tmp_path
):
    session = tmp_path / 'session'
    command = [sys.executable, '-m', 'pamiq.tools.cli', 'record', '--output', str(session)]
    recording = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        publish_rewards(probe, 10, period=0.01)
        time.sleep(0.5)
    finally:
        recording.send_signal(signal.SIGINT)  # as `kill -INT` or `timeout -s INT` would
        _, errors = recording.communicate(timeout=30)
    assert recording.returncode == 0, errors
    assert 'Traceback' not in errors, errors
    [line] = [
        x for x in bag_info(str(session)).splitlines() if x.startswith('/pamiq/agent/reward')
    ]
    assert line.split()[2] == '10', line
