"""`pamiq ctl` against a graph it only partly sees: actors the graph names by subscribers to
their steps (as the trainer and the recorder subscribe) with no agent service to call."""

from __future__ import annotations

from pamiq.ros import qos
from sensor_msgs.msg import JointState
from test_bringup import pamiq_cli


def test_pause_waits_for_the_agents_of_actors_it_knows_of_and_names_those_missing(probe):
    probe.record(JointState, '/ctl_ghosts/actor7/agent/step', qos.STEP)
    # The trainer subscribes to its namespace's own steps from the start: no actor is named so.
    probe.record(JointState, '/ctl_ghosts/agent/step', qos.STEP)
    result = pamiq_cli('ctl', 'pause', '--namespace', 'ctl_ghosts')
    assert result.returncode == 1, result.stdout
    assert result.stdout.splitlines() == [
        'no agent/set_active service in /ctl_ghosts (is it running?)',
        '/ctl_ghosts/actor7: its steps are subscribed to but no agent/set_active service '
        'appeared in 5 s (the actor left, or discovery is slower)',
        'trainer: no /ctl_ghosts/trainer/set_active service',
    ], result.stdout
