from pamiq.ros.queue_wait import QueueWait


class Clocks:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def wall_ns(self) -> int:
        return int(self.t * 1e9)


def info(received: float) -> dict:
    return {'received_timestamp': int(received * 1e9)}


def test_a_source_whose_messages_waited_is_behind_until_its_queue_is_empty():
    clocks = Clocks()
    wait = QueueWait(0.25, clocks.now, clocks.wall_ns)
    wait.taken('actor0', info(clocks.t - 0.01))
    assert not wait.behind()
    wait.taken('actor1', info(clocks.t - 1.5))  # it arrived 1.5 s before we took it
    assert wait.behind() and wait.longest == 1.5
    clocks.t += 0.1
    wait.taken('actor1', info(clocks.t - 0.02))  # caught up
    assert not wait.behind()


def test_a_source_that_went_quiet_after_a_long_wait_is_caught_up():
    clocks = Clocks()
    wait = QueueWait(0.25, clocks.now, clocks.wall_ns)
    wait.taken('actor0', info(clocks.t - 2.0))
    clocks.t += 0.3  # nothing more to take: its queue is empty
    assert not wait.behind()


def test_a_middleware_that_gives_no_reception_time_is_never_behind():
    wait = QueueWait(0.25)
    wait.taken('actor0', {'received_timestamp': 0})
    wait.taken('actor0', {})
    assert not wait.behind() and wait.longest == 0.0
