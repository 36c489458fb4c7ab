"""Keeping a child engine (ViZDoom's, which it forks and execs itself) from outliving or
holding on to its parent process.

Two things go wrong with a plain fork from inside a library:

- The child inherits every descriptor not marked close-on-exec. rcl and Fast DDS mark none, so
  the engine held the node's DDS sockets, the locks of its shared-memory ports and its log file,
  and a world killed with SIGKILL left them open in its orphaned engine. `hide_descriptors` marks
  them all before the fork.
- A parent killed with SIGKILL cannot stop its child, and an orphaned engine idles forever
  with its ~10 MB of /dev/shm. `EngineGuard` is a tiny `sh` that waits for the parent's end
  (the end of a pipe only the parent holds) and then kills the engine and removes its files.
  It ignores SIGINT and SIGTERM: a Ctrl-C or a launch's escalation reaches the whole group
  first and the parent's SIGKILL later.
"""

from __future__ import annotations

import contextlib
import os
import subprocess

# $1: the engine's pid; $2: a word of its command line that no other process's holds (so a
# reused pid is never killed); then the files to remove.
GUARD_SCRIPT = """
trap '' INT TERM HUP
read _ignored
if grep -qa -- "$2" "/proc/$1/cmdline" 2>/dev/null; then kill -KILL "$1"; fi
shift 2
rm -f -- "$@"
"""


def hide_descriptors() -> None:
    """Mark every open descriptor above stderr close-on-exec: a child this process execs next
    gets none of them. (This process itself keeps using them as before.)"""
    try:
        names = os.listdir('/proc/self/fd')
    except OSError:  # no /proc (not Linux): nothing to do it with
        return
    for name in names:
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
                os.set_inheritable(fd, False)


class EngineGuard:
    """Kills `pid` and removes `files` once this process has ended without `release`."""

    def __init__(self, pid: int, marker: str, files: list[str]) -> None:
        read_end, self.write_end = os.pipe()  # both non-inheritable (PEP 446)
        try:
            self.process = subprocess.Popen(
                ['/bin/sh', '-c', GUARD_SCRIPT, 'pamiq-engine-guard', str(pid), marker, *files],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(read_end)

    def release(self) -> None:
        """The engine has been closed properly: the guard goes without touching anything."""
        if self.write_end < 0:
            return
        self.process.kill()
        self.process.wait()
        os.close(self.write_end)
        self.write_end = -1
