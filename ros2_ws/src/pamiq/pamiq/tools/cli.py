"""The `pamiq` command: start the graph without knowing ROS 2 (`pamiq up world:=doom ...`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from pamiq import __version__
from pamiq.evaluation.bootstrap import RESAMPLES as EVAL_RESAMPLES
from pamiq.learning.config import LearnerConfig
from pamiq.ros.acting_domain import DomainInUse
from pamiq.ros.tool_ports import tool_environment
from pamiq.ros.transport import (
    PAMIQ_PROCESS,
    TOOLS_DIRECTORY_VARIABLE,
    NetworkPlan,
    TransportError,
    apply_environment,
    describe_settings,
    this_host_transport,
)
from pamiq.tools.certs import DEFAULT_DAYS
from pamiq.tools.graph import (
    LAUNCH_ARGUMENTS,
    BringupArgs,
    BringupError,
    graph,
    network_plan,
    node_command,
    write_parameters,
)
from pamiq.tools.train_world import add_arguments as add_world_training_arguments
from pamiq.vocabulary import ACTION_SPACES, DEVICES, ENCODERS, EVAL_BASELINES, parse_senses


def parse_launch_arguments(items: list[str]) -> dict[str, str]:
    values = {}
    for item in items:
        name, sep, value = item.partition(':=')
        if not sep:
            raise BringupError(
                f'argument {item!r} is not of the form name:=value (e.g. world:=doom)'
            )
        values[name] = value
    return values


def launch_tools_available() -> bool:
    """True when `ros2 launch` can run here (a ROS 2 install, or the launch packages beside us)."""
    return shutil.which('ros2') is not None and all(
        importlib.util.find_spec(name) is not None
        for name in ('launch', 'launch_ros', 'ros2launch')
    )


def with_own_prefix_in_ament_path(env: dict[str, str]) -> dict[str, str]:
    """A pip install registers pamiq in <venv>/share/ament_index; make ROS tools look there."""
    marker = os.path.join(
        sys.prefix, 'share', 'ament_index', 'resource_index', 'packages', 'pamiq'
    )
    paths = [p for p in env.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    if os.path.exists(marker) and sys.prefix not in paths:
        env = dict(env, AMENT_PREFIX_PATH=os.pathsep.join([sys.prefix, *paths]))
    return env


def own_the_terminal() -> Callable[[], None]:
    """Put this process in a foreground process group of its own; return how to undo it.

    Ctrl-C goes to the terminal's whole foreground group: a parent such as `make run` would get
    it too and report "Interrupt" with exit code 2 even though the graph stopped cleanly. With
    its own group, only pamiq sees Ctrl-C, stops the graph and exits 0, and so does make.
    """
    try:
        tty = os.open('/dev/tty', os.O_RDWR)
    except OSError:
        return lambda: None  # no terminal: nothing to do
    try:
        previous = os.tcgetpgrp(tty)
        if previous != os.getpgrp():
            os.close(tty)
            return lambda: None  # started in the background: leave the terminal alone
        ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpgrp())
    except OSError:
        os.close(tty)
        return lambda: None

    def restore() -> None:
        try:
            os.tcsetpgrp(tty, previous)
        except OSError:
            pass
        signal.signal(signal.SIGTTOU, ttou)
        os.close(tty)

    return restore


def launch_command(args: BringupArgs) -> list[str]:
    """`ros2 launch` of the graph with these arguments; an empty one is left to its default
    (ros2 launch refuses 'name:=')."""
    command = ['ros2', 'launch', 'pamiq', 'bringup.launch.py']
    return command + [f'{name}:={value}' for name, value in args.as_strings().items() if value]


def up(launch_args: list[str], supervise: bool, quiet: bool = False) -> int:
    args = BringupArgs.from_strings(parse_launch_arguments(launch_args))
    os.makedirs(args.run_dir, exist_ok=True)
    specs = graph(args)
    # Before anything starts a DDS participant here (the status line) or in a child.
    plan = network_plan(args, specs)
    use_transport(plan)
    if not supervise and launch_tools_available():
        command = launch_command(args)
        print('[pamiq] ' + ' '.join(command), flush=True)
        os.execvpe(command[0], command, with_own_prefix_in_ament_path(dict(os.environ)))
    from pamiq.tools.supervisor import Supervisor

    print(f'[pamiq] run directory {args.run_dir}', flush=True)
    restore_terminal = own_the_terminal()
    status = None
    if not quiet:
        from pamiq.tools.status import StatusLine

        status = StatusLine(
            args.namespace,
            args.run_dir,
            lambda line: print(line, flush=True),
            sim_time=args.shared_clock,
        )
    elif plan is not None and plan.transport.tls:
        from pamiq.tools.status import host_anchor

        status = host_anchor(args.namespace)
    try:
        return Supervisor(args, specs, plan=plan).run()
    finally:
        if status is not None:
            status.stop()
        restore_terminal()


def use_transport(plan: NetworkPlan | None) -> None:
    """Put this host's DDS settings into our environment (the children inherit it)."""
    if plan is None:
        transport = this_host_transport(os.environ)
        os.environ.update(transport)
        print(f'[pamiq] DDS transport: {describe_settings(os.environ, transport)}', flush=True)
        return
    environment = apply_environment(os.environ, plan.environment(PAMIQ_PROCESS))
    os.environ.clear()
    os.environ.update(environment)
    print(
        f'[pamiq] DDS transport: {plan.transport.describe()}; profiles in {plan.directory}; '
        f'ROS 2 tools on this host: . {plan.tools_env}',
        flush=True,
    )


