"""ROS parameter declarations generated from pamiq's config dataclasses (`pamiq.settings`).

Every parameter carries its type, range and description so that `ros2 param describe`,
rqt_reconfigure and a bad YAML value all tell the user the same thing; the dataclass field is
the one place each of them is written.
"""

from __future__ import annotations

from collections.abc import Callable
import os
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from pamiq.settings import Declared, build, declared
from pamiq.vocabulary import DEFAULT_SENSES, parse_senses

Config = TypeVar('Config')


class ParameterError(ValueError):
    """A parameter value the node cannot run with (raised at construction)."""


def descriptor(item: Declared) -> ParameterDescriptor:
    """The ROS descriptor of one setting: description, range, choices, read-only."""
    setting = item.setting
    result = ParameterDescriptor(description=setting.description, read_only=not setting.dynamic)
    if setting.low is not None:
        if isinstance(item.default, float):
            result.floating_point_range = [
                FloatingPointRange(from_value=float(setting.low), to_value=float(setting.high))
            ]
        else:
            result.integer_range = [
                IntegerRange(from_value=int(setting.low), to_value=int(setting.high))
            ]
    if setting.choices:
        result.additional_constraints = 'one of: ' + ', '.join(setting.choices)
    return result


def declare_settings(
    node: Node, cls: type[Config], on_change: Callable[[Config], None] | None = None
) -> Config:
    """Declare every setting of `cls` on `node`; return the config built from their values.

    rclpy enforces ranges itself (also for `ros2 param set`, which is then refused with the
    reason); choices are checked here. When a dynamic setting changes at run time, `on_change`
    receives the whole config rebuilt with the new value: the one path by which a node learns of
    a parameter update.

    Raises:
        ParameterError: A value is of the wrong type, out of range or not one of the choices.
    """
    items = declared(cls)
    values: dict[str, Any] = {}
    for item in items:
        try:
            value = node.declare_parameter(item.name, item.default, descriptor(item)).value
        except Exception as error:  # rclpy raises several types for a bad override
            raise ParameterError(f"parameter '{item.name}': {error}") from error
        if item.setting.choices and value not in item.setting.choices:
            raise ParameterError(
                f"parameter '{item.name}' is {value!r}; "
                f'expected one of {", ".join(item.setting.choices)}'
            )
        values[item.name] = value
    config = build(cls, values)
    dynamic = {item.name for item in items if item.setting.dynamic}
    if on_change is not None and dynamic:

        def apply(parameters) -> None:
            changed = {p.name: p.value for p in parameters if p.name in dynamic}
            if changed:
                values.update(changed)
                on_change(build(cls, values))

        node.add_post_set_parameters_callback(apply)
    return config


def writable_directory(name: str, path: str) -> str:
    """The absolute form of a directory parameter, created if needed; refused if unusable."""
    if not path or '\x00' in path:
        raise ParameterError(f"parameter '{name}' must be a directory path, got {path!r}")
    path = os.path.abspath(os.path.expanduser(path))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ParameterError(
            f"parameter '{name}': cannot create {path}: {error.strerror}"
        ) from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise ParameterError(f"parameter '{name}': {path} is not writable")
    return path


def check_senses(text: str, encoder: str) -> tuple[str, ...]:
    """The `senses` parameter as a tuple; refused when unknown, empty, or beyond vision with an
    encoder that learns from frames only."""
    try:
        senses = parse_senses(text)
    except ValueError as error:
        raise ParameterError(f"parameter 'senses': {error}") from error
    if senses != DEFAULT_SENSES and encoder != 'inverse_dynamics':
        raise ParameterError(
            f"parameter 'senses' is {text!r}: only the inverse_dynamics encoder learns from "
            f'senses besides vision (encoder {encoder!r} reconstructs frames)'
        )
    return senses
