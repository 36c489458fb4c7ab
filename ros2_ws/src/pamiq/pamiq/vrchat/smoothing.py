"""Smoothing of VRChat input for natural movement (off by default). No ROS here.

An agent deciding at 10 Hz moves in steps: axes jump between values, buttons flicker. The
actuator can soften both, as a person's hand would: `AxisLag` lets each axis follow its command
through a first-order lag (time constant tau: 63 % of a step in tau seconds), and `ButtonHold`
keeps each button pressed, or released, for at least `min_hold` seconds. Neutral and reset
values bypass both (pamiq.nodes.osc_actuator_node): stopping is never smoothed.
"""

from __future__ import annotations

import math


class AxisLag:
    """y <- y + (x - y)(1 - exp(-dt / tau)) per axis, advanced by the caller's clock."""

    def __init__(self, tau: float) -> None:
        self.tau = tau
        self.values: dict[str, float] = {}
        self.targets: dict[str, float] = {}
        self.updated: dict[str, float] = {}

    def command(self, name: str, target: float, now: float) -> float:
        """A new command for an axis; returns the value to send now."""
        self.advance_one(name, now)
        self.targets[name] = target
        return self.values.setdefault(name, 0.0)

    def advance_one(self, name: str, now: float) -> float:
        if name in self.values and self.tau > 0:
            dt = max(0.0, now - self.updated.get(name, now))
            gain = 1.0 - math.exp(-dt / self.tau)
            self.values[name] += (self.targets[name] - self.values[name]) * gain
        elif name in self.targets:
            self.values[name] = self.targets[name]
        self.updated[name] = now
        return self.values.get(name, 0.0)

    def advance(self, now: float) -> dict[str, float]:
        """Every axis's value now."""
        return {name: self.advance_one(name, now) for name in list(self.targets)}

    def reset(self, values: dict[str, float]) -> None:
        """Jump to these values (neutral): no lag on the way to a stop. Only the axes it smooths:
        an axis it never had would come back from `advance` after every unsmoothed command."""
        for name, value in values.items():
            if name in self.targets:
                self.values[name] = self.targets[name] = value


class ButtonHold:
    """Each button keeps its state for at least `min_hold` seconds before it changes again."""

    def __init__(self, min_hold: float) -> None:
        self.min_hold = min_hold
        self.state: dict[str, int] = {}
        self.wanted: dict[str, int] = {}
        self.changed_at: dict[str, float] = {}

    def command(self, name: str, value: int, now: float) -> int | None:
        """A new command; returns the value to send now, or None while the button must hold."""
        self.wanted[name] = value
        return self.release(name, now)

    def release(self, name: str, now: float) -> int | None:
        wanted = self.wanted[name]
        if self.state.get(name) == wanted:
            return None
        if name in self.changed_at and now - self.changed_at[name] < self.min_hold:
            return None
        self.state[name], self.changed_at[name] = wanted, now
        return wanted

    def due(self, now: float) -> dict[str, int]:
        """Changes held back until now that may go out."""
        changes = {name: self.release(name, now) for name in list(self.wanted)}
        return {name: value for name, value in changes.items() if value is not None}

    def reset(self, values: dict[str, int]) -> None:
        for name, value in values.items():
            self.state[name] = self.wanted[name] = value
