"""pamiq.ros.heap: large blocks allocated after the reservation land in pages touched already."""

from __future__ import annotations

import subprocess
import sys

# Run in a fresh interpreter: the reservation changes malloc for the rest of the process.
PROBE = """
import resource, sys
from pamiq.ros.heap import reserve_heap
size = 30_000_000
if sys.argv[1] == 'reserve':
    assert reserve_heap(3 * size)
source = b'x' * size
faults = []
for _ in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = bytearray(source)  # a copy, as a message take makes
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del block
print(max(faults[1:]) if sys.argv[1] == 'plain' else max(faults))
"""


def faults_per_copy(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, '-c', PROBE, mode], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


def test_copies_after_the_reservation_fault_in_no_new_pages():
    pages = 30_000_000 // 4096
    # Without it glibc gives the first blocks that large fresh pages (the start-up pair of
    # weights messages) and only then keeps freed ones: those copies fault in every page.
    assert faults_per_copy('plain') > pages // 2
    assert faults_per_copy('reserve') < pages // 20
