"""The pamiq graph: which nodes run for a set of bring-up arguments.

One definition serves both `launch/bringup.launch.py` (through launch_ros) and `pamiq up`'s own
supervisor, so the two ways to start pamiq cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
import os
import sys

import yaml

from pamiq.audio_sources import is_audio_file
from pamiq.executables import EXECUTABLES
from pamiq.ros.share import config_file
from pamiq.run_dir import default_run_dir
from pamiq.vocabulary import DEFAULT_SENSES, POLICIES, WORLDS, parse_senses

# name -> (default, description). An empty default means "as in the parameter file".
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    'world': (
        WORLDS[0],
        "'doom': the built-in ViZDoom world; 'vrchat': a camera on VRChat's screen",
    ),
    'agent': (POLICIES[0], "'curiosity' (the curiosity-PPO agent and its trainer) or 'random'"),
    'camera': (
        '',
        "world:=vrchat only: video device index, file or URL; empty: the params file's",
    ),
    'senses': (
        ','.join(DEFAULT_SENSES),
        'What the agent perceives: vision, hearing, body, or several comma-separated',
    ),
    'audio': (
        '',
        'world:=vrchat with hearing: a sink or source to record, or a WAV/FLAC file; '
        "empty: the params file's (the sink VRChat plays to)",
    ),
    'osc_host': ('', "Host receiving the OSC input; empty: the params file's"),
    'osc_port': ('', "UDP port of the OSC input; empty: the params file's"),
    'body_port': (
        '',
        "UDP port of VRChat's OSC output, where the body sense listens; empty: the params file's",
    ),
    'namespace': ('pamiq', 'ROS namespace of every node and topic'),
    'params_file': ('', 'Parameter YAML; empty: the installed config/pamiq.yaml'),
    'run_dir': ('', 'Directory for logs, checkpoints and bags; empty: a new runs/<date-time>'),
    'record': ('false', 'true: record the session as rosbag2 bags in run_dir/bags'),
    'real_time_factor': (
        '',
        'world:=doom: 1 real time; above 1 faster; 0 lockstep (/clock, use_sim_time for all); '
        "empty: the params file's",
    ),
}


class BringupError(ValueError):
    """Bring-up arguments that cannot start a graph; the message says which and why."""


@dataclass(frozen=True)
class BringupArgs:
    """Validated bring-up arguments (built by `from_strings`; defaults: LAUNCH_ARGUMENTS)."""

    world: str
    agent: str
    camera: str
    senses: str
    audio: str
    osc_host: str
    osc_port: str
    body_port: str
    namespace: str
    params_file: str
    run_dir: str
    record: str
    real_time_factor: str

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> BringupArgs:
        """Validate launch-style string arguments and fill in the defaults."""
        unknown = sorted(set(values) - set(LAUNCH_ARGUMENTS))
        if unknown:
            raise BringupError(
                f'unknown argument(s) {", ".join(unknown)}; known: {", ".join(LAUNCH_ARGUMENTS)}'
            )
        merged = {
            name: values.get(name) or default for name, (default, _) in LAUNCH_ARGUMENTS.items()
        }
        if merged['world'] not in WORLDS:
            raise BringupError(f'world:={merged["world"]} is not one of {", ".join(WORLDS)}')
        if merged['agent'] not in POLICIES:
            raise BringupError(f'agent:={merged["agent"]} is not one of {", ".join(POLICIES)}')
        for port in ('osc_port', 'body_port'):
            if merged[port] and not (merged[port].isdigit() and 0 < int(merged[port]) < 65536):
                raise BringupError(f'{port}:={merged[port]} is not a UDP port number')
        if merged['camera'] and merged['world'] != 'vrchat':
            raise BringupError(
                'camera:=... is only used with world:=vrchat '
                '(the Doom world renders its own frames)'
            )
        try:
            merged['senses'] = ','.join(parse_senses(merged['senses']))
        except ValueError as error:
            raise BringupError(f'senses:={merged["senses"]}: {error}') from None
        if merged['audio'] and (merged['world'] != 'vrchat' or 'hearing' not in merged['senses']):
            raise BringupError(
                'audio:=... is for world:=vrchat with hearing among the senses '
                '(the Doom world hears its own game)'
            )
        merged['record'] = merged['record'].lower()
        if merged['record'] not in ('true', 'false'):
            raise BringupError(f'record:={merged["record"]} is not true or false')
        merged['namespace'] = merged['namespace'].strip('/')
        merged['params_file'] = os.path.abspath(merged['params_file'] or default_params_file())
        if not os.path.isfile(merged['params_file']):
            raise BringupError(f'params_file:={merged["params_file"]} does not exist')
        merged['run_dir'] = os.path.abspath(merged['run_dir'] or default_run_dir())
        factor = merged['real_time_factor'] or str(
            world_parameter(merged['params_file'], 'real_time_factor', 1.0)
        )
        try:
            if not 0.0 <= float(factor) <= 1000.0:
                raise ValueError
        except ValueError:
            raise BringupError(
                f'real_time_factor:={factor} is not a number in [0, 1000]'
            ) from None
        if float(factor) != 1.0 and merged['world'] != 'doom':
            raise BringupError('real_time_factor is for world:=doom (VRChat runs in real time)')
        merged['real_time_factor'] = factor
        return cls(**merged)

    def has(self, sense: str) -> bool:
        return sense in self.senses.split(',')

    @property
    def simulated(self) -> bool:
        """Simulated time: the world publishes /clock and every node uses it."""
        return float(self.real_time_factor) != 1.0

    def as_strings(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    parameters: dict[str, object] = field(default_factory=dict)
    respawn: bool = False
    """Start it again after an abnormal exit (see `respawns`)."""


def respawns(spec: NodeSpec, returncode: int) -> bool:
    """Whether a node that exited with `returncode` starts again (launch and `pamiq up` agree).

    Only after an abnormal exit: a crash, a kill (negative: the signal) or an error code. A
    node that stops cleanly (0: Ctrl-C or SIGTERM reached it) was asked to stop, and starting it
    again would leave it running alone once the rest of the graph has stopped.
    """
    return spec.respawn and returncode != 0


def graph(args: BringupArgs) -> list[NodeSpec]:
    """The nodes to start, in start order (a world before the actuator that sends to it)."""
    osc: dict[str, object] = {}
    if args.osc_host:
        osc['osc_host'] = args.osc_host
    if args.osc_port:
        osc['osc_port'] = int(args.osc_port)
    nodes = []
    if args.world == 'doom':
        # The world listens where the actuator sends: the same host/port arguments.
        world = dict(osc)
        if args.simulated:
            world['real_time_factor'] = float(args.real_time_factor)
            if float(args.real_time_factor) == 0.0:
                osc['frame_markers'] = True  # the actuator tells the world an action is sent
        if args.has('hearing'):
            world['audio'] = True
        if args.body_port:
            world['body_osc_port'] = int(args.body_port)
        nodes.append(NodeSpec('doom_world_node', 'world', world))
    else:
        nodes.append(
            NodeSpec('camera_node', 'camera', {'camera': args.camera} if args.camera else {})
        )
        if args.has('hearing'):
            nodes.append(NodeSpec('audio_node', 'audio', audio_parameters(args.audio)))
    if args.has('body'):
        nodes.append(
            NodeSpec(
                'body_node', 'body', {'osc_port': int(args.body_port)} if args.body_port else {}
            )
        )
    nodes.append(NodeSpec('osc_actuator_node', 'osc_actuator', dict(osc)))
    senses = {'senses': args.senses}
    nodes.append(
        NodeSpec('agent_node', 'agent', {'policy': args.agent, 'run_dir': args.run_dir, **senses})
    )
    if args.agent == 'curiosity':
        # Acting goes on without the trainer, and a restarted trainer resumes from its newest
        # checkpoint: respawn it rather than stopping the graph.
        nodes.append(
            NodeSpec('trainer_node', 'trainer', {'run_dir': args.run_dir, **senses}, respawn=True)
        )
    if args.record == 'true':
        nodes.append(NodeSpec('recorder_node', 'recorder', {'run_dir': args.run_dir}))
    if args.simulated:
        for spec in nodes:
            spec.parameters['use_sim_time'] = True
    return nodes


def audio_parameters(audio: str) -> dict[str, object]:
    """audio_node's source from `audio:=`: a WAV/FLAC file, else a device name."""
    if not audio:
        return {}
    if is_audio_file(audio):
        return {'file': os.path.abspath(audio)}
    return {'device': audio}


