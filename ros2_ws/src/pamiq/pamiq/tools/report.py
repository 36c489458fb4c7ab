"""`pamiq report <run_dir>`: PNG plots of a run, from its bags and TensorBoard scalars.

reward_and_losses.png: the curiosity reward and the training losses over time;
action_intervals.png: how regularly the agents acted; and for the Doom world trajectory.png (each
actor's path seen from above, with the map cells it covered) and coverage.png (cells covered
over time, per actor). With hearing, hearing.png (loudness and spectrogram of what was heard);
with the body sense, body.png (the avatar's velocities, turning and Grounded). Bags come from
`record:=true`; without them only the losses can be drawn.
"""

from __future__ import annotations

from collections.abc import Callable
import glob
import os

import matplotlib

matplotlib.use('Agg')  # files only: no display needed
import matplotlib.pyplot as plt
import numpy as np

from pamiq import run_dir as layout
from pamiq.media.audio import SAMPLE_RATE
from pamiq.ros import topics
from pamiq.ros.bags import deserialize, read_messages
from pamiq.ros.sense_messages import audio_chunk, body_input
from pamiq.run_dir import disk_use
from pamiq.vocabulary import MODEL_LOSSES
from pamiq.vrchat.avatar import BODY_FIELDS

CELL = 64.0  # map units per coverage cell (Doom's own grid)
MAX_CHUNKS = 6000  # the spectrogram shows the first 10 minutes of sound
LOSS_TOPICS = MODEL_LOSSES


def session_data(run_dir: str) -> dict[str, list]:
    """Time series from every bag of the run: (receive time s, value...) per quantity; actions
    and poses end with the actor's namespace."""
    data: dict[str, list] = {
        'reward': [],
        'action': [],
        'pose': [],
        'level': [],
        'sound': [],
        'body': [],
        **{t: [] for t in LOSS_TOPICS},
    }
    sessions = sorted(glob.glob(os.path.join(run_dir, layout.BAGS, '*')))
    for session in sessions:
        try:
            messages = list(read_messages([session]))
        except FileNotFoundError:
            continue  # an empty or unfinished session
        for message in messages:
            t = message.timestamp / 1e9
            topic = message.topic
            if topics.matches(topic, topics.REWARD):
                data['reward'].append((t, deserialize(message).data))
            elif topics.matches(topic, topics.ACTION):
                data['action'].append((t, topics.actor_of(topic, topics.ACTION)))
            elif topics.matches(topic, topics.POSE):
                pose = deserialize(message).pose.position
                data['pose'].append((t, pose.x, pose.y, topics.actor_of(topic, topics.POSE)))
            elif topics.matches(topic, topics.AUDIO_LEVEL):
                data['level'].append((t, deserialize(message).data))
            elif topics.matches(topic, topics.AUDIO_PCM) and len(data['sound']) < MAX_CHUNKS:
                try:
                    data['sound'].append((t, audio_chunk(deserialize(message))[1]))
                except ValueError:
                    continue
            elif topics.matches(topic, topics.BODY_STATE):
                try:
                    data['body'].append((t, *body_input(deserialize(message))))
                except ValueError:
                    continue
            else:
                for loss in LOSS_TOPICS:
                    if topics.matches(topic, topics.trainer_metric(loss)):
                        data[loss].append((t, deserialize(message).data))
    return data


def tensorboard_losses(run_dir: str) -> dict[str, list[tuple[float, float]]]:
    """(round, value) per loss from run_dir/tb, if TensorBoard is installed and wrote there."""
    directory = os.path.join(run_dir, layout.TENSORBOARD)
    if not os.path.isdir(directory):
        return {}
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return {}
    accumulator = EventAccumulator(directory)
    accumulator.Reload()
    tags = accumulator.Tags().get('scalars', [])
    return {
        tag: [(e.step, e.value) for e in accumulator.Scalars(tag)]
        for tag in tags
        if tag in LOSS_TOPICS
    }


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < window or window < 2:
        return values
    return np.convolve(values, np.ones(window) / window, mode='valid')


