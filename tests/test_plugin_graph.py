"""The live graph on the plug-in path, started as a user starts it: `pamiq up model:=compact
reward:=e3b` in lockstep, two actors, trains rounds with pamiq train's update on every step both
agents act, and they act on the weights it publishes, rewarded by E3B."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray
from pamiq.ros import topics
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph import NAMESPACE, diagnostic_value, free_udp_port, wait_until
from std_msgs.msg import Float32
from test_bringup import PamiqUp


def test_a_lockstep_graph_trains_the_compact_model_with_e3b_on_every_step(probe, tmp_path):
    reward = f'/{NAMESPACE}/actor0/{topics.REWARD}'
    probe.record(Float32, reward, QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    probe.record(DiagnosticArray, '/diagnostics', 100)
    up = PamiqUp(
        'world:=doom',
        'real_time_factor:=0',
        'actors:=2',
        'model:=compact',
        'reward:=e3b',
        f'osc_port:={free_udp_port()}',
        f'run_dir:={tmp_path / "run"}',
        '--quiet',
    )
    try:
        # Each agent acts 256 steps (two of the default 128-step rollouts) on one version in a
        # burst the niced trainer takes in later: at the old intake depth of 64 messages, parts
        # of hundreds of steps were lost, rollouts broke, and both agents waited out
        # trainer_wait_timeout for a round that could not start.
        trained = wait_until(lambda: 'round 5 in' in up.output(), 240.0, 0.5)
        assert trained, up.output()[-4000:]
        assert wait_until(lambda: len(probe.messages(reward)) >= 50, 30.0, 0.5)
        trainer = lambda key: diagnostic_value(probe, f'{NAMESPACE}/trainer', key)
        assert wait_until(lambda: trainer('rounds') not in (None, '0'), 30.0, 0.5)
        assert trainer('dropped pairs') == '0', trainer('parts the dropped pairs lacked')
        assert trainer('sequence gaps') == '0'
    finally:
        assert up.stop(60.0) == 0, up.output()[-3000:]
    output = up.output()
    assert 'training the compact model, reward e3b and PPO' in output
    assert 'e3b/loss' in output
    assert 'no new weights for' not in output  # no agent waited out its timeout
    rewards = [m.data for m in probe.messages(reward)]
    assert sum(r > 0 for r in rewards) >= 0.9 * len(rewards), rewards[:20]
    checkpoints = list((tmp_path / 'run' / 'checkpoints').glob('checkpoint-*.safetensors'))
    assert checkpoints, output[-3000:]
