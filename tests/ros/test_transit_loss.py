from pamiq.ros.diagnostics import TransitLoss


def test_sequence_gaps_count_frames_that_never_arrived():
    loss = TransitLoss()
    for sequence in (1, 2, 5, 6, 10):
        loss.arrived(sequence)
    assert (loss.received, loss.lost) == (5, 5)
    assert loss.recent_fraction() == 0.5


def test_a_restarted_publisher_starts_the_count_afresh():
    loss = TransitLoss()
    for sequence in (7, 8, 1, 3):
        loss.arrived(sequence)
    assert loss.lost == 1


def test_when_nothing_arrives_the_middleware_count_shows_the_loss():
    loss = TransitLoss()
    loss.middleware_lost(40)
    loss.middleware_lost(0)
    assert loss.lost == 40
    assert loss.recent_fraction() == 1.0


def test_the_two_counts_of_the_same_losses_are_not_added():
    loss = TransitLoss()
    for sequence in (1, 4, 5):
        loss.arrived(sequence)
    loss.middleware_lost(2)
    assert loss.lost == 2
    assert loss.recent_fraction() == 0.4
