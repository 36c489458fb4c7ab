"""pamiq.ros.spin: the shared main() of every node, run in a real child process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

from rosgraph import wait_until

# A node whose clean-up never ends (a disk that stopped answering, a peer that never acks).
HANGING_NODE = textwrap.dedent(
    """
    import time
    from rclpy.node import Node
    from pamiq.ros import spin

    class Hanging(Node):
        def __init__(self):
            super().__init__('hanging')
            self.create_timer(0.1, lambda: print('spinning', flush=True))

        def shutdown(self):
            print('cleaning up', flush=True)
            wait_for_a_disk_that_never_answers()

    def wait_for_a_disk_that_never_answers():
        time.sleep(3600)

    raise SystemExit(spin.run(Hanging, []))
    """
)


def test_sigterm_ends_a_hanging_cleanup_and_says_where_it_hung():
    child = subprocess.Popen(
        [sys.executable, '-c', HANGING_NODE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == 'spinning'
        child.send_signal(signal.SIGINT)
        assert wait_until(lambda: 'cleaning up' in child.stdout.readline(), 10.0)
        child.send_signal(signal.SIGINT)  # a second Ctrl-C does not cut the clean-up short
        assert not wait_until(lambda: child.poll() is not None, 1.0)
        child.send_signal(signal.SIGTERM)
        assert child.wait(10.0) == 128 + signal.SIGTERM
        stacks = child.stderr.read()
        assert 'wait_for_a_disk_that_never_answers' in stacks, stacks
    finally:
        child.kill()
        child.wait()


FREEZING_NODE = textwrap.dedent(
    """
    import gc
    from rclpy.node import Node
    from pamiq.ros import spin

    class Counting(Node):
        def __init__(self):
            super().__init__('counting')
            self.create_timer(0.05, self.report)

        def report(self):
            print('frozen', gc.get_freeze_count(), flush=True)
            raise KeyboardInterrupt  # one report, then a clean stop

        def shutdown(self):
            pass

    raise SystemExit(spin.run(Counting, []))
    """
)


def test_a_node_spins_with_its_start_up_objects_out_of_garbage_collection():
    child = subprocess.run(
        [sys.executable, '-c', FREEZING_NODE], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    frozen = int(child.stdout.split('frozen')[1].split()[0])
    assert frozen > 10_000, child.stdout  # rclpy and the node: all of start-up's objects
