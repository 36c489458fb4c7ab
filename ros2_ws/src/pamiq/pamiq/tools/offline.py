"""Learning from recorded bags: `pamiq train --from-bag` and the trainer's `pretrain_bags`.

Recorded steps (agent/observation + action + agent/step, joined by stamp) are replayed into the
Learner's buffers, then the encoder and the forward-dynamics model train on them as fast as the
CPU (or GPU) allows, not in real time. PPO is left to live acting: its data must come from the
policy being improved.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import time

import torch

from pamiq.learning.learner import Learner, Step
from pamiq.ros import messages
from pamiq.ros.bags import deserialize, read_messages
from pamiq.ros.image_conversion import image_to_numpy

STEP_TOPICS = ('agent/observation', 'action', 'agent/step')


def load_steps(paths: list[str], action_space: str) -> tuple[list[Step], int]:
    """Steps recorded in the bags, in step order, and the number of incomplete frames."""
    pending: dict[tuple[int, int], dict[str, object]] = {}
    steps: list[Step] = []
    for message in read_messages(paths):
        kind = next(
            (t for t in STEP_TOPICS if message.topic.endswith('/' + t) or message.topic == t), None
        )
        if kind is None:
            continue
        msg = deserialize(message)
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        entry = pending.setdefault(key, {})
        if kind == 'agent/observation':
            entry[kind] = image_to_numpy(msg, 'rgb8')
        elif kind == 'action':
            entry[kind] = messages.action_vector(list(msg.name), list(msg.position), action_space)
        else:
            entry[kind] = dict(zip(msg.name, msg.position))
        if len(entry) == 3:
            del pending[key]
            steps.append(
                Step.from_fields(entry['agent/step'], entry['agent/observation'], entry['action'])
            )
    steps.sort(key=lambda s: s.index)
    return steps, len(pending)


def pretrain(
    learner: Learner,
    steps: list[Step],
    epochs: float,
    say: Callable[[str], None] = print,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, float]:
    """Train the encoder, then the forward model, for `epochs` passes over the steps' transitions.

    Returns the forward-dynamics loss on a fixed sample before and after, so the caller can see
    (and tests can check) that it fell.
    """
    for step in steps:
        learner.add(step)
    learner.reset_sequence()  # recorded rollouts are no PPO data: another policy acted them
    transitions = len(learner.buffer)
    if transitions < 2:
        raise ValueError(f'the bags hold {transitions} usable transitions; need at least 2')
    evaluation = learner.batch_tensors(learner.buffer.sample(min(256, transitions)))
    with torch.no_grad():
        before = float(learner.dynamics_loss(*evaluation))
    batches = max(1, math.ceil(epochs * transitions / learner.config.batch_size))
    started = time.monotonic()
    for name, loss_fn in (
        ('encoder', learner.encoder_loss),
        ('forward_dynamics', learner.dynamics_loss),
    ):
        done = 0
        while done < batches and not should_stop():
            chunk = min(max(batches // 10, 1), batches - done)
            loss = learner.train_model(name, chunk, loss_fn, should_stop)
            done += chunk
            say(
                f'{name}: {done}/{batches} minibatches ({100 * done / batches:.0f} %), '
                f'loss {loss:.4g}'
            )
    with torch.no_grad():
        after = float(learner.dynamics_loss(*evaluation))
    learner.version += 1
    say(
        f'trained on {transitions} transitions in {time.monotonic() - started:.1f} s; '
        f'forward-dynamics loss {before:.4g} -> {after:.4g}'
    )
    return {
        'forward_dynamics_before': before,
        'forward_dynamics_after': after,
        'transitions': transitions,
    }
