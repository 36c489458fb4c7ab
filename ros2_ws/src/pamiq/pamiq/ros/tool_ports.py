"""ROS tools on the secure server's host: each process listens on a port of its own.

There every participant listens (the other hosts only connect out), and Fast DDS 2.14 keeps a
dead participant's connections under the port it announced: a tool started on the port an
earlier tool of the run had used heard nothing from the other hosts (0 of 2 later tools saw the
actor's nodes in 60 s; 6 of 6 did on ports no tool had used, within 15 s). `ros2_tools.env` gives
its one port to the first tool; `pamiq tool -- <command>` (and pamiq's own ctl, record and replay)
take the next of the run's tool ports (transport.TOOL_PORTS, below the hub's), in turn. A port
in the ephemeral range would not do: Fast DDS then also tries to connect to the actors' bound,
not listening, ports (see transport.TLS_SERVER_PORT), and 0 of 5 such tools heard the actors.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import sys

from pamiq.ros.fastdds_profiles import Endpoint, TlsFiles, node_profile
from pamiq.ros.transport import (
    PROFILE_VARIABLES,
    TOOL_PORTS_FILE,
    TOOLS_DIRECTORY_VARIABLE,
    TOOLS_ENV,
    TransportError,
)

USED_FILE = 'tool_ports.used'  # how many tool ports the run has handed out (under a lock)


def read_environment_script(path: str) -> dict[str, str | None]:
    """The changes an environment file of NetworkPlan makes (export NAME=value / unset NAME)."""
    changes: dict[str, str | None] = {}
    with open(path) as stream:
        for line in stream:
            words = shlex.split(line, comments=True)
            if words[:1] == ['export']:
                name, _, value = words[1].partition('=')
                changes[name] = value
            elif words[:1] == ['unset']:
                changes[words[1]] = None
    return changes


def tool_environment(directory: str, say=None) -> dict[str, str | None]:
    """The environment of one ROS tool process on the host whose plan wrote `directory` (a
    run's dds folder): its ros2_tools.env, and on the secure server's host a profile listening
    on the next of the run's tool ports.

    Raises:
        TransportError: `directory` holds no ros2_tools.env.
    """
    script = os.path.join(directory, TOOLS_ENV)
    if not os.path.isfile(script):
        raise TransportError(
            f'{script} not found: name the dds folder of a running networked graph '
            f'(run_dir/dds, which `pamiq up` prints at start)'
        )
    changes = read_environment_script(script)
    settings_path = os.path.join(directory, TOOL_PORTS_FILE)
    if not os.path.isfile(settings_path):  # a host that only connects out: no port to take
        return changes
    with open(settings_path) as stream:
        settings = json.load(stream)
    port = claim_port(directory, settings['highest'], settings['count'], say or warn)
    profile = os.path.join(directory, f'tools.{port}.xml')
    partial = profile + '.tmp'
    with open(partial, 'w') as stream:
        stream.write(
            node_profile(
                server=Endpoint(**settings['server']),
                tls=TlsFiles(**settings['tls']),
                listening_port=port,
                weights_topic=settings['weights_topic'],
                weights_mbit=settings['weights_mbit'],
            )
        )
    os.replace(partial, profile)
    changes.update({variable: profile for variable in PROFILE_VARIABLES})
    changes[TOOLS_DIRECTORY_VARIABLE] = directory
    return changes


def claim_port(directory: str, highest: int, count: int, say) -> int:
    """The next tool port of the run (highest, highest - 1, ...), one per call, also across
    processes; after `count` of them they come round again, with a warning."""
    descriptor = os.open(os.path.join(directory, USED_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    with os.fdopen(descriptor, 'r+') as stream:
        fcntl.flock(stream, fcntl.LOCK_EX)
        text = stream.read().strip()
        used = int(text) if text.isdigit() else 0
        stream.seek(0)
        stream.truncate()
        stream.write(f'{used + 1}\n')
    if used >= count:
        say(
            f'pamiq: the {count} tool ports of this run have all been used; this tool takes '
            f'port {highest - used % count} again and may hear nothing from the other hosts '
            '(restart the run to start afresh)'
        )
    return highest - used % count


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
