"""Lower the CPU priority of a whole process, every thread included.

On Linux niceness belongs to each thread: `os.nice()` in a node's constructor leaves the threads
that rclpy and Fast DDS started before it (reception, and the asynchronous writer that fragments
and sends a 29 MB weights blob) at the old priority, where they competed with acting at every
weights publication. Threads started afterwards inherit the priority of the thread starting them.
"""

from __future__ import annotations

import os
import threading

TASKS = '/proc/self/task'
LOWEST = 19


def lower_thread_priority(increment: int) -> int:
    """Raise the calling thread's niceness by `increment` (capped at 19); the new niceness.

    Threads it starts afterwards inherit it. Off Linux this lowers the whole process.
    """
    tid = threading.get_native_id() if os.path.isdir(TASKS) else 0
    target = min(LOWEST, os.getpriority(os.PRIO_PROCESS, tid) + increment)
    os.setpriority(os.PRIO_PROCESS, tid, target)
    return target


def lower_process_priority(increment: int) -> int:
    """Raise the niceness of every thread of this process by `increment` (capped at 19).

    Returns the niceness now in force for the calling thread.
    """
    target = min(LOWEST, os.getpriority(os.PRIO_PROCESS, 0) + increment)
    if not os.path.isdir(TASKS):  # not Linux: niceness is per process
        os.setpriority(os.PRIO_PROCESS, 0, target)
        return target
    for name in os.listdir(TASKS):
        tid = int(name)
        try:
            if os.getpriority(os.PRIO_PROCESS, tid) < target:
                os.setpriority(os.PRIO_PROCESS, tid, target)
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return target
