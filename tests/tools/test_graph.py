"""Bring-up arguments and the node list shared by the launch file and `pamiq up`."""

from __future__ import annotations

import os

from pamiq.tools.cli import launch_command, parse_launch_arguments
from pamiq.tools.graph import (
    LAUNCH_ARGUMENTS,
    BringupArgs,
    BringupError,
    default_params_file,
    graph,
)
from pamiq.tools.supervisor import spec_command
import pytest
import yaml


def test_defaults_start_the_doom_world_with_the_curiosity_agent_and_its_trainer(tmp_path):
    args = BringupArgs.from_strings({'run_dir': str(tmp_path)})
    assert (args.world, args.agent, args.namespace) == ('doom', 'curiosity', 'pamiq')
    assert os.path.isfile(args.params_file)
    specs = graph(args)
    assert [(s.executable, s.name, s.respawn) for s in specs] == [
        ('doom_world_node', 'world', False),
        ('osc_actuator_node', 'osc_actuator', False),
        ('agent_node', 'agent', False),
        ('trainer_node', 'trainer', True),
    ]
    assert specs[2].parameters == {'policy': 'curiosity', 'run_dir': str(tmp_path)}
    assert specs[3].parameters == {'run_dir': str(tmp_path)}
    random_specs = graph(BringupArgs.from_strings({'agent': 'random'}))
    assert [s.name for s in random_specs] == ['world', 'osc_actuator', 'agent']


def test_vrchat_world_uses_the_camera_and_osc_arguments(tmp_path):
    args = BringupArgs.from_strings(
        {'world': 'vrchat', 'camera': '2', 'osc_port': '9100', 'osc_host': '127.0.0.2'}
    )
    specs = {s.name: s for s in graph(args)}
    assert set(specs) == {'camera', 'osc_actuator', 'agent', 'trainer'}
    assert specs['camera'].parameters == {'camera': '2'}
    assert specs['osc_actuator'].parameters == {'osc_host': '127.0.0.2', 'osc_port': 9100}
    # '2' must stay a string parameter: the override file quotes it (a -p would make it an int).
    command = spec_command(specs['camera'], args, str(tmp_path))
    path = str(tmp_path / 'camera.yaml')
    with open(path) as stream:
        assert yaml.safe_load(stream) == {'/pamiq/camera': {'ros__parameters': {'camera': '2'}}}
    assert command[1:3] == ['-m', 'pamiq.nodes.camera_node']
    assert command[command.index('--ros-args') :] == [
        '--ros-args', '-r', '__node:=camera', '-r', '__ns:=/pamiq',
        '--params-file', args.params_file, '--params-file', path,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'world': 'minecraft'}, 'world:=minecraft is not one of doom, vrchat'),
        ({'agent': 'clever'}, 'agent:=clever is not one of'),
        ({'osc_port': '70000'}, 'osc_port:=70000 is not a UDP port'),
        ({'osc_port': 'abc'}, 'is not a UDP port'),
        ({'camera': '0'}, 'only used with world:=vrchat'),
        ({'params_file': '/nonexistent.yaml'}, 'does not exist'),
        ({'wrld': 'doom'}, 'unknown argument(s) wrld'),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(values, message):
    with pytest.raises(BringupError, match=message.replace('(', r'\(').replace(')', r'\)')):
        BringupArgs.from_strings(values)


def test_launch_style_arguments_parse():
    assert parse_launch_arguments(['world:=vrchat', 'camera:=rtsp://127.0.0.1:8554/x']) == {
        'world': 'vrchat',
        'camera': 'rtsp://127.0.0.1:8554/x',
    }
    with pytest.raises(BringupError, match='name:=value'):
        parse_launch_arguments(['world=doom'])


def test_every_launch_argument_is_documented_and_the_params_file_covers_every_node():
    assert all(description for _, description in LAUNCH_ARGUMENTS.values())
    with open(default_params_file()) as stream:
        params = yaml.safe_load(stream)
    nodes = ('camera', 'world', 'agent', 'osc_actuator', 'trainer', 'recorder')
    assert set(params) == {f'/**/{node}' for node in nodes}


def test_the_readme_launch_argument_table_shows_each_default():
    from conftest import REPO

    with open(os.path.join(REPO, 'README.md')) as stream:
        section = stream.read().split('### Launch arguments', 1)[1].split('###', 1)[0]
    rows = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.split('|')[1:-1]]
        if cells and cells[0].startswith('`'):
            for name in cells[0].replace('`', '').split(', '):
                rows[name] = cells[1]
    assert set(rows) == set(LAUNCH_ARGUMENTS)
    for name, (default, _) in LAUNCH_ARGUMENTS.items():
        assert (f'`{default}`' in rows[name]) if default else rows[name].startswith('empty'), name


def test_the_handover_to_ros2_launch_passes_no_empty_argument(tmp_path):
    args = BringupArgs.from_strings({'agent': 'random', 'run_dir': str(tmp_path)})
    command = launch_command(args)
    assert command[:4] == ['ros2', 'launch', 'pamiq', 'bringup.launch.py']
    assert 'agent:=random' in command and f'run_dir:={tmp_path}' in command
    assert all(not item.endswith(':=') for item in command), command  # camera:= is refused
