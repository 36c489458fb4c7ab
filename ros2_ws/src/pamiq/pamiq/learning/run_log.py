"""What a `pamiq train` run writes as it goes: the episode log, TensorBoard scalars and the
progress line. The episode log (OUT/episodes.jsonl, one JSON line per finished episode) is the
learning curve's data; on resume it is cut back to the episodes the checkpoint knew, since the
replayed run records the rest again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
import json
import math
import os

import numpy as np

from pamiq.doom.training_worlds import EpisodeRecord

EPISODES = 'episodes.jsonl'
TENSORBOARD = 'tensorboard'


def duration(seconds: float) -> str:
    """'1 h 02 min' or '42 s': progress lines for runs of seconds to days."""
    if not math.isfinite(seconds):
        return '?'
    if seconds < 60:
        return f'{seconds:.0f} s'
    minutes = round(seconds / 60)
    return f'{minutes // 60} h {minutes % 60:02d} min' if minutes >= 60 else f'{minutes} min'


class RunLog:
    def __init__(self, run_dir: str, say: Callable[[str], None]) -> None:
        self.run_dir, self.say = run_dir, say
        self.episodes: list[EpisodeRecord] = []
        self.writer = None  # TensorBoard's, opened with the first scalar

    def add_episodes(self, ended: list[EpisodeRecord]) -> None:
        if not ended:
            return
        self.episodes.extend(ended)
        with open(os.path.join(self.run_dir, EPISODES), 'a') as stream:
            for record in ended:
                stream.write(json.dumps(asdict(record)) + '\n')
        for record in ended:
            self.scalar('episode/cells', record.cells, record.ended_at)
            self.scalar('episode/goal', float(record.goal), record.ended_at)

    def resume(self, count: int) -> None:
        """Keep the first `count` episodes of the log (those the checkpoint knew)."""
        path = os.path.join(self.run_dir, EPISODES)
        if os.path.exists(path):
            with open(path) as stream:
                records = [EpisodeRecord(**json.loads(line)) for line in stream if line.strip()]
        else:
            records = []
        self.episodes = records[:count]
        with open(path + '.tmp', 'w') as stream:
            for record in self.episodes:
                stream.write(json.dumps(asdict(record)) + '\n')
        os.replace(path + '.tmp', path)

    def scalar(self, name: str, value: float, step: int) -> None:
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(os.path.join(self.run_dir, TENSORBOARD))
        self.writer.add_scalar(name, value, step)

    def scalars(self, values: dict[str, float], step: int) -> None:
        for name, value in values.items():
            if math.isfinite(value):
                self.scalar(name, value, step)

    def recent_cells(self, count: int = 100) -> float:
        cells = [e.cells for e in self.episodes[-count:]]
        return float(np.mean(cells)) if cells else float('nan')

    def progress(self, steps: int, total: int, rate: float) -> None:
        """The progress line: a bar, steps, steps/s, episodes, recent cells, ETA."""
        self.scalar('speed/steps_per_second', rate, steps)
        left = max(0, total - steps) / rate if rate > 0 else float('nan')
        done = min(1.0, steps / total)
        bar = '#' * round(20 * done) + '.' * (20 - round(20 * done))
        self.say(
            f'[{bar}] {steps}/{total} steps | {rate:.0f} steps/s | '
            f'{len(self.episodes)} episodes | {self.recent_cells():.1f} cells/episode '
            f'(last 100) | ETA {duration(left)}'
        )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
