"""The storage layer's error, without torch: a random agent reports it without loading torch."""

from __future__ import annotations


class WeightsError(ValueError):
    """A weights blob was rejected; the message says precisely why."""
