from pamiq.learning.learner import PENDING_ROLLOUTS, pending_full, rollouts_ready


def test_pending_is_full_once_an_actor_keeps_as_many_rollouts_as_it_may():
    assert not pending_full([[1], [1] * (PENDING_ROLLOUTS - 1)])
    assert pending_full([[1], [1] * PENDING_ROLLOUTS])
    assert not pending_full([])


def test_a_round_waits_for_each_active_actor_or_as_many_rollouts_as_actors():
    assert not rollouts_ready({}, ['a'])
    assert rollouts_ready({'a': 1, 'b': 1}, ['a', 'b'])
    assert not rollouts_ready({'a': 1}, ['a', 'b'])
    assert rollouts_ready({'a': 2}, ['a', 'b'])