def take_tool_port() -> None:
    """pamiq's own tools (ctl, record, replay) after `. ros2_tools.env`: on the secure
    server's host each takes a port of its own, as `pamiq tool` gives other tools."""
    directory = os.environ.get(TOOLS_DIRECTORY_VARIABLE)
    if directory:
        environment = apply_environment(os.environ, tool_environment(directory))
        os.environ.clear()
        os.environ.update(environment)


def tool_command(args: argparse.Namespace) -> int:
    """Run a ROS 2 tool with this host's environment for the networked graph (replaces this
    process)."""
    command = args.tool_command[1:] if args.tool_command[:1] == ['--'] else args.tool_command
    if not command:
        raise ValueError('tool: name the command to run, e.g. pamiq tool -- ros2 node list')
    if not args.dds:
        raise ValueError(
            f'tool: no dds folder: pass --dds <run_dir>/dds, or source its ros2_tools.env '
            f'(it sets {TOOLS_DIRECTORY_VARIABLE})'
        )
    environment = apply_environment(os.environ, tool_environment(os.path.abspath(args.dds)))
    os.execvpe(command[0], command, environment)


def certs_command(args: argparse.Namespace) -> int:
    from pamiq.tools.certs import make_certs

    for folder in make_certs(args.directory, args.hosts, args.days):
        print(f'{folder}: copy it to that host, then pamiq up ... secure:=true certs:={folder}')
    print(
        f'{os.path.join(args.directory, "ca.key")} signs new hosts '
        '(pamiq certs with the same directory): keep it here, never copy it'
    )
    return 0


def record(args: argparse.Namespace) -> int:
    """Run the recorder node in the foreground against a running graph."""
    parameters = {
        'run_dir': os.path.abspath(args.run_dir),
        'record_images': args.images,
        'storage': args.storage,
    }
    if args.output:
        parameters['output'] = os.path.abspath(args.output)
    with tempfile.TemporaryDirectory(prefix='pamiq-record-') as directory:
        path = write_parameters(
            os.path.join(directory, 'recorder.yaml'), args.namespace, 'recorder', parameters
        )
        return in_foreground(node_command('recorder_node', 'recorder', args.namespace, [path]))


def in_foreground(command: list[str]) -> int:
    """Run a node until it ends; a SIGINT that reached only us (`kill -INT`, `timeout -s INT`)
    is passed on, and a Ctrl-C, which reaches both, ends it cleanly without a traceback."""
    child = subprocess.Popen(command)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)


def replay_command(args: argparse.Namespace) -> int:
    from pamiq.tools.replay import replay

    remaps = dict(parse_remap(item) for item in args.remap)
    published = replay(
        args.bags, args.rate, args.loop, args.start, args.topics, remaps, not args.no_clock,
        discovery_wait=args.delay,
    )  # fmt: skip
    return 0 if published else 1


def parse_remap(item: str) -> tuple[str, str]:
    source, sep, target = item.partition(':=')
    if not sep or not source or not target:
        raise BringupError(f'remap {item!r} is not of the form from:=to')
    return source, target


