"""How much of the map one episode explored: the evaluation's per-episode metrics (issue 12).

The primary metric is the number of distinct 64x64 cells the player stood in during a whole
episode, from the pose after every step (what the world publishes on world/pose at 10 Hz; a
step moves the player at most ~40 map units, less than a cell, so no cell is jumped over).
Cells are also given as a fraction of the map's floor cells (pamiq.doom.geometry), because a count
alone cannot say how much was left; sectors visited say how many rooms and corridors were
entered; and whether the episode ended at the goal. No torch, no ROS.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pamiq.doom.geometry import Cell, MapGeometry, cell_of


@dataclass(frozen=True)
class EpisodeMetrics:
    cells: int  # distinct 64x64 cells visited
    floor_fraction: float  # cells / the map's floor cells, in (0, 1]
    sectors: int  # distinct sectors (rooms, corridors) visited
    goal: bool  # the episode ended at the goal, before its timeout

    def as_dict(self) -> dict:
        return asdict(self)


def visited_cells(positions: np.ndarray) -> set[Cell]:
    """The distinct cells of (n, 2) x, y positions in map units."""
    return {cell_of(x, y) for x, y in np.asarray(positions, float).reshape(-1, 2)}


def visited_sectors(positions: np.ndarray, geometry: MapGeometry) -> set[int]:
    """The distinct sectors holding (n, 2) positions (a position in no sector is not counted)."""
    return {int(s) for s in geometry.sector_of(positions) if s >= 0}


def episode_metrics(positions: np.ndarray, goal: bool, geometry: MapGeometry) -> EpisodeMetrics:
    """The metrics of one episode from its (n, 2) positions, the spawn first.

    Raises:
        ValueError: No positions, or one outside every floor cell: then the map's geometry is
            not the map the episode was played on, and the fraction would be meaningless.
    """
    positions = np.asarray(positions, float).reshape(-1, 2)
    if not len(positions):
        raise ValueError('an episode has at least its spawn position')
    cells = visited_cells(positions)
    outside = cells - geometry.floor_cells
    if outside:
        raise ValueError(
            f'cells {sorted(outside)[:5]} were visited but are not floor cells of '
            f'{geometry.scenario}: the positions are not from this map'
        )
    return EpisodeMetrics(
        cells=len(cells),
        floor_fraction=len(cells) / len(geometry.floor_cells),
        sectors=len(visited_sectors(positions, geometry)),
        goal=bool(goal),
    )
