"""Each parameter is written once: declared from its config dataclass, and the shipped YAML
agrees with the declarations; the declarations behave as ROS parameters should."""

from __future__ import annotations

from dataclasses import dataclass
import os

from conftest import REPO
from pamiq.nodes import (
    agent_node,
    audio_node,
    body_node,
    camera_node,
    doom_world_node,
    osc_actuator_node,
    recorder_node,
    trainer_node,
)
from pamiq.settings import declared, defaults, setting
import pytest
import yaml

# YAML section (node name) -> the config classes the node declares.
NODES = {
    'camera': camera_node.PARAMETERS,
    'audio': audio_node.PARAMETERS,
    'body': body_node.PARAMETERS,
    'world': doom_world_node.PARAMETERS,
    'osc_actuator': osc_actuator_node.PARAMETERS,
    'agent': agent_node.PARAMETERS,
    'trainer': trainer_node.PARAMETERS,
    'recorder': recorder_node.PARAMETERS,
}
# Set for each run by `pamiq up` and the launch file (or `pamiq record`), not in the YAML.
PER_RUN = {'run_dir', 'output'}


def shipped() -> dict:
    with open(os.path.join(REPO, 'config', 'pamiq.yaml')) as stream:
        return yaml.safe_load(stream)


@pytest.mark.parametrize('node', NODES)
def test_the_params_file_agrees_with_the_declared_defaults(node):
    values = shipped()[f'/**/{node}']['ros__parameters']
    declared_defaults = defaults(*NODES[node])
    unknown = sorted(set(values) - set(declared_defaults))
    assert not unknown, f'{node}: the YAML sets undeclared parameters {unknown}'
    different = {
        name: (value, declared_defaults[name])
        for name, value in values.items()
        if value != declared_defaults[name] or type(value) is not type(declared_defaults[name])
    }
    assert not different, f'{node}: YAML value != declared default: {different}'
    missing = sorted(set(declared_defaults) - set(values) - PER_RUN)
    assert not missing, f'{node}: the YAML does not document {missing}'


def test_every_setting_has_a_description_and_a_sane_range():
    for classes in NODES.values():
        for cls in classes:
            for item in declared(cls):
                assert item.setting.description, item.name
                if item.setting.low is not None:
                    assert item.setting.low <= item.default <= item.setting.high, item.name


@dataclass(frozen=True)
class Inner:
    rate: float = setting(1.0, 'inner rate')


@dataclass(frozen=True)
class Outer:
    rate: float = setting(2.0, 'outer rate')
    inner: Inner = Inner()


def test_a_name_declared_twice_is_refused():
    with pytest.raises(ValueError, match='rate are declared twice'):
        declared(Outer)


def test_settings_refuse_inconsistent_declarations():
    with pytest.raises(ValueError, match='not one of'):
        setting('c', 'x', choices=('a', 'b'))
    with pytest.raises(ValueError, match='both ends'):
        setting(1, 'x', low=0)
    with pytest.raises(ValueError, match='read-only'):
        setting('a', 'x', choices=('a', 'b'), dynamic=True)


@dataclass(frozen=True)
class Probed:
    mode: str = setting('a', 'A choice', choices=('a', 'b'))
    gain: float = setting(1.0, 'A dynamic gain', low=0.0, high=2.0, dynamic=True)
    names: tuple[str, ...] = setting(('x',), 'A dynamic list', dynamic=True)


def test_declarations_carry_ranges_choices_and_update_through_one_path(ros):
    from pamiq.ros.parameters import declare_settings
    from rcl_interfaces.msg import SetParametersResult
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node('settings_probe')
    try:
        changes = []
        assert declare_settings(node, Probed, changes.append) == Probed()
        gain = node.describe_parameter('gain')
        assert gain.description == 'A dynamic gain' and not gain.read_only
        assert gain.floating_point_range[0].to_value == 2.0
        mode = node.describe_parameter('mode')
        assert mode.read_only and mode.additional_constraints == 'one of: a, b'

        result: SetParametersResult = node.set_parameters([Parameter('gain', value=1.5)])[0]
        assert result.successful
        assert changes[-1] == Probed(gain=1.5)
        assert not node.set_parameters([Parameter('gain', value=5.0)])[0].successful
        assert changes[-1].gain == 1.5  # refused: no change delivered
        node.set_parameters([Parameter('names', value=['y', 'z'])])
        assert changes[-1] == Probed(gain=1.5, names=('y', 'z'))
        assert not node.set_parameters([Parameter('mode', value='b')])[0].successful
    finally:
        node.destroy_node()


def test_a_value_outside_the_choices_is_refused_with_its_name(ros):
    from pamiq.ros.parameters import ParameterError, declare_settings
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    node = Node('settings_bad', parameter_overrides=[Parameter('mode', value='c')])
    try:
        with pytest.raises(ParameterError, match="parameter 'mode' is 'c'; expected one of a, b"):
            declare_settings(node, Probed)
    finally:
        node.destroy_node()