def train_command(args: argparse.Namespace) -> int:
    if args.world:
        from pamiq.tools.train_world import train_world

        return train_world(args)
    if not args.from_bag or not args.run_dir:
        raise ValueError('give --world doom --out DIR, or --from-bag BAG... --run-dir DIR')
    from pamiq.tools.offline import train_from_bags

    config = LearnerConfig(
        encoder=args.encoder,
        action_space=args.action_space,
        senses=','.join(parse_senses(args.senses)),
        device=args.device,
        batch_size=args.batch_size,
    )
    train_from_bags(
        args.from_bag, args.run_dir, config, args.epochs, args.seed, lambda t: print(t, flush=True)
    )
    return 0


def ctl_command(args: argparse.Namespace) -> int:
    from pamiq.tools.ctl import ctl

    return ctl(args.verb, args.namespace, args.seconds, args.timeout)


def report_command(args: argparse.Namespace) -> int:
    from pamiq.tools.report import write_report

    for path in write_report(args.run_dir, args.output or None, print):
        print(f'wrote {path}')
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from pamiq.evaluation.evaluate import evaluate

    evaluate(
        args.policies,
        args.checkpoint,
        args.episodes,
        args.first_seed,
        args.out,
        args.scenario,
        args.action_space,
        args.encoder,
        args.max_steps,
        args.resamples,
        eval_command_line(args),
        lambda text: print(text, flush=True),
    )
    print(f'wrote {os.path.join(args.out, "eval.json")}, coverage.png, trajectories.png')
    return 0


