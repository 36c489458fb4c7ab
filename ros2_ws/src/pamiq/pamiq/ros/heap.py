"""Large message buffers in memory touched once at start-up, not page by page while acting.

Taking a 29 MB weights message copies it twice on the executor thread with the GIL held
(deserialisation, then the Python array). glibc gives the first blocks that large fresh pages
(a new `mmap` each, until its threshold adapts), so those copies also fault in ~7,000 pages each:
25-100 ms per copy on a VM whose memory is backed lazily, seen as 250-700 ms without an action
when the trainer's first two weights messages arrived while the machine was busy starting it.
The remedy is the real-time recipe of ros2/demos' pendulum_control: large blocks come from the
heap (no `mmap`), freed memory stays in the process (no trimming), and the heap is touched once
at start-up so later blocks reuse warm pages. The price is memory the process keeps after its
peak, a few message sizes.
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def reserve_heap(nbytes: int) -> bool:
    """Make later large allocations reuse `nbytes` of heap touched now; False where the C
    library is not glibc (nothing changed: large blocks keep their own mappings)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    if not mallopt(M_MMAP_MAX, 0) or not mallopt(M_TRIM_THRESHOLD, -1):
        return False
    # Written, not only allocated: calloc'd or untouched pages would still fault later.
    block = b'\xff' * nbytes
    del block
    return True
