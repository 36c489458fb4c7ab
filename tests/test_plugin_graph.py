"""The live graph on the plug-in path, started as a user starts it: `pamiq up model:=compact
reward:=e3b` in lockstep trains rounds with pamiq train's update, and its agent acts on the
weights they publish, rewarded by E3B."""

from __future__ import annotations

from pamiq.ros import topics
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph import free_udp_port, wait_until
from std_msgs.msg import Float32
from test_bringup import PamiqUp


def test_a_lockstep_graph_trains_the_compact_model_with_e3b(probe, tmp_path):
    probe.record(
        Float32, topics.REWARD, QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    )
    up = PamiqUp(
        'world:=doom',
        'real_time_factor:=0',
        'model:=compact',
        'reward:=e3b',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        '--quiet',
    )
    try:
        trained = wait_until(lambda: 'round 3 in' in up.output(), 180.0, 0.5)
        assert trained, up.output()[-4000:]
        assert wait_until(lambda: len(probe.messages(topics.REWARD)) >= 50, 30.0, 0.5)
    finally:
        assert up.stop(60.0) == 0, up.output()[-3000:]
    output = up.output()
    assert 'training the compact model, reward e3b and PPO' in output
    assert 'e3b/loss' in output
    rewards = [m.data for m in probe.messages(topics.REWARD)]
    assert sum(r > 0 for r in rewards) >= 0.9 * len(rewards), rewards[:20]
    checkpoints = list((tmp_path / 'run' / 'checkpoints').glob('checkpoint-*.safetensors'))
    assert checkpoints, output[-3000:]