def eval_command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this evaluation, for eval.json."""
    words = ['pamiq', 'eval', '--policies', *args.policies]
    if args.checkpoint:
        words += ['--checkpoint', *args.checkpoint]
    words += ['--episodes', str(args.episodes), '--first-seed', str(args.first_seed)]
    words += ['--scenario', args.scenario, '--action-space', args.action_space]
    if args.checkpoint:
        words += ['--encoder', args.encoder]
    if args.max_steps is not None:
        words += ['--max-steps', str(args.max_steps)]
    return ' '.join([*words, '--resamples', str(args.resamples), '--out', args.out])


def bag_command(args: argparse.Namespace) -> int:
    from pamiq.tools.bag_tools import bag_info, export_video

    if args.bag_command == 'info':
        print(bag_info(args.bag))
    else:
        frames = export_video(args.bag, args.output, args.topic, args.fps, args.scale)
        print(f'{frames} frames written to {args.output}')
        sound = os.path.splitext(args.output)[0] + '.wav'
        if os.path.exists(sound):
            print(f'what was heard written to {sound}, aligned with the first frame')
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pamiq', description='P-AMI<Q>: a curiosity-driven agent for VRChat on ROS 2.'
    )
    parser.add_argument('--version', action='version', version=f'pamiq {__version__}')
    commands = parser.add_subparsers(dest='command', required=True)
    add_up_command(commands)
    add_record_command(commands)
    add_replay_command(commands)
    add_train_command(commands)
    add_certs_command(commands)
    add_tool_command(commands)
    add_ctl_command(commands)
    add_report_command(commands)
    add_eval_command(commands)
    add_bag_command(commands)
    return parser


def add_up_command(commands: argparse._SubParsersAction) -> None:
    arguments = '\n'.join(
        f'  {name}:=  {text} [{default or "params file"}]'
        for name, (default, text) in LAUNCH_ARGUMENTS.items()
    )
    up_parser = commands.add_parser(
        'up',
        help='start the whole graph (ros2 launch when available, else its own supervisor)',
        description='Start the pamiq graph. Arguments are those of bringup.launch.py:\n'
        + arguments,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    up_parser.add_argument('launch_args', nargs='*', metavar='name:=value')
    up_parser.add_argument(
        '--supervise',
        action='store_true',
        help="use pamiq's own process supervisor even if ros2 launch is available",
    )
    up_parser.add_argument('--quiet', action='store_true', help='no live status line')


def add_record_command(commands: argparse._SubParsersAction) -> None:
    rec = commands.add_parser(
        'record', help='record a running graph into rosbag2 bags (Ctrl-C stops)'
    )
    rec.add_argument(
        '--run-dir', default='runs/recordings', help='bags go to <run-dir>/bags/<date-time>/'
    )
    rec.add_argument('--output', default='', help='session directory instead of the default')
    rec.add_argument('--images', action='store_true', help='also record camera/image_raw (large)')
    rec.add_argument('--storage', default='mcap', choices=('mcap', 'sqlite3'))
    rec.add_argument('--namespace', default='pamiq')


def add_replay_command(commands: argparse._SubParsersAction) -> None:
    rep = commands.add_parser(
        'replay', help='publish recorded bags on their topics, with their timing'
    )
    rep.add_argument('bags', nargs='+', help='bag (split) or session directories')
    rep.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    rep.add_argument('--loop', action='store_true')
    rep.add_argument(
        '--start', type=float, default=0.0, help='seconds into the recording to start at'
    )
    rep.add_argument(
        '--topics', nargs='*', default=[], help='only these topics (full or relative)'
    )
    rep.add_argument('--remap', nargs='*', default=[], metavar='from:=to', help='e.g. a:=b')
    rep.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    rep.add_argument(
        '--delay', type=float, default=1.0, help='seconds for subscribers to connect first'
    )


def add_train_command(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        'train',
        help='train in a built-in world, batched (--world doom), or learn encoder + forward '
        'model from bags offline (--from-bag)',
    )
    train.add_argument('--from-bag', nargs='+', metavar='BAG')
    train.add_argument('--run-dir', help='offline: the checkpoint goes (and resumes from) here')
    train.add_argument(
        '--epochs', type=float, default=3.0, help='passes over the data (the original: 3)'
    )
    train.add_argument('--batch-size', type=int, default=LearnerConfig.batch_size)
    train.add_argument('--encoder', default=LearnerConfig.encoder, choices=ENCODERS)
    train.add_argument('--action-space', default=LearnerConfig.action_space, choices=ACTION_SPACES)
    train.add_argument('--device', default=LearnerConfig.device, choices=DEVICES)
    train.add_argument(
        '--senses',
        default=LearnerConfig.senses,
        help='as the live agent: e.g. vision,hearing,body',
    )
    train.add_argument('--seed', type=int, default=0)
    add_world_training_arguments(train)


def add_certs_command(commands: argparse._SubParsersAction) -> None:
    certs = commands.add_parser(
        'certs',
        help="make a run's CA and a key and certificate per host (for secure:=true)",
        description='Make (or reuse) the CA in DIRECTORY and, for each host, DIRECTORY/<host>/ '
        'with ca.crt, host.crt and host.key (0600): copy that folder to the host and start it '
        'with secure:=true certs:=<folder>. An existing CA signs hosts added later.',
    )
    certs.add_argument('directory')
    certs.add_argument(
        '--hosts', nargs='+', required=True, metavar='HOST', help='e.g. trainer actor1 actor2'
    )
    certs.add_argument(
        '--days', type=int, default=DEFAULT_DAYS, help='how long the certificates last'
    )


def add_tool_command(commands: argparse._SubParsersAction) -> None:
    tool = commands.add_parser(
        'tool',
        help="run a ROS 2 tool with this host's environment for a networked graph",
        description="Runs COMMAND with the run's ros2_tools.env applied; on the secure (TLS) "
        "server's host also with a listening port no earlier tool of the run had (Fast DDS "
        "2.14 keeps a dead participant's port: a second tool on it hears nothing from other "
        'hosts). E.g. pamiq tool -- ros2 topic hz /pamiq/actor0/action --no-daemon',
    )
    tool.add_argument(
        '--dds',
        default=os.environ.get(TOOLS_DIRECTORY_VARIABLE, ''),
        help=f"the run's dds folder (<run_dir>/dds; default ${TOOLS_DIRECTORY_VARIABLE}, "
        'which ros2_tools.env sets)',
    )
    tool.add_argument('tool_command', nargs=argparse.REMAINDER, metavar='-- COMMAND ...')


def add_ctl_command(commands: argparse._SubParsersAction) -> None:
    ctl = commands.add_parser('ctl', help='pause, resume, save or check a running graph')
    ctl.add_argument('verb', choices=('pause', 'resume', 'save', 'status'))
    ctl.add_argument('--namespace', default='pamiq')
    ctl.add_argument(
        '--seconds',
        type=float,
        default=3.0,
        help='status: the longest to listen to /diagnostics; it ends sooner once every node '
        "publishing them has been heard, and each actor's nodes as another actor has them "
        '(nodes on simulated time publish once per simulated second: a lockstep actor waiting '
        'for the trainer publishes nothing)',
    )
    ctl.add_argument(
        '--timeout',
        type=float,
        default=5.0,
        help='pause, resume, save: how long to wait for each service to appear and answer (s)',
    )


def add_report_command(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser('report', help='write PNG plots of a run directory')
    report.add_argument('run_dir')
    report.add_argument(
        '--output', default='', help='where the PNGs go (default: <run_dir>/report)'
    )


def add_eval_command(commands: argparse._SubParsersAction) -> None:
    evaluation = commands.add_parser(
        'eval',
        help='measure how far policies explore per episode, on the same spawns',
        description='Play whole episodes with each policy on the same seed list (the same '
        'spawns) and measure distinct 64x64 cells visited per episode (mean, bootstrap 95 %% '
        'interval, paired ratio to random), the fraction of the floor cells, sectors visited '
        'and the goal rate. Writes OUT/eval.json, OUT/coverage.png, OUT/trajectories.png.',
    )
    evaluation.add_argument(
        '--policies',
        nargs='*',
        default=list(EVAL_BASELINES),
        choices=EVAL_BASELINES,
        help='baselines: random (uniform random actions), forward_turn (forward, a random '
        'turn held ~1 s)',
    )
    evaluation.add_argument(
        '--checkpoint',
        nargs='*',
        default=[],
        metavar='PATH',
        help='trained policies: a run directory (its newest usable checkpoint, as the agent '
        'starts) or a checkpoint file; vision-only models',
    )
    evaluation.add_argument('--episodes', type=int, default=100, help='episodes per method')
    evaluation.add_argument(
        '--first-seed', type=int, default=1000, help='episode seeds are FIRST.. FIRST+EPISODES-1'
    )
    evaluation.add_argument('--out', required=True, help='where eval.json and the PNGs go')
    evaluation.add_argument('--scenario', default='my_way_home', help='ViZDoom scenario')
    evaluation.add_argument('--action-space', default=ACTION_SPACES[0], choices=ACTION_SPACES)
    evaluation.add_argument(
        '--encoder', default=ENCODERS[0], choices=ENCODERS, help="the checkpoints' encoder"
    )
    evaluation.add_argument(
        '--max-steps',
        type=int,
        default=None,
        help='cut each episode after this many steps (smoke tests only: the metric is per '
        'full episode)',
    )
    evaluation.add_argument(
        '--resamples', type=int, default=EVAL_RESAMPLES, help='bootstrap resamples'
    )


def add_bag_command(commands: argparse._SubParsersAction) -> None:
    bag = commands.add_parser('bag', help='inspect or export a recorded bag')
    bag_commands = bag.add_subparsers(dest='bag_command', required=True)
    info = bag_commands.add_parser('info', help='topics, counts, duration, rates')
    info.add_argument('bag')
    export = bag_commands.add_parser(
        'export', help='write an image stream to .mp4 or .gif (and audio/pcm to a .wav beside)'
    )
    export.add_argument('bag')
    export.add_argument('-o', '--output', required=True)
    export.add_argument('--topic', default='agent/observation')
    export.add_argument('--fps', type=float, default=10.0)
    export.add_argument('--scale', type=int, default=4, help='enlarge each frame this many times')


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    commands = {
        'up': lambda: up(args.launch_args, args.supervise, args.quiet),
        'record': lambda: record(args),
        'replay': lambda: replay_command(args),
        'train': lambda: train_command(args),
        'bag': lambda: bag_command(args),
        'ctl': lambda: ctl_command(args),
        'tool': lambda: tool_command(args),
        'report': lambda: report_command(args),
        'eval': lambda: eval_command(args),
        'certs': lambda: certs_command(args),
    }
    try:
        if args.command in ('ctl', 'record', 'replay'):
            take_tool_port()
        return commands[args.command]()
    except (BringupError, TransportError, DomainInUse, ValueError, FileNotFoundError) as error:
        print(f'pamiq: {error}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    raise SystemExit(main())
