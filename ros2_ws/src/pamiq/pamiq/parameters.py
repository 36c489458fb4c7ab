"""Declare ROS parameters with descriptors in one line each.

Every pamiq parameter carries its type, range and description so that `ros2 param describe`,
rqt_reconfigure and a bad YAML value all tell the user the same thing.
"""

from __future__ import annotations

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

    A range is enforced by rclpy itself (also for `ros2 param set`); choices are checked here
    and described in `additional_constraints`.
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
    return value
