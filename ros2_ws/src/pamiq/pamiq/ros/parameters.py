"""Declare ROS parameters with descriptors in one line each.

Every pamiq parameter carries its type, range and description so that `ros2 param describe`,
rqt_reconfigure and a bad YAML value all tell the user the same thing.
"""

from __future__ import annotations

import os
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node


class ParameterError(ValueError):
    """A parameter value the node cannot run with (raised at construction)."""


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    read_only: bool = False,
) -> Any:
    """Declare `name` with a descriptor and return its (validated) value.

    A range is enforced by rclpy itself (also for `ros2 param set`, which is then refused with
    the reason); choices are checked here and described in `additional_constraints`. A parameter
    that is not read-only may change at run time: the node attribute of the same name, if it
    has one, follows the new value.
    """
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(low), to_value=float(high))
            ]
        else:
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high))]
    if choices:
        descriptor.additional_constraints = 'one of: ' + ', '.join(choices)
    try:
        value = node.declare_parameter(name, default, descriptor).value
    except Exception as error:  # rclpy raises several types for a bad override
        raise ParameterError(f"parameter '{name}': {error}") from error
    if choices and value not in choices:
        raise ParameterError(
            f"parameter '{name}' is {value!r}; expected one of {', '.join(choices)}"
        )
    if not read_only:
        follow_at_run_time(node, name)
    return value


def follow_at_run_time(node: Node, name: str) -> None:
    live: set[str] | None = getattr(node, '_live_parameters', None)
    if live is None:
        live = node._live_parameters = set()

        def apply(parameters) -> None:
            for parameter in parameters:
                if parameter.name in live and hasattr(node, parameter.name):
                    setattr(node, parameter.name, parameter.value)

        node.add_post_set_parameters_callback(apply)
    live.add(name)


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
