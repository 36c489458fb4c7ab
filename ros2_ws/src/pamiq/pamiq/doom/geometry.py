"""The floor plan of a ViZDoom map: its sectors, which sector holds a point, the cells it covers.

Exploration is measured in 64x64 map cells (Doom's own block grid) and in sectors (Doom's
rooms and corridors). A count of cells means little without the number there are to visit, so
the map's floor cells are computed once per scenario from the sectors ViZDoom reports: every
64x64 cell whose area intersects the floor of an open sector. No ROS, no torch: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
import math

import numpy as np

from pamiq.doom.game import make_game

CELL = 64.0  # map units per cell side (the blockmap's 128 is coarser than a corridor is wide)

Cell = tuple[int, int]


def cell_of(x: float, y: float) -> Cell:
    """The cell holding a point: cell (i, j) spans [64 i, 64 (i + 1)) x [64 j, 64 (j + 1))."""
    return math.floor(x / CELL), math.floor(y / CELL)


@dataclass(frozen=True)
class Sector:
    """One sector: a region of floor bounded by its lines (one loop or several, holes too)."""

    index: int
    segments: np.ndarray  # (n, 4) float: x1, y1, x2, y2 of each of its lines
    floor_height: float
    ceiling_height: float

    @property
    def is_open(self) -> bool:
        """Whether the player can be in it: a closed door or lift has its ceiling on its floor."""
        return self.ceiling_height > self.floor_height

    def contains(self, points: np.ndarray) -> np.ndarray:
        """(n,) bool: which of the (n, 2) points lie inside, by the even-odd rule.

        A horizontal ray from each point crosses the sector's lines an odd number of times
        exactly when the point is inside; holes and several loops need no special case.
        """
        x, y = points[:, 0:1], points[:, 1:2]  # (n, 1) against (m,) segments
        x1, y1, x2, y2 = self.segments.T
        straddles = (y1 > y) != (y2 > y)
        with np.errstate(divide='ignore', invalid='ignore'):
            crossing_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        crossings = straddles & (x < crossing_x)
        return np.count_nonzero(crossings, axis=1) % 2 == 1

    def cells(self) -> set[Cell]:
        """The cells whose open area meets this sector's floor.

        A cell meets the sector when its centre is inside (the sector covers it) or a line of
        the sector passes through the cell's interior; a wall lying on a grid line touches the
        cells on both sides without adding either.
        """
        xs, ys = self.segments[:, 0::2], self.segments[:, 1::2]
        low_i, high_i = math.floor(xs.min() / CELL), math.floor(xs.max() / CELL)
        low_j, high_j = math.floor(ys.min() / CELL), math.floor(ys.max() / CELL)
        candidates = [(i, j) for i in range(low_i, high_i + 1) for j in range(low_j, high_j + 1)]
        centres = (np.array(candidates, float) + 0.5) * CELL
        covered = self.contains(centres)
        found = set()
        for cell, inside in zip(candidates, covered):
            if inside or any(segment_enters_cell(segment, cell) for segment in self.segments):
                found.add(cell)
        return found


def segment_enters_cell(segment: np.ndarray, cell: Cell) -> bool:
    """Whether a segment passes through the open interior of a cell (Liang-Barsky clipping).

    Touching the border only (along a grid line, or through a corner) does not count.
    """
    x1, y1, x2, y2 = (float(v) for v in segment)
    left, bottom = cell[0] * CELL, cell[1] * CELL
    dx, dy = x2 - x1, y2 - y1
    t_enter, t_leave = 0.0, 1.0
    sides = (
        (-dx, x1 - left),
        (dx, left + CELL - x1),
        (-dy, y1 - bottom),
        (dy, bottom + CELL - y1),
    )
    for p, q in sides:
        if p == 0.0:
            if q <= 0.0:  # parallel to this side, on it or outside
                return False
            continue
        t = q / p
        if p < 0.0:
            t_enter = max(t_enter, t)
        else:
            t_leave = min(t_leave, t)
    return t_enter < t_leave


@dataclass(frozen=True)
class MapGeometry:
    """A scenario's sectors and the things lying about at the start (a goal, items)."""

    scenario: str
    sectors: tuple[Sector, ...]
    things: tuple[tuple[str, float, float], ...]  # (name, x, y), the player excepted

    def sector_of(self, points: np.ndarray) -> np.ndarray:
        """(n,) int: the index of the sector holding each of the (n, 2) points, -1 for none."""
        points = np.asarray(points, float).reshape(-1, 2)
        found = np.full(len(points), -1)
        for sector in self.sectors:
            unassigned = found < 0
            if not unassigned.any():
                break
            inside = sector.contains(points[unassigned])
            found[np.flatnonzero(unassigned)[inside]] = sector.index
        return found

    @cached_property
    def floor_cells(self) -> frozenset[Cell]:
        """Every cell whose area intersects the floor of an open sector: the cells to visit."""
        cells: set[Cell] = set()
        for sector in self.sectors:
            if sector.is_open:
                cells |= sector.cells()
        return frozenset(cells)

    @property
    def open_sectors(self) -> int:
        return sum(sector.is_open for sector in self.sectors)


def geometry_from_state(scenario: str, state) -> MapGeometry:
    """The geometry in a ViZDoom state of a game made with `map_info` (game.make_game)."""
    if state is None or state.sectors is None:
        raise ValueError('the state has no sectors: make the game with map_info=True')
    sectors = tuple(
        Sector(
            index,
            np.array([(line.x1, line.y1, line.x2, line.y2) for line in sector.lines], float),
            float(sector.floor_height),
            float(sector.ceiling_height),
        )
        for index, sector in enumerate(state.sectors)
    )
    things = tuple(
        (thing.name, float(thing.position_x), float(thing.position_y))
        for thing in state.objects or ()
        if thing.name != 'DoomPlayer'
    )
    return MapGeometry(scenario, sectors, things)


def read_map(scenario: str, engine_dir: str) -> MapGeometry:
    """Start the scenario once, read its geometry, close it."""
    game = make_game(scenario, '160x120', 0, engine_dir, map_info=True)
    try:
        return geometry_from_state(scenario, game.get_state())
    finally:
        game.close()
