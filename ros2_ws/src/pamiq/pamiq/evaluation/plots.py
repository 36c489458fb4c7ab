"""The pictures of `pamiq eval`: coverage per method with intervals, and a few episodes' paths.

coverage.png: cells and sectors per episode, each episode a faint dot, the mean with its
bootstrap 95 % interval as a bar, one column per method, so a difference is judged against the
spread. trajectories.png: the first episodes of each method (same seeds, so the same spawns,
down a column) over the map's floor cells, the visited cells shaded, the goal marked.
"""

from __future__ import annotations

import matplotlib

matplotlib.use('Agg')  # files only: no display needed
from matplotlib.patches import Rectangle
import matplotlib.pyplot as plt
import numpy as np

from pamiq.doom.geometry import CELL, MapGeometry, cell_of


def plot_coverage(results: dict, path: str) -> None:
    methods = results['methods']
    names = list(methods)
    figure, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * len(names), 4.5))
    rng = np.random.default_rng(0)  # the dots' horizontal jitter only
    for axis, key, label, total, total_label in (
        (
            axes[0],
            'cells',
            f'distinct {CELL:.0f}x{CELL:.0f} cells per episode',
            results['floor_cells'],
            'floor cells of the map',
        ),
        (
            axes[1],
            'sectors',
            'sectors (rooms, corridors) per episode',
            results['sectors'],
            'sectors of the map',
        ),
    ):
        for index, name in enumerate(names):
            values = [episode[key] for episode in methods[name]['episodes']]
            jitter = rng.uniform(-0.15, 0.15, len(values))
            axis.plot(index + jitter, values, '.', color='0.75', zorder=1)
            estimate = methods[name]['summary'][key]
            axis.errorbar(
                index,
                estimate['value'],
                yerr=[
                    [estimate['value'] - estimate['low']],
                    [estimate['high'] - estimate['value']],
                ],
                fmt='o',
                color=f'C{index}',
                capsize=6,
                markersize=8,
                zorder=2,
            )
        # The whole map is the ceiling: a short bar far below it has explored little.
        axis.axhline(total, color='0.4', linestyle='--', linewidth=1)
        axis.text(-0.5, total, total_label, va='bottom', fontsize=8)
        axis.set_ylim(0, 1.1 * max(total, axis.get_ylim()[1]))
        axis.set_xticks(range(len(names)), names, rotation=15)
        axis.set_xlim(-0.6, len(names) - 0.4)
        axis.set_ylabel(label)
        axis.grid(axis='y', alpha=0.3)
    episodes = len(results['seeds'])
    figure.suptitle(
        f'{results["scenario"]}: {episodes} episodes per method, the same spawns; '
        'mean and bootstrap 95 % interval'
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def plot_trajectories(results: dict, geometry: MapGeometry, path: str) -> None:
    methods = results['methods']
    columns = max(len(m['trajectories']) for m in methods.values())
    figure, axes = plt.subplots(
        len(methods), columns, figsize=(3.2 * columns, 3.0 * len(methods)), squeeze=False
    )
    for row, (name, method) in enumerate(methods.items()):
        for column in range(columns):
            axis = axes[row][column]
            axis.set_aspect('equal')
            axis.set_xticks([])
            axis.set_yticks([])
            if column >= len(method['trajectories']):
                axis.axis('off')
                continue
            positions = np.array(method['trajectories'][column])
            episode = method['episodes'][column]
            draw_map(axis, geometry, {cell_of(x, y) for x, y in positions}, f'C{row}')
            axis.plot(positions[:, 0], positions[:, 1], color=f'C{row}', linewidth=0.8)
            axis.plot(*positions[0], 'o', color='black', markersize=5)
            goal = ', goal' if episode['goal'] else ''
            axis.set_title(
                f'{name}, seed {episode["seed"]}\n{episode["cells"]} cells{goal}', fontsize=9
            )
    figure.suptitle('Paths (spawn: black dot, goal: star); shaded: the cells visited')
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def draw_map(axis, geometry: MapGeometry, visited: set, color: str) -> None:
    """The floor cells (visited ones shaded), the sectors' lines and the things on the map."""
    for i, j in geometry.floor_cells:
        shade = {'facecolor': color, 'alpha': 0.35} if (i, j) in visited else {'facecolor': '0.92'}
        axis.add_patch(Rectangle((i * CELL, j * CELL), CELL, CELL, edgecolor='white', **shade))
    for sector in geometry.sectors:
        for x1, y1, x2, y2 in sector.segments:
            axis.plot([x1, x2], [y1, y2], color='0.3', linewidth=0.5)
    for _, x, y in geometry.things:
        axis.plot(x, y, '*', color='gold', markeredgecolor='black', markersize=10)
    axis.autoscale_view()
