"""What another process has used of the machine, from Linux's /proc: to tell, when a call into
it was slow, whether it was computing (CPU time), waiting for something (voluntary context
switches) or waiting for a core (involuntary ones)."""

from __future__ import annotations

from dataclasses import dataclass
import glob
import os

CLOCK_TICKS = os.sysconf('SC_CLK_TCK') if hasattr(os, 'sysconf') else 100


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    voluntary_switches: int  # its main thread waited for something (a lock, a message, a disk)
    involuntary_switches: int  # its main thread was made to give its core to another

    def since(self, before: Usage) -> Usage:
        return Usage(
            self.cpu_seconds - before.cpu_seconds,
            self.voluntary_switches - before.voluntary_switches,
            self.involuntary_switches - before.involuntary_switches,
        )

    def describe(self) -> str:
        return (
            f'{1e3 * self.cpu_seconds:.0f} ms of CPU, {self.voluntary_switches} waits, '
            f'{self.involuntary_switches} preemptions'
        )


def usage(pid: int) -> Usage | None:
    """The process's CPU time so far (all its threads) and its main thread's context switches
    (Linux counts those per thread); None off Linux or once it has gone."""
    try:
        with open(f'/proc/{pid}/stat') as stream:
            # Fields after the command (which may hold spaces) start at the last ')'.
            fields = stream.read().rsplit(')', 1)[1].split()
        with open(f'/proc/{pid}/status') as stream:
            status = dict(line.split(':', 1) for line in stream if ':' in line)
    except OSError:
        return None
    user, system = int(fields[11]), int(fields[12])  # utime, stime: fields 14 and 15
    return Usage(
        (user + system) / CLOCK_TICKS,
        int(status['voluntary_ctxt_switches']),
        int(status['nonvoluntary_ctxt_switches']),
    )


def children_named(parent: int, name: bytes) -> list[int]:
    """Child processes of `parent` whose command line holds `name`, in pid order."""
    children: list[int] = []
    for task in glob.glob(f'/proc/{parent}/task/*/children'):  # any of its threads may fork
        try:
            with open(task) as stream:
                children += [int(pid) for pid in stream.read().split()]
        except OSError:  # the thread ended meanwhile
            continue
    found = []
    for pid in sorted(children):
        try:
            with open(f'/proc/{pid}/cmdline', 'rb') as stream:
                if name in stream.read():
                    found.append(pid)
        except OSError:
            continue
    return found
