"""The layout of a run directory: what lives where, how sessions are named, how big it is.

Every part that writes into a run directory takes its sub-path from here, so `pamiq report`
can say what is where and a later session finds it again.
"""

from __future__ import annotations

import datetime
import os

CHECKPOINTS = 'checkpoints'  # trainer checkpoints (pamiq.storage.checkpoint)
BAGS = 'bags'  # rosbag2 sessions of the recorder, one folder per session
TENSORBOARD = 'tb'  # the trainer's TensorBoard scalars
LOGS = 'logs'  # node logs under `pamiq up`'s supervisor
PARAMS = 'params'  # parameter overrides the supervisor passed to the nodes
DDS = 'dds'  # Fast DDS profiles of a transport across hosts (pamiq.ros.transport)
REPORT = 'report'  # `pamiq report`'s plots

# What each holds, as `pamiq report` lists it.
CONTENTS = {
    CHECKPOINTS: 'trainer checkpoints (safetensors + JSON manifest)',
    BAGS: 'rosbag2 sessions (record:=true)',
    TENSORBOARD: 'TensorBoard scalars',
    LOGS: "node logs (pamiq up's supervisor)",
    PARAMS: 'parameter overrides the supervisor passed',
    DDS: 'Fast DDS profiles and settings of a transport across hosts',
    REPORT: "pamiq report's plots",
}
RUNS = 'runs'  # where run directories go by default, relative to the working directory
TIMESTAMP = '%Y-%m-%d_%H-%M-%S'


def timestamp() -> str:
    """Now, as run directories and bag sessions are named (sorts in time order)."""
    return datetime.datetime.now().strftime(TIMESTAMP)


def default_run_dir() -> str:
    return os.path.join(RUNS, timestamp())


def disk_use(path: str) -> int:
    """Bytes of every file below `path` (files replaced meanwhile are skipped)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass  # a file that a node just replaced
    return total
