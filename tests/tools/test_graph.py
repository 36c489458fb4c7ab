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
    assert specs[2].parameters == {
        'policy': 'curiosity',
        'run_dir': str(tmp_path),
        'senses': 'vision',
    }
    assert specs[3].parameters == {'run_dir': str(tmp_path), 'senses': 'vision'}
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
    nodes = ('camera', 'audio', 'body', 'world', 'agent', 'osc_actuator', 'trainer', 'recorder')
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


def test_several_actors_get_namespaces_ports_seeds_and_the_one_weights_stream(tmp_path):
    args = BringupArgs.from_strings(
        {'actors': '2', 'osc_port': '9100', 'real_time_factor': '0', 'run_dir': str(tmp_path)}
    )
    specs = graph(args)
    assert [s.label for s in specs] == [
        'actor0/world', 'actor0/osc_actuator', 'actor0/agent',
        'actor1/world', 'actor1/osc_actuator', 'actor1/agent',
        'trainer',
    ]  # fmt: skip
    by_label = {s.label: s for s in specs}
    assert by_label['actor1/world'].parameters['osc_port'] == 9102
    assert by_label['actor1/osc_actuator'].parameters['osc_port'] == 9102
    assert by_label['actor1/world'].parameters['seed'] == 1
    assert by_label['actor0/agent'].parameters['max_steps_per_version'] == 256  # 2 x 128
    # Each actor keeps its own simulated clock; every agent takes the trainer's weights.
    assert ('/clock', '/pamiq/actor1/clock') in by_label['actor1/agent'].remappings
    assert ('trainer/weights', '/pamiq/trainer/weights') in by_label['actor1/agent'].remappings
    assert 'use_sim_time' not in by_label['trainer'].parameters  # several clocks: wall time
    command = spec_command(by_label['actor1/agent'], args, str(tmp_path))
    ros_args = command[command.index('--ros-args') :]
    assert ros_args[:4] == ['--ros-args', '-r', '__node:=agent', '-r']
    assert '__ns:=/pamiq/actor1' in ros_args and '/clock:=/pamiq/actor1/clock' in ros_args
    with open(tmp_path / 'actor1_agent.yaml') as stream:
        assert '/pamiq/actor1/agent' in yaml.safe_load(stream)


