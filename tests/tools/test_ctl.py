"""`pamiq ctl` against a graph it only partly sees: actors the graph names by subscribers to
their steps (as the trainer and the recorder subscribe) with no agent service to call, and nodes
that advertise diagnostics and never publish them."""

from __future__ import annotations

import subprocess
import sys
import time

from pamiq.ros import qos
from pamiq.tools.ctl import alike_nodes
import pytest
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


# Nodes that publish diagnostics at 1 Hz, as the graph's do, and (with 'silent') one that
# advertises /diagnostics and never publishes.
DIAGNOSING_NODES = """
import sys
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from pamiq.ros import qos, topics
from pamiq.ros.diagnostics import OK, Diagnostics

rclpy.init()
executor = SingleThreadedExecutor()
nodes = [Node(name, namespace='ctl_status') for name in ('world', 'agent')]
diagnostics = [Diagnostics(node, 'test') for node in nodes]
for each in diagnostics:
    each.add('health', lambda: (OK, 'fine', {}))
if 'silent' in sys.argv:
    nodes.append(Node('silent', namespace='ctl_status'))
    qos.publisher(nodes[-1], DiagnosticArray, topics.DIAGNOSTICS, 10)
if 'actors' in sys.argv:  # actor0 has a world and an agent, actor1 only an agent
    actors = [Node(name, namespace=f'ctl_status/{actor}')
              for actor, name in (('actor0', 'world'), ('actor0', 'agent'), ('actor1', 'agent'))]
    diagnostics += [Diagnostics(node, 'test') for node in actors]
    for each in diagnostics[-3:]:
        each.add('health', lambda: (OK, 'fine', {}))
    nodes += actors
for node in nodes:
    executor.add_node(node)
executor.spin()
"""


@pytest.mark.parametrize(
    'short', ['', 'silent', 'actors'], ids=['all-heard', 'one-silent', 'an-actor-short']
)
def test_status_ends_once_every_node_publishing_diagnostics_was_heard(ros, short):
    silent = bool(short)
    nodes = subprocess.Popen([sys.executable, '-c', DIAGNOSING_NODES, short])
    try:
        listen = 4.0 if silent else 60.0
        started = time.monotonic()
        result = pamiq_cli('ctl', 'status', '--seconds', str(listen), '--namespace', 'ctl_status')
        took = time.monotonic() - started
    finally:
        nodes.terminate()
        nodes.wait(10)
    assert result.returncode == 0, result.stdout + result.stderr
    for node in ('world', 'agent'):
        assert f'OK    ctl_status/{node}: health: fine' in result.stdout, result.stdout
    if silent:  # a node not heard from keeps it listening for all of --seconds
        assert took >= listen, took
        missing = 'ctl_status/silent' if short == 'silent' else 'ctl_status/actor1/world'
        assert f'?     {missing}: not heard in 4 s' in result.stdout, result.stdout
    else:
        assert took < listen / 2, took


def test_actors_are_alike_one_actors_nodes_are_expected_of_the_others():
    heard = {'pamiq/trainer', 'pamiq/actor0/world', 'pamiq/actor0/agent', 'pamiq/actor1/agent'}
    actors = {'/pamiq/actor0', '/pamiq/actor1', '/pamiq'}  # the namespace itself is no pattern
    assert alike_nodes(heard, actors, 'pamiq') == {
        'pamiq/actor0/world',
        'pamiq/actor0/agent',
        'pamiq/actor1/world',
        'pamiq/actor1/agent',
    }
    assert alike_nodes({'pamiq/world', 'pamiq/agent'}, {'/pamiq'}, 'pamiq') == set()
