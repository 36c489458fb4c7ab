"""Settings: config-dataclass fields that are also ROS parameters, each described once.

As CleanRL's `Args` dataclass is the one home of each hyperparameter, a pamiq config dataclass
is the one home of each parameter: its default, range, choices and description live on the
field, `pamiq.ros.parameters.declare_settings` turns them into ROS declarations, and plain
Python (offline training, benchmarks, tests) builds the same dataclass without ROS.

    @dataclass(frozen=True)
    class CameraConfig:
        rate: float = setting(10.0, 'Frames published per second (Hz)', low=0.1, high=120.0)

Fields made with `dataclasses.field` instead are configuration but not parameters; a field
whose type is a dataclass with settings contributes those settings under their own names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass
import typing
from typing import Any

_KEY = 'pamiq.setting'


@dataclass(frozen=True)
class Setting:
    """What a ROS parameter declaration says about a field besides its default."""

    description: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    dynamic: bool = False
    """True: may change at run time (`ros2 param set`); False: read-only once the node runs."""


def setting(
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] = (),
    dynamic: bool = False,
) -> Any:
    """A dataclass field that is also a ROS parameter (see the module docstring)."""
    if (low is None) != (high is None):
        raise ValueError(f'{description!r}: give both ends of a range or neither')
    if choices and default not in choices:
        raise ValueError(f'default {default!r} is not one of {choices}')
    if choices and dynamic:
        raise ValueError('a setting with choices is read-only: choices are checked at start-up')
    metadata = {_KEY: Setting(description, low, high, tuple(choices), dynamic)}
    if isinstance(default, (list, tuple)):
        return field(default=tuple(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Declared:
    """One setting of a config class, flattened: its parameter name and where it sits."""

    name: str
    path: tuple[str, ...]  # attribute path inside the top-level config
    default: Any
    setting: Setting


def declared(cls: type) -> list[Declared]:
    """Every setting of a config dataclass, nested ones included, in declaration order.

    Raises:
        ValueError: Two settings would have the same parameter name.
    """
    found = list(_walk(cls, ()))
    names = [d.name for d in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f'{cls.__name__}: settings {", ".join(repeated)} are declared twice')
    return found


def defaults(*classes: type) -> dict[str, Any]:
    """Parameter name -> default over config classes (what a params file should agree with)."""
    return {d.name: d.default for cls in classes for d in declared(cls)}


def build(cls: type, values: dict[str, Any]) -> Any:
    """An instance of `cls` with the given parameter values (by flat name); others default."""
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if _KEY in f.metadata:
            if f.name in values:
                value = values[f.name]
                kwargs[f.name] = tuple(value) if isinstance(f.default, tuple) else value
        elif _nested(hints.get(f.name)):
            kwargs[f.name] = build(hints[f.name], values)
    return cls(**kwargs)


def _walk(cls: type, path: tuple[str, ...]) -> Iterator[Declared]:
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if _KEY in f.metadata:
            yield Declared(f.name, (*path, f.name), _default(f), f.metadata[_KEY])
        elif _nested(hints.get(f.name)):
            yield from _walk(hints[f.name], (*path, f.name))


def _nested(hint: Any) -> bool:
    return isinstance(hint, type) and is_dataclass(hint)


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return list(f.default) if isinstance(f.default, tuple) else f.default
    raise ValueError(f'setting {f.name} has no default')