def plot_reward_and_losses(data, tb, start: float, path: str) -> bool:
    if not data['reward'] and not any(data[t] for t in LOSS_TOPICS) and not tb:
        return False
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=bool(data['reward']))
    if data['reward']:
        t, r = np.array(data['reward']).T
        top.plot((t - start) / 60, r, color='0.8', linewidth=0.5, label='per step')
        window = min(50, len(r))  # a short run: one mean over all of it
        top.plot((t[window - 1 :] - start) / 60, smooth(r, window), label=f'mean of {window}')
        top.legend()
    else:
        top.text(
            0.5,
            0.5,
            'no agent/reward recorded (run with record:=true)',
            ha='center',
            transform=top.transAxes,
        )
    top.set_title('Curiosity reward r_t (forward-model error in embedding space)')
    top.set_ylabel('reward')
    for topic in LOSS_TOPICS:
        if data[topic]:
            t, v = np.array(data[topic]).T
            bottom.plot((t - start) / 60, v, marker='.', label=topic)
            bottom.set_xlabel('time since the run started (min)')
        elif topic in tb:
            rounds, v = np.array(tb[topic]).T
            bottom.plot(rounds, v, marker='.', label=topic)
            bottom.set_xlabel('training round')
    bottom.set_yscale('symlog', linthresh=1e-3)  # PPO's loss goes negative
    bottom.set_ylabel('loss (symmetric log scale)')
    bottom.set_title('Training losses, one point per round')
    if bottom.get_legend_handles_labels()[0]:
        bottom.legend()
    top.set_xlabel('time since the run started (min)')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def by_actor(rows: list[tuple]) -> dict[str, list[tuple]]:
    """Rows whose last item is the actor's namespace, grouped by it (in time order)."""
    groups: dict[str, list[tuple]] = {}
    for row in rows:
        groups.setdefault(row[-1], []).append(row[:-1])
    return dict(sorted(groups.items()))


def plot_action_intervals(data, path: str) -> bool:
    actors = by_actor(data['action'])
    intervals = (
        np.concatenate(
            [np.diff(np.array(rows, float)[:, 0]) for rows in actors.values() if len(rows) > 1]
            or [np.empty(0)]
        )
        * 1e3
    )
    if len(intervals) < 2:
        return False
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.hist(np.clip(intervals, 0, 400), bins=80, color='tab:blue')
    axis.axvline(100, color='tab:green', linestyle='--', label='10 Hz period (100 ms)')
    axis.axvline(250, color='tab:red', linestyle=':', label='250 ms gap limit')
    axis.set_yscale('log')
    axis.set_xlabel('interval between two actions (ms, recorder receive time; >400 shown at 400)')
    axis.set_ylabel('count (log scale)')
    rate = len(intervals) / (intervals.sum() / 1e3)
    who = f'{len(actors)} actors, ' if len(actors) > 1 else ''
    axis.set_title(
        f'Action intervals: {who}{rate:.2f} Hz per actor, p99 '
        f'{np.percentile(intervals, 99):.0f} ms, max {intervals.max():.0f} ms'
    )
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def plot_trajectory(data, start: float, path: str, coverage_path: str) -> bool:
    actors = {a: np.array(rows, float) for a, rows in by_actor(data['pose']).items()}
    actors = {a: rows for a, rows in actors.items() if len(rows) >= 2}
    if not actors:
        return False
    columns = min(len(actors), 3)
    rows_of_panels = -(-len(actors) // columns)
    figure, axes = plt.subplots(
        rows_of_panels, columns, figsize=(8 * columns, 8 * rows_of_panels), squeeze=False
    )
    coverage = {}
    for axis, (actor, poses) in zip(axes.flat, actors.items()):
        t, x, y = poses.T
        cells = np.floor(np.stack([x, y], axis=1) / CELL).astype(int)
        unique = np.unique(cells, axis=0)
        for cx, cy in unique:
            axis.add_patch(
                plt.Rectangle(
                    (cx * CELL, cy * CELL), CELL, CELL, color='tab:orange', alpha=0.25, linewidth=0
                )
            )
        points = axis.scatter(x, y, c=(t - start) / 60, s=2, cmap='viridis')
        figure.colorbar(points, ax=axis, label='time since the run started (min)')
        axis.set_aspect('equal')
        axis.set_xlabel('x (Doom map units)')
        axis.set_ylabel('y (Doom map units)')
        axis.set_title(
            f'{actor}: path from world/pose; {len(unique)} cells of {CELL:.0f}x{CELL:.0f} '
            'covered (orange)'
        )
        seen: set[tuple[int, int]] = set()
        counts = []
        for cell in map(tuple, cells):
            seen.add(cell)
            counts.append(len(seen))
        coverage[actor] = ((t - start) / 60, counts)
    for axis in list(axes.flat)[len(actors) :]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(8, 5))
    for actor, (minutes, counts) in coverage.items():
        axis.plot(minutes, counts, label=actor)
    axis.set_xlabel('time since the run started (min)')
    axis.set_ylabel(f'distinct {CELL:.0f}x{CELL:.0f} cells visited')
    axis.set_title('Map coverage over time (all episodes, per actor)')
    axis.legend()
    figure.tight_layout()
    figure.savefig(coverage_path, dpi=100)
    plt.close(figure)
    return True