def world_parameter(params_file: str, name: str, default: object) -> object:
    """A world parameter as the params file sets it (its default when it does not)."""
    with open(params_file) as stream:
        params = yaml.safe_load(stream) or {}
    for key, section in params.items():
        if key.rstrip('/').endswith('world') and isinstance(section, dict):
            return section.get('ros__parameters', {}).get(name, default)
    return default


def node_command(executable: str, name: str, namespace: str, params_files: list[str]) -> list[str]:
    """The command line launch_ros builds for a node: its module, name, namespace, parameters.

    Parameters travel as YAML files only (never `-p name:=value`, which would turn a camera
    source '0' into an integer).
    """
    command = [sys.executable, '-m', EXECUTABLES[executable], '--ros-args']
    command += ['-r', f'__node:={name}', '-r', f'__ns:=/{namespace.strip("/")}']
    for path in params_files:
        command += ['--params-file', path]
    return command


def write_parameters(path: str, namespace: str, name: str, parameters: dict[str, object]) -> str:
    """Write one node's parameters as a ROS parameter YAML file; returns `path`."""
    namespace = namespace.strip('/')
    fqn = f'/{namespace}/{name}' if namespace else f'/{name}'
    with open(path, 'w') as stream:
        yaml.safe_dump({fqn: {'ros__parameters': parameters}}, stream)
    return path


def default_params_file() -> str:
    """config/pamiq.yaml as installed (share/pamiq/config), else next to the source tree."""
    return config_file('pamiq.yaml')
