"""Two concurrent updates share the cores; the one left running takes both shares."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import threading

from pamiq.learning.shared_cores import SharedCores
import pytest
import torch


@pytest.fixture
def restore_threads():
    """run() leaves this thread on its share: the rest of the session keeps its own count."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_the_update_left_running_widens_at_its_next_minibatch_and_narrows_after(restore_threads):
    cores = SharedCores(1)
    short_done = threading.Event()
    seen = []

    def long_update(check) -> str:
        check()
        seen.append(torch.get_num_threads())  # both running: its own share
        assert short_done.wait(10.0)
        check()  # the next minibatch boundary
        seen.append(torch.get_num_threads())
        return 'long'

    with ThreadPoolExecutor(1) as worker:
        running = worker.submit(cores.run, long_update, lambda: False)
        assert cores.run(lambda check: check() or 'short', lambda: False) == 'short'
        short_done.set()
        assert running.result(10.0) == 'long'
        after = worker.submit(torch.get_num_threads).result(10.0)
    assert seen == [1, 2]
    assert after == 1  # the worker's next update starts on its share again


def test_should_stop_still_reaches_the_update():
    stops = iter([False, True])
    calls = []

    def update(check) -> int:
        while not check():
            calls.append(1)
        return len(calls)

    assert SharedCores(1).run(update, lambda: next(stops)) == 1