def plot_hearing(data, start: float, path: str) -> bool:
    if not data['level'] and not data['sound']:
        return False
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7))
    if data['level']:
        t, level = np.array(data['level']).T
        top.plot((t - start) / 60, level, linewidth=0.6)
    top.set_ylabel('loudness (dBFS, per 100 ms)')
    top.set_xlabel('time since the run started (min)')
    top.set_title('What the agent heard: loudness of audio/level')
    if data['sound']:
        mono = np.concatenate([pcm.mean(axis=1) for _, pcm in data['sound']]) / 32768.0
        bottom.specgram(mono, NFFT=512, Fs=SAMPLE_RATE, noverlap=256, cmap='magma')
        bottom.set_xlabel(f'seconds of sound recorded (the first {len(mono) / SAMPLE_RATE:.0f} s)')
    bottom.set_ylabel('frequency (Hz)')
    bottom.set_title('Spectrogram of audio/pcm (both ears mixed)')
    return save(figure, path)


def plot_body(data, start: float, path: str) -> bool:
    if len(data['body']) < 2:
        return False
    rows = np.array(data['body'])
    minutes = (rows[:, 0] - start) / 60
    column = {name: rows[:, 1 + i] for i, name in enumerate(BODY_FIELDS)}
    figure, axes = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for name in ('VelocityX', 'VelocityY', 'VelocityZ'):
        axes[0].plot(minutes, column[name], linewidth=0.7, label=name)
    axes[0].set_ylabel('m/s (avatar frame)')
    axes[0].legend(loc='upper right')
    axes[0].set_title('The body sense: body/state')
    axes[1].plot(minutes, column['AngularY'], linewidth=0.7, color='tab:purple')
    axes[1].set_ylabel('AngularY (deg/s)')
    for name in ('Grounded', 'Upright', 'Seated', 'AFK'):
        axes[2].plot(minutes, column[name], linewidth=0.9, label=name)
    axes[2].set_ylabel('0/1')
    axes[2].legend(loc='upper right')
    axes[2].set_xlabel('time since the run started (min)')
    return save(figure, path)


def save(figure, path: str) -> bool:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def where_it_writes(run_dir: str) -> list[str]:
    """What the run keeps on disk, and where: checkpoints, bags, TensorBoard, logs, report."""
    lines = [f'run directory {os.path.abspath(run_dir)}:']
    for sub, what in layout.CONTENTS.items():
        path = os.path.join(run_dir, sub)
        if os.path.isdir(path):
            lines.append(f'  {sub + "/":<13} {disk_use(path) / 1e6:8.1f} MB  {what}')
    return lines


def write_report(
    run_dir: str, output: str | None = None, say: Callable[[str], None] = print
) -> list[str]:
    """Write the plots the run's data allows; returns their paths (raises if there are none)."""
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f'{run_dir} is not a run directory')
    output = output or os.path.join(run_dir, layout.REPORT)
    os.makedirs(output, exist_ok=True)
    for line in where_it_writes(run_dir):
        say(line)
    data = session_data(run_dir)
    tb = tensorboard_losses(run_dir)
    times = [series[0][0] for series in data.values() if series]  # each in time order
    start = min(times) if times else 0.0
    written = []
    plots = [
        ('reward_and_losses.png', lambda p: plot_reward_and_losses(data, tb, start, p)),
        ('action_intervals.png', lambda p: plot_action_intervals(data, p)),
        (
            'trajectory.png',
            lambda p: plot_trajectory(data, start, p, os.path.join(output, 'coverage.png')),
        ),
        ('hearing.png', lambda p: plot_hearing(data, start, p)),
        ('body.png', lambda p: plot_body(data, start, p)),
    ]
    for name, plot in plots:
        path = os.path.join(output, name)
        if plot(path):
            written.append(path)
            if name == 'trajectory.png':
                written.append(os.path.join(output, 'coverage.png'))
        elif name not in ('hearing.png', 'body.png'):  # only runs with those senses have them
            say(f'{name}: no data for it in {run_dir} (record the run with record:=true)')
    if not written:
        raise FileNotFoundError(f'{run_dir} has neither bags nor TensorBoard scalars to plot')
    return written
