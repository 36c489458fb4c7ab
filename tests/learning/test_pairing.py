"""Joining a frame's parts by stamp: complete frames out, incomplete ones expired and counted
as lost, or as sent before a part's subscription matched (an actor joining)."""

from __future__ import annotations

from pamiq.learning.pairing import StampPairer
from pamiq.ros.messages import NEUTRAL_FRAME_ID, action_message, is_neutral_command
import pytest


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_frame_comes_out_once_every_part_arrived_in_any_order():
    pairer = StampPairer(1.0, Clock())
    assert pairer.add(5, 'step', 's') is None
    assert pairer.add(5, 'observation', 'o') is None
    assert pairer.add(5, 'action', 'a') == {'step': 's', 'observation': 'o', 'action': 'a'}
    assert pairer.incomplete() == 0


def test_a_part_lost_mid_stream_is_a_dropped_pair():
    clock = Clock()
    pairer = StampPairer(1.0, clock)
    for part in ('observation', 'action', 'step'):
        pairer.add(1, part, part)
    pairer.add(2, 'observation', 'o')  # its action never comes
    pairer.add(2, 'step', 's')
    clock.t = 0.5
    pairer.expire()
    assert (pairer.dropped, pairer.incomplete()) == (0, 1)  # not yet timed out
    clock.t = 1.5
    pairer.expire()
    assert (pairer.dropped, pairer.before_matched, pairer.incomplete()) == (1, 0, 0)
    assert pairer.missing == {'action': 1}  # which part was lost, for the trainer's diagnostics


def test_a_part_that_brought_a_later_frame_lost_the_earlier_one_at_once():
    pairer = StampPairer(10.0, Clock())
    for part in ('observation', 'action', 'step'):
        pairer.add(0, part, part)
    pairer.add(1, 'observation', 'o')
    pairer.add(1, 'step', 's')  # its action was lost in transit
    pairer.add(2, 'action', 'a')
    pairer.add(2, 'step', 's')  # its observation is still on the way
    pairer.expire()
    assert (pairer.dropped, pairer.incomplete()) == (1, 1)
    assert pairer.missing == {'action': 1}
    assert pairer.add(2, 'observation', 'o') is not None


def test_frames_before_a_parts_subscription_matched_are_not_counted_as_lost():
    clock = Clock()
    pairer = StampPairer(1.0, clock)
    # The observation and step subscriptions matched first: frames 1 and 2 never get an action.
    for stamp in (1, 2):
        pairer.add(stamp, 'observation', 'o')
        pairer.add(stamp, 'step', 's')
    pairer.add(3, 'observation', 'o')
    pairer.add(3, 'step', 's')
    assert pairer.add(3, 'action', 'a') is not None
    # A frame missing a part never heard at all is counted the same way.
    pairer.add(0, 'observation', 'o')
    clock.t = 2.0
    pairer.expire()
    assert (pairer.dropped, pairer.before_matched) == (0, 3)
    # Once the action was heard, a frame that lacks it lost it.
    pairer.add(4, 'observation', 'o')
    pairer.add(4, 'step', 's')
    clock.t = 4.0
    pairer.expire()
    assert (pairer.dropped, pairer.before_matched) == (1, 3)


def test_unknown_part_is_refused():
    with pytest.raises(ValueError, match='part must be one of'):
        StampPairer().add(1, 'smell', None)


def test_only_a_pausing_agents_neutral_command_is_marked_neutral():
    step_action = action_message(None, ['Vertical'], [0.0])
    neutral = action_message(None, ['Vertical'], [0.0], NEUTRAL_FRAME_ID)
    assert not is_neutral_command(step_action)
    assert is_neutral_command(neutral)
