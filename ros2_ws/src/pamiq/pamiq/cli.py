"""The `pamiq` command: start the graph without knowing ROS 2 (`pamiq up world:=doom ...`)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys

from pamiq import __version__
from pamiq.graph import LAUNCH_ARGUMENTS, BringupArgs, BringupError, graph


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


def up(launch_args: list[str], supervise: bool) -> int:
    args = BringupArgs.from_strings(parse_launch_arguments(launch_args))
    os.makedirs(args.run_dir, exist_ok=True)
    if not supervise and launch_tools_available():
        command = ['ros2', 'launch', 'pamiq', 'bringup.launch.py']
        command += [f'{name}:={value}' for name, value in args.as_strings().items()]
        print('[pamiq] ' + ' '.join(command), flush=True)
        os.execvpe(command[0], command, with_own_prefix_in_ament_path(dict(os.environ)))
    from pamiq.supervisor import Supervisor

    print(f'[pamiq] run directory {args.run_dir}', flush=True)
    return Supervisor(args, graph(args)).run()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='pamiq', description='P-AMI<Q>: a curiosity-driven agent for VRChat on ROS 2.'
    )
    parser.add_argument('--version', action='version', version=f'pamiq {__version__}')
    commands = parser.add_subparsers(dest='command', required=True)
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == 'up':
            return up(args.launch_args, args.supervise)
    except BringupError as error:
        print(f'pamiq: {error}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
