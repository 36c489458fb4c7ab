"""The pamiq graph: which nodes run for a set of bring-up arguments.

One definition serves both `launch/bringup.launch.py` (through launch_ros) and `pamiq up`'s own
supervisor, so the two ways to start pamiq cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
import os
import sys

import yaml

from pamiq import run_dir as layout
from pamiq.executables import EXECUTABLES
from pamiq.learning.config import LearnerConfig
from pamiq.media.audio_sources import is_audio_file
from pamiq.ros import qos, topics
from pamiq.ros.isolation import ISOLATED_EXIT
from pamiq.ros.share import config_file
from pamiq.ros.transport import (
    NETWORKS,
    NetworkPlan,
    Transport,
    TransportError,
    parse_transport,
)
from pamiq.run_dir import default_run_dir
from pamiq.vocabulary import (
    DEFAULT_SENSES,
    MODEL_PRESETS,
    POLICIES,
    REWARDS,
    ROLES,
    WORLDS,
    parse_senses,
)
from pamiq.vrchat import controller
from pamiq.vrchat.avatar import OUTPUT_PORT

# The oracles read the world's true pose, which the live agent does not see (pamiq train only).
LIVE_REWARDS = tuple(r for r in REWARDS if not r.startswith('oracle'))

# Rollouts an agent may act with one weights version in lockstep before it waits for newer
# ones (wait_for_trainer): one rollout is trained while the next is acted, as asynchronous PPO
# does. Zero would let rollout boundaries that differ between agent and trainer deadlock them.
ROLLOUTS_AHEAD = 2

# Actor i's OSC input is osc_port + 2i and its body sense body_port + 2i: with VRChat's 9000
# (input) and 9001 (output) the actors' ports interleave and never meet.
PORT_STRIDE = 2

# name -> (default, description). An empty default means "as in the parameter file".
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    'world': (
        WORLDS[0],
        "'doom': the built-in ViZDoom world; 'vrchat': a camera on VRChat's screen",
    ),
    'agent': (POLICIES[0], "'curiosity' (the curiosity-PPO agent and its trainer) or 'random'"),
    'model': (
        '',
        "The vision model of agent and trainer: 'original' (84x84 RGB) or 'compact' (42x42 "
        "gray, 4 frames); empty: the params file's",
    ),
    'reward': (
        '',
        'The intrinsic reward of agent and trainer (prediction_error, rnd, e3b, e3b_rnd, '
        "place_count, zero); empty: the params file's",
    ),
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
    'actors': (
        '1',
        'Actors started here (world or camera, agent, actuator each); several get namespaces '
        'actor<i> and OSC ports osc_port + 2i and body_port + 2i',
    ),
    'first_actor': (
        '0',
        "Index i of this host's first actor (actor<i>), after those on other hosts",
    ),
    'role': (
        ROLES[0],
        "'all': actors and trainer; 'trainer': the trainer (and recorder) only; "
        "'actor': actors only (their trainer runs on another host)",
    ),
    'wait_for_trainer': (
        'true',
        'Lockstep with the curiosity agent: act at most 2 rollouts with one weights version, '
        'so the world waits for the trainer; false: never wait',
    ),
    'network': (
        NETWORKS[0],
        "'loopback': DDS stays on this host; 'lan': UDP on this host's interfaces, for several "
        'hosts (discovery:= and secure:=true choose it themselves)',
    ),
    'discovery': (
        '',
        "'server' or 'server:<port>': run a Fast DDS discovery server here, every node its "
        "client; '<host>[:<port>]': use the one there (no multicast needed); empty: multicast",
    ),
    'secure': (
        'false',
        'true: TCP + TLS across hosts, both sides verified against the CA of certs:= '
        '(needs discovery:=)',
    ),
    'certs': ('', "secure:=true: this host's folder made by `pamiq certs`"),
    'weights_mbit': (
        '',
        'across hosts: send trainer/weights at most this many Mbit/s (below the slowest '
        'link they cross); empty: as fast as the network takes them',
    ),
}


class BringupError(ValueError):
    """Bring-up arguments that cannot start a graph; the message says which and why."""


def base_ports(osc_port: str, body_port: str, params_file: str) -> tuple[int, int]:
    """Actor 0's OSC input and body-sense ports: the arguments, else the parameter file's."""
    osc = osc_port or node_parameter(params_file, 'world', 'osc_port', controller.INPUT_PORT)
    body = body_port or node_parameter(params_file, 'body', 'osc_port', OUTPUT_PORT)
    return int(osc), int(body)


def check_actor_ports(merged: dict[str, str]) -> None:
    """Refuse OSC ports where one actor's actions would reach a body sense (its or another's)."""
    if 'body' not in merged['senses'].split(','):
        return  # without the body sense nothing listens for avatar parameters
    osc, body = base_ports(merged['osc_port'], merged['body_port'], merged['params_file'])
    first = int(merged['first_actor'])
    numbers = range(first, first + int(merged['actors']))
    inputs = {osc + PORT_STRIDE * i for i in numbers}
    outputs = {body + PORT_STRIDE * i for i in numbers}
    if inputs & outputs:
        raise BringupError(
            f'osc_port {osc} and body_port {body} give actors the same port '
            f'{min(inputs & outputs)} (actor<i> uses osc_port + {PORT_STRIDE}i and '
            f'body_port + {PORT_STRIDE}i): choose ports an odd number apart'
        )


@dataclass(frozen=True)
class BringupArgs:
    """Validated bring-up arguments (built by `from_strings`; defaults: LAUNCH_ARGUMENTS)."""

    world: str
    agent: str
    model: str
    reward: str
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
    actors: str
    first_actor: str
    role: str
    wait_for_trainer: str
    network: str
    discovery: str
    secure: str
    certs: str
    weights_mbit: str

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
        for name, known in (('model', MODEL_PRESETS), ('reward', LIVE_REWARDS)):
            if merged[name] and merged[name] not in known:
                raise BringupError(f'{name}:={merged[name]} is not one of {", ".join(known)}')
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
        for flag in ('record', 'wait_for_trainer'):
            merged[flag] = merged[flag].lower()
            if merged[flag] not in ('true', 'false'):
                raise BringupError(f'{flag}:={merged[flag]} is not true or false')
        if merged['role'] not in ROLES:
            raise BringupError(f'role:={merged["role"]} is not one of {", ".join(ROLES)}')
        for name, low in (('actors', 1), ('first_actor', 0)):
            if not (merged[name].isdigit() and int(merged[name]) >= low):
                raise BringupError(f'{name}:={merged[name]} is not a whole number >= {low}')
        cameras = merged['camera'].split(',') if merged['camera'] else []
        if len(cameras) > 1 and len(cameras) != int(merged['actors']):
            raise BringupError(
                f'camera:={merged["camera"]} names {len(cameras)} cameras for '
                f'actors:={merged["actors"]}: give one per actor'
            )
        last = int(merged['first_actor']) + int(merged['actors']) - 1
        for port in ('osc_port', 'body_port'):
            if merged[port] and int(merged[port]) + PORT_STRIDE * last > 65535:
                raise BringupError(
                    f'{port}:={merged[port]} leaves no port for each of '
                    f'actors:={merged["actors"]} (actor<i> uses {port} + {PORT_STRIDE}i)'
                )
        merged['namespace'] = merged['namespace'].strip('/')
        merged['params_file'] = os.path.abspath(merged['params_file'] or default_params_file())
        if not os.path.isfile(merged['params_file']):
            raise BringupError(f'params_file:={merged["params_file"]} does not exist')
        merged['run_dir'] = os.path.abspath(merged['run_dir'] or default_run_dir())
        factor = merged['real_time_factor'] or str(
            node_parameter(merged['params_file'], 'world', 'real_time_factor', 1.0)
        )
        try:
            if not 0.0 <= float(factor) <= 1000.0:
                raise ValueError
        except ValueError:
            raise BringupError(
                f'real_time_factor:={factor} is not a number in [0, 1000]'
            ) from None
        if merged['role'] == 'trainer' and merged['agent'] != 'curiosity':
            raise BringupError('role:=trainer needs agent:=curiosity (the random agent has none)')
        if float(factor) != 1.0 and merged['world'] != 'doom':
            raise BringupError('real_time_factor is for world:=doom (VRChat runs in real time)')
        merged['real_time_factor'] = factor
        check_actor_ports(merged)
        merged['secure'] = merged['secure'].lower()
        if merged['certs']:  # the shell leaves certs:=~/... alone
            merged['certs'] = os.path.abspath(os.path.expanduser(merged['certs']))
        args = cls(**merged)
        # Refuse bad transport arguments now; discovery:= and secure:= choose the network.
        transport = args.transport(network_given=bool(values.get('network')))
        return replace(args, network=transport.network)

    def transport(self, network_given: bool = True) -> Transport:
        """The DDS transport these arguments choose (pamiq.ros.transport)."""
        try:
            return parse_transport(
                self.network, self.discovery, self.secure, self.certs, self.weights_mbit,
                network_given,
            )  # fmt: skip
        except TransportError as error:
            raise BringupError(str(error)) from None

    def learning(self) -> dict[str, str]:
        """The model and reward named at launch (agent and trainer must agree)."""
        return {name: getattr(self, name) for name in ('model', 'reward') if getattr(self, name)}

    def has(self, sense: str) -> bool:
        return sense in self.senses.split(',')

    @property
    def simulated(self) -> bool:
        """Simulated time: the world publishes /clock and every node uses it."""
        return float(self.real_time_factor) != 1.0

    @property
    def shared_clock(self) -> bool:
        """Simulated time from one actor in the namespace itself: its /clock is the graph's
        (several actors each keep their own, and the trainer keeps wall time)."""
        return self.simulated and self.actor_namespaces == ['']

    @property
    def actor_namespaces(self) -> list[str]:
        """The namespaces (relative to `namespace`) of the actors started here: '' for the one
        actor of a default graph, which lives in the namespace itself; else actor<i>."""
        if self.role == 'trainer':
            return []
        first, count = int(self.first_actor), int(self.actors)
        if self.role == 'all' and count == 1 and first == 0:
            return ['']
        return [f'actor{i}' for i in range(first, first + count)]

    def as_strings(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    parameters: dict[str, object] = field(default_factory=dict)
    respawn: bool = False
    """Start it again after an abnormal exit (see `respawns`)."""
    namespace: str = ''
    """Below the graph's namespace: an actor's, e.g. 'actor1' (empty: the namespace itself)."""
    remappings: tuple[tuple[str, str], ...] = ()
    stop_timeout: float = 5.0
    """Seconds it gets to exit after Ctrl-C before SIGTERM (launch's sigterm_timeout)."""

    @property
    def label(self) -> str:
        """How logs and output name the node: 'actor1/world', or 'trainer'."""
        return f'{self.namespace}/{self.name}' if self.namespace else self.name

    def full_namespace(self, namespace: str) -> str:
        return '/'.join(part for part in (namespace.strip('/'), self.namespace) if part)


def respawns(spec: NodeSpec, returncode: int) -> bool:
    """Whether a node that exited with `returncode` starts again (launch and `pamiq up` agree).

    Only after an abnormal exit: a crash, a kill (negative: the signal) or an error code. A
    node that stops cleanly (0: Ctrl-C or SIGTERM reached it) was asked to stop, and starting it
    again would leave it running alone once the rest of the graph has stopped. Any node that
    discovery left out of a secure graph (ISOLATED_EXIT) starts again, with a new connection.
    """
    return returncode == ISOLATED_EXIT or (spec.respawn and returncode != 0)


def graph(args: BringupArgs) -> list[NodeSpec]:
    """The nodes to start, in start order (each world before the actuator that sends to it)."""
    nodes = []
    for index, actor in enumerate(args.actor_namespaces):
        nodes += actor_nodes(args, actor, int(args.first_actor) + index, index)
    if args.role == 'actor':
        return nodes
    shared: dict[str, object] = {'run_dir': args.run_dir}
    if args.shared_clock:
        shared['use_sim_time'] = True
    if args.agent == 'curiosity':
        # Acting goes on without the trainer, and a restarted trainer resumes from its newest
        # checkpoint: respawn it rather than stopping the graph.
        # It finishes the minibatch in progress and writes a checkpoint before it exits.
        trainer = {**shared, 'senses': args.senses, **args.learning()}
        if args.simulated:  # actors act in bursts: every step of one must wait its turn
            trainer['intake_depth'] = max(qos.STEP.depth, 2 * lockstep_steps_per_version(args))
            # Lockstep actors wait for the trainer's rounds, so it trains on every core, still at
            # its lower priority (acting wins the CPU whenever it has work): PPO beside the
            # forward model, each on half the cores (LearnerConfig.concurrent_updates says why).
            cores = os.cpu_count() or 1
            trainer['concurrent_updates'] = cores > 1
            trainer['torch_threads'] = max(1, cores // 2)
        nodes.append(NodeSpec('trainer_node', 'trainer', trainer, respawn=True, stop_timeout=20.0))
    if args.record == 'true':
        # It writes what is still queued for the disk and closes the bag before it exits.
        recorder = NodeSpec(
            'recorder_node', 'recorder', {**shared, **args.learning()}, stop_timeout=20.0
        )
        nodes.append(recorder)
    return nodes


def actor_nodes(args: BringupArgs, actor: str, number: int, index: int) -> list[NodeSpec]:
    """One actor's world (or camera), actuator and agent, in `actor` below the namespace.

    Actor number i listens on / sends to osc_port + 2i, its body sense listens on body_port + 2i
    (VRChat's defaults 9000/9001 give 9002/9003 to the second client, and no actor's input is
    another's output), and it seeds its world and agent with seed + i. A namespaced actor's
    agent takes the one weights stream of the graph's trainer, and under simulated time each
    actor has its own clock (<actor>/clock): every actor's world keeps its own time, and the
    trainer, which follows them all, keeps wall time.
    """
    osc, body = actor_ports(args, number)
    if args.world == 'doom':
        nodes = [world_node(args, actor, number, osc, body)]
        if float(args.real_time_factor) == 0.0:
            osc['frame_markers'] = True  # the actuator tells the world an action is sent
    else:
        nodes = camera_nodes(args, actor, index)
    if args.has('body'):
        nodes.append(NodeSpec('body_node', 'body', body, namespace=actor))
    nodes.append(NodeSpec('osc_actuator_node', 'osc_actuator', dict(osc), namespace=actor))
    nodes.append(agent_node(args, actor, number))
    return on_simulated_time(args, actor, nodes) if args.simulated else nodes


def actor_ports(args: BringupArgs, number: int) -> tuple[dict[str, object], dict[str, object]]:
    """Actor number `number`'s OSC input (host and port) and its body sense's port."""
    osc: dict[str, object] = {}
    if args.osc_host:
        osc['osc_host'] = args.osc_host
    osc_base, body_base = base_ports(args.osc_port, args.body_port, args.params_file)
    if args.osc_port or number:
        osc['osc_port'] = osc_base + PORT_STRIDE * number
    body: dict[str, object] = {}
    if args.has('body') and (args.body_port or number):
        body['osc_port'] = body_base + PORT_STRIDE * number
    return osc, body


def world_node(
    args: BringupArgs, actor: str, number: int, osc: dict[str, object], body: dict[str, object]
) -> NodeSpec:
    """The Doom world, which listens where the actuator sends: the same host/port arguments."""
    world = dict(osc)
    if number:
        world['seed'] = int(node_parameter(args.params_file, 'world', 'seed', 0)) + number
    if args.simulated:
        world['real_time_factor'] = float(args.real_time_factor)
    if args.has('hearing'):
        world['audio'] = True
    if not args.has('body'):
        world['body_osc_port'] = 0  # nobody listens: send no avatar parameters
    elif body:
        world['body_osc_port'] = body['osc_port']
    return NodeSpec('doom_world_node', 'world', world, namespace=actor)


def camera_nodes(args: BringupArgs, actor: str, index: int) -> list[NodeSpec]:
    """VRChat's screen through the camera (this actor's of `camera:=a,b,...`), and its sound."""
    cameras = args.camera.split(',') if args.camera else []
    camera = cameras[index] if len(cameras) > 1 else (cameras[0] if cameras else '')
    parameters = {'camera': camera} if camera else {}
    nodes = [NodeSpec('camera_node', 'camera', parameters, namespace=actor)]
    if args.has('hearing'):
        sound = audio_parameters(args.audio)
        nodes.append(NodeSpec('audio_node', 'audio', sound, namespace=actor))
    return nodes


def lockstep_steps_per_version(args: BringupArgs) -> int:
    """Steps a lockstep agent acts on one weights version: the rollouts a round may wait for."""
    default = LearnerConfig.rollout_length
    rollout = int(node_parameter(args.params_file, 'trainer', 'rollout_length', default))
    return ROLLOUTS_AHEAD * rollout


def agent_node(args: BringupArgs, actor: str, number: int) -> NodeSpec:
    """The agent, seeded with seed + number, on the graph's one weights stream."""
    params = args.params_file
    agent: dict[str, object] = {
        'policy': args.agent,
        'run_dir': args.run_dir,
        'senses': args.senses,
        **args.learning(),
    }
    seed = int(node_parameter(params, 'agent', 'seed', 0))
    if number and seed >= 0:
        agent['seed'] = seed + number
    if (
        float(args.real_time_factor) == 0.0
        and args.agent == 'curiosity'
        and args.wait_for_trainer == 'true'
    ):
        agent['max_steps_per_version'] = lockstep_steps_per_version(args)
    return NodeSpec(
        'agent_node',
        'agent',
        agent,
        namespace=actor,
        remappings=((topics.WEIGHTS, topics.namespaced(args.namespace, topics.WEIGHTS)),)
        if actor
        else (),
    )


def on_simulated_time(args: BringupArgs, actor: str, nodes: list[NodeSpec]) -> list[NodeSpec]:
    """The actor's nodes on its world's clock (<actor>/clock when namespaced)."""
    own_clock = topics.namespaced(f'{args.namespace}/{actor}', topics.CLOCK.lstrip('/'))
    clock = ((topics.CLOCK, own_clock),) if actor else ()
    # The world is the clock (it sets its own); every other node follows it.
    return [
        NodeSpec(
            s.executable,
            s.name,
            s.parameters
            if s.executable == 'doom_world_node'
            else {**s.parameters, 'use_sim_time': True},
            s.respawn,
            s.namespace,
            s.remappings + clock,
        )
        for s in nodes
    ]


def audio_parameters(audio: str) -> dict[str, object]:
    """audio_node's source from `audio:=`: a WAV/FLAC file, else a device name."""
    if not audio:
        return {}
    if is_audio_file(audio):
        return {'file': os.path.abspath(audio)}
    return {'device': audio}


def node_parameter(params_file: str, node: str, name: str, default: object) -> object:
    """A node's parameter as the params file sets it (its default when it does not)."""
    with open(params_file) as stream:
        params = yaml.safe_load(stream) or {}
    for key, section in params.items():
        if key.rstrip('/').split('/')[-1] == node and isinstance(section, dict):
            return section.get('ros__parameters', {}).get(name, default)
    return default


def node_command(
    executable: str,
    name: str,
    namespace: str,
    params_files: list[str],
    remappings: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """The command line launch_ros builds for a node: its module, name, namespace, remappings,
    parameters.

    Parameters travel as YAML files only (never `-p name:=value`, which would turn a camera
    source '0' into an integer).
    """
    command = [sys.executable, '-m', EXECUTABLES[executable], '--ros-args']
    command += ['-r', f'__node:={name}', '-r', f'__ns:=/{namespace.strip("/")}']
    for source, target in remappings:
        command += ['-r', f'{source}:={target}']
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


def network_plan(args: BringupArgs, specs: list[NodeSpec]) -> NetworkPlan | None:
    """The profiles and environments of a transport across hosts (written into
    run_dir/dds); None for this host only."""
    transport = args.transport()
    if transport.network == 'loopback':
        return None
    directory = os.path.join(args.run_dir, layout.DDS)
    return NetworkPlan(transport, directory, [spec.label for spec in specs], args.namespace)