def test_one_actor_in_lockstep_shares_the_graph_clock_and_waits_for_the_trainer(tmp_path):
    specs = {s.label: s for s in graph(BringupArgs.from_strings({'real_time_factor': '0'}))}
    assert specs['trainer'].parameters['use_sim_time'] is True
    assert specs['agent'].remappings == ()
    assert specs['agent'].parameters['max_steps_per_version'] == 256
    no_wait = BringupArgs.from_strings({'real_time_factor': '0', 'wait_for_trainer': 'false'})
    assert 'max_steps_per_version' not in {s.label: s for s in graph(no_wait)}['agent'].parameters
    real_time = {s.label: s for s in graph(BringupArgs.from_strings({}))}
    assert 'max_steps_per_version' not in real_time['agent'].parameters
    # The lockstep trainer trains on every core, two updates at once on half the cores each;
    # in real time it keeps the params file's one update on one thread.
    trainer = specs['trainer'].parameters
    assert trainer['concurrent_updates'] is (os.cpu_count() > 1)
    assert trainer['torch_threads'] == max(1, os.cpu_count() // 2)
    assert trainer['torch_threads'] * (1 + trainer['concurrent_updates']) <= os.cpu_count()
    assert not {'torch_threads', 'concurrent_updates'} & set(real_time['trainer'].parameters)


def test_roles_split_the_graph_between_hosts():
    trainer = graph(BringupArgs.from_strings({'role': 'trainer', 'record': 'true'}))
    assert [s.label for s in trainer] == ['trainer', 'recorder']
    actors = graph(BringupArgs.from_strings({'role': 'actor', 'first_actor': '2'}))
    assert [s.label for s in actors] == ['actor2/world', 'actor2/osc_actuator', 'actor2/agent']
    assert actors[0].parameters['osc_port'] == 9004 and actors[0].parameters['seed'] == 2
    vrchat = graph(
        BringupArgs.from_strings({'world': 'vrchat', 'actors': '2', 'camera': '0,/tmp/b.mp4'})
    )
    assert [s.parameters['camera'] for s in vrchat if s.name == 'camera'] == ['0', '/tmp/b.mp4']


def test_actors_ports_interleave_so_no_actions_reach_a_body_sense():
    specs = graph(BringupArgs.from_strings({'actors': '3', 'senses': 'vision,body'}))
    ports = {s.label: s.parameters for s in specs}
    # Actor 0 keeps VRChat's 9000 (input) and 9001 (output), as the params file has them.
    assert 'osc_port' not in ports['actor0/world'] and 'osc_port' not in ports['actor0/body']
    for number in (1, 2):
        actor = f'actor{number}'
        assert ports[f'{actor}/world']['osc_port'] == 9000 + 2 * number
        assert ports[f'{actor}/osc_actuator']['osc_port'] == 9000 + 2 * number
        assert ports[f'{actor}/body']['osc_port'] == 9001 + 2 * number
        assert ports[f'{actor}/world']['body_osc_port'] == 9001 + 2 * number
    # Without the body sense the worlds send no avatar parameters (actor1's input is not 9001).
    for spec in graph(BringupArgs.from_strings({'actors': '2'})):
        if spec.name == 'world':
            assert spec.parameters['body_osc_port'] == 0


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        (
            {'actors': '2', 'senses': 'body', 'body_port': '9002'},
            'osc_port 9000 and body_port 9002 give actors the same port 9002',
        ),
        ({'senses': 'body', 'body_port': '9000'}, 'give actors the same port 9000'),
        ({'actors': '0'}, 'actors:=0 is not a whole number >= 1'),
        ({'first_actor': '-1'}, 'first_actor:=-1 is not a whole number'),
        ({'role': 'boss'}, 'role:=boss is not one of all, trainer, actor'),
        ({'role': 'trainer', 'agent': 'random'}, 'role:=trainer needs agent:=curiosity'),
        ({'world': 'vrchat', 'actors': '3', 'camera': '0,1'}, 'give one per actor'),
        ({'actors': '4', 'osc_port': '65530'}, 'leaves no port'),
        ({'wait_for_trainer': 'maybe'}, 'wait_for_trainer:=maybe is not true or false'),
    ],
)
def test_bad_actor_arguments_are_refused_with_the_reason(values, message):
    with pytest.raises(BringupError, match=message):
        BringupArgs.from_strings(values)


def test_senses_add_their_nodes_in_every_actor_and_agree_between_agent_and_trainer(tmp_path):
    args = BringupArgs.from_strings(
        {'senses': 'body,vision,hearing', 'actors': '2', 'body_port': '9300', 'osc_port': '9100'}
    )
    assert args.senses == 'vision,hearing,body'  # one spelling, in SENSES order
    by_label = {s.label: s for s in graph(args)}
    for index in (0, 1):
        world = by_label[f'actor{index}/world'].parameters
        assert world['audio'] is True and world['body_osc_port'] == 9300 + 2 * index
        assert by_label[f'actor{index}/body'].parameters == {'osc_port': 9300 + 2 * index}
        assert by_label[f'actor{index}/agent'].parameters['senses'] == 'vision,hearing,body'
    assert by_label['trainer'].parameters['senses'] == 'vision,hearing,body'
    assert not any(s.executable == 'audio_node' for s in graph(args))  # Doom hears itself
    vrchat = BringupArgs.from_strings(
        {'world': 'vrchat', 'senses': 'vision,hearing', 'audio': 'sound.flac'}
    )
    specs = {s.name: s for s in graph(vrchat)}
    assert specs['audio'].parameters == {'file': os.path.abspath('sound.flac')}
    assert 'body' not in specs
    device = BringupArgs.from_strings({'world': 'vrchat', 'senses': 'hearing', 'audio': 'vrchat'})
    assert {s.name: s for s in graph(device)}['audio'].parameters == {'device': 'vrchat'}


@pytest.mark.parametrize(
    ('values', 'message'),
    [
        ({'senses': 'vision,smell'}, 'unknown sense'),
        ({'senses': ','}, 'no sense'),
        ({'audio': 'a.wav', 'senses': 'vision,hearing'}, 'audio:=... is for world:=vrchat'),
        ({'world': 'vrchat', 'audio': 'a.wav'}, 'with hearing'),
        ({'body_port': 'x'}, 'body_port:=x is not a UDP port'),
    ],
)
def test_bad_sense_arguments_are_refused_with_the_reason(values, message):
    with pytest.raises(BringupError, match=message):
        BringupArgs.from_strings(values)
