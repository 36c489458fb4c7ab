"""`pamiq report` on a run directory with recorded bags and TensorBoard scalars."""

from __future__ import annotations

import math

from geometry_msgs.msg import PoseStamped
from pamiq.ros.bags import ACTOR_TOPICS, TRAINER_TOPICS, SplitWriter
from pamiq.tools.cli import main as pamiq_main
from pamiq.tools.report import write_report
from PIL import Image as PILImage
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32


def write_run(run_dir, seconds: int = 300, actors: tuple[str, ...] = ('/pamiq',)) -> None:
    """A 5-minute run as the recorder writes it: 10 Hz actions/rewards/poses of each actor, a
    loss per 13 s."""
    topics = {f'{a}/{t}': ty for a in actors for t, ty in ACTOR_TOPICS.items()}
    topics.update({f'/pamiq/{t}': ty for t, ty in TRAINER_TOPICS.items()})
    writer = SplitWriter(str(run_dir / 'bags' / 'session'), topics, 'mcap', 10**9, 60.0)
    t0 = 1_700_000_000_000_000_000
    for i in range(seconds * 10):
        t = t0 + i * 100_000_000 + (40_000_000 if i % 97 == 0 else 0)
        for number, actor in enumerate(actors):
            writer.write(
                f'{actor}/action',
                t + number,
                serialize_message(JointState(name=['Vertical'], position=[0.1])),
            )
            writer.write(
                f'{actor}/agent/reward',
                t + number,
                serialize_message(Float32(data=1.0 / (1 + i / 500))),
            )
            pose = PoseStamped()
            pose.pose.position.x = 300 * math.cos(i / 400) + i / 10 + 500 * number
            pose.pose.position.y = 300 * math.sin(i / 400)
            writer.write(f'{actor}/world/pose', t + number, serialize_message(pose))
        if i % 130 == 0:
            for topic, value in (
                ('forward_dynamics/loss', 0.5 / (1 + i / 1000)),
                ('ppo/loss', 0.1),
            ):
                writer.write(f'/pamiq/trainer/{topic}', t, serialize_message(Float32(data=value)))
    writer.close()


def test_report_writes_readable_labelled_plots(tmp_path, capsys):
    write_run(tmp_path)
    assert pamiq_main(['report', str(tmp_path)]) == 0
    assert 'bags/' in capsys.readouterr().out  # it says where the run writes
    names = ['reward_and_losses.png', 'action_intervals.png', 'trajectory.png', 'coverage.png']
    for name in names:
        with PILImage.open(tmp_path / 'report' / name) as image:
            assert image.size[0] >= 600 and image.size[1] >= 400
            colours = image.convert('RGB').getcolors(maxcolors=100000)
            assert colours is None or len(colours) > 20  # not a blank canvas


def test_report_draws_each_actor_apart(tmp_path):
    write_run(tmp_path, 60, actors=('/pamiq/actor0', '/pamiq/actor1'))
    written = write_report(str(tmp_path), say=lambda line: None)
    with PILImage.open(tmp_path / 'report' / 'trajectory.png') as image:
        assert image.size[0] >= 2 * image.size[1]  # one panel per actor, side by side
    assert str(tmp_path / 'report' / 'action_intervals.png') in written


def test_report_without_data_says_what_is_missing(tmp_path, capsys):
    (tmp_path / 'run').mkdir()
    with pytest.raises(FileNotFoundError, match='neither bags nor TensorBoard'):
        write_report(str(tmp_path / 'run'))
    assert pamiq_main(['report', str(tmp_path / 'nope')]) == 2
    assert 'not a run directory' in capsys.readouterr().err
