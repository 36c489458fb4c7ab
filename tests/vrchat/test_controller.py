"""VRChat input vocabulary and mappings (pure, no ROS graph)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from pamiq.vrchat import controller
import pytest


def test_reset_values_are_all_29_vrchat_inputs_with_the_right_types():
    assert len(controller.RESET_VALUES) == 29
    assert all(
        type(v) is float for n, v in controller.RESET_VALUES.items() if n in controller.AXES
    )
    assert all(
        type(v) is int for n, v in controller.RESET_VALUES.items() if n in controller.BUTTONS
    )
    assert set(controller.NEUTRAL_VALUES) <= set(controller.RESET_VALUES)


@pytest.mark.parametrize(
    ('name', 'value', 'deadzone', 'expected', 'problem'),
    [
        ('Vertical', 0.5, 0.0, 0.5, ''),
        ('Vertical', 1.5, 0.0, 1.0, 'clamped'),
        ('Horizontal', -7.0, 0.0, -1.0, 'clamped'),
        ('LookHorizontal', 0.2, 0.25, 0.0, ''),
        ('LookHorizontal', -0.25, 0.25, -0.25, ''),  # strictly below the deadzone only
        ('Vertical', math.nan, 0.0, None, 'non-finite'),
        ('Vertical', math.inf, 0.0, None, 'non-finite'),
        ('Fly', 1.0, 0.0, None, 'unknown VRChat input'),
        ('Jump', 1.0, 0.0, 1, ''),
        ('Jump', 0.0, 0.0, 0, ''),
        ('Run', 0.7, 0.0, 1, 'not 0 or 1'),
        ('Run', 3.0, 0.0, 1, 'clamped'),
        ('Run', -1.0, 0.0, 0, 'clamped'),
        ('MoveForward', 'x', 0.0, None, 'not a number'),
    ],
)
def test_sanitize(name, value, deadzone, expected, problem):
    result, message = controller.sanitize(name, value, deadzone)
    assert result == expected
    assert type(result) is type(expected)
    assert problem in message if problem else message == ''


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(list(controller.RESET_VALUES) + ['Nope', '']),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_sanitize_never_lets_a_bad_value_through(name, value):
    result, _ = controller.sanitize(name, value)
    if result is None:
        return
    if controller.is_axis(name):
        assert isinstance(result, float) and -1.0 <= result <= 1.0
    else:
        assert result in (0, 1) and isinstance(result, int)


def test_discrete_mapping_is_the_originals():
    assert controller.discrete_to_buttons([0, 0, 0, 0, 0]) == {
        n: 0 for n in controller.LOCOMOTION_BUTTONS
    }
    pressed = controller.discrete_to_buttons([1, 1, 1, 1, 1])
    assert {n for n, v in pressed.items() if v} == {
        'MoveForward',
        'MoveLeft',
        'LookLeft',
        'Jump',
        'Run',
    }
    pressed = controller.discrete_to_buttons([2, 2, 2, 0, 0])
    assert {n for n, v in pressed.items() if v} == {'MoveBackward', 'MoveRight', 'LookRight'}
    with pytest.raises(ValueError, match='outside'):
        controller.discrete_to_buttons([3, 3, 3, 2, 2])
    with pytest.raises(ValueError, match='5 indices'):
        controller.discrete_to_buttons([0, 0])


def test_discrete_round_trip():
    import itertools

    for indices in itertools.product(*(range(n) for n in controller.DISCRETE_ACTION_CHOICES)):
        assert controller.buttons_to_discrete(controller.discrete_to_buttons(indices)) == list(
            indices
        )


def test_twist_follows_rep103_and_vrchat_signs():
    assert controller.twist_to_axes(1.0, 0.5, 0.25) == {
        'Vertical': 1.0,
        'Horizontal': -0.5,
        'LookHorizontal': -0.25,
    }
