"""Stand-ins for pamiq's processes on the hosts of a lab (tests/netns.py): a transport_peer
process and what its report says, and the environment `pamiq up` would give it there.

Shared by tests/test_multihost.py and bench/weights_over_link.py.
"""

from __future__ import annotations

import json
import os
import sys

from netns import Host
from pamiq.ros.transport import NetworkPlan, parse_transport

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMESPACE = 'pamiq'
PEER = os.path.join(REPO, 'tests', 'transport_peer.py')
BLOB_MB = 29.0  # the weights blob's size


class Peer:
    """A transport_peer process on a host, and what its report says."""

    def __init__(
        self, host: Host, role: str, env: dict, directory: str, *extra: str, label: str = ''
    ) -> None:
        self.host, self.role = host, role
        self.name = f'{role}-{label or host.name}'
        os.makedirs(directory, exist_ok=True)
        self.report_path = os.path.join(directory, f'{self.name}.json')
        command = [sys.executable, PEER, role, '--report', self.report_path]
        self.process = host.run([*command, '--blob-mb', str(BLOB_MB), *extra], env, self.name)

    def report(self) -> dict:
        try:
            with open(self.report_path) as stream:
                return json.load(stream)
        except (OSError, ValueError):  # not written yet
            return {'steps_received': [], 'weights_received': [], 'steps_sent': [],
                    'weights_sent': []}  # fmt: skip

    def steps_from(self, origin: str) -> list[dict]:
        return [s for s in self.report()['steps_received'] if s['origin'] == origin]

    def weights_from(self, origin: str) -> list[dict]:
        return [w for w in self.report()['weights_received'] if w['origin'] == origin]

    def log(self) -> str:
        return self.host.log(self.name)[-3000:]


def host_plan(
    host: Host, directory: str, processes: list[str], discovery: str = '', **arguments: str
) -> NetworkPlan:
    """The profiles `pamiq up <arguments>` writes on `host` for these processes."""
    transport = parse_transport(
        arguments.get('network', 'lan'),
        discovery,
        arguments.get('secure', 'false'),
        arguments.get('certs', ''),
        arguments.get('weights_mbit', ''),
    )
    return NetworkPlan(transport, os.path.join(directory, 'dds', host.name), processes, NAMESPACE)


def crossed(trainer: Peer, actor: Peer, steps: int = 20) -> bool:
    return bool(actor.weights_from('trainer')) and len(trainer.steps_from('actor')) >= steps


def outputs(*peers: Peer) -> str:
    """Each peer's log and the ROS nodes it discovered (which side a failed discovery left out)."""
    return '\n'.join(
        f'--- {p.name}, discovered {p.report().get("nodes_discovered")}\n{p.log()}' for p in peers
    )
