"""Learning from recorded bags: `pamiq train --from-bag`.

Recorded steps (agent/observation + action + agent/step, joined by stamp as the trainer joins
them live) are replayed into the Learner's buffers, then the encoder and the forward-dynamics
model train on them as fast as the CPU (or GPU) allows, not in real time (Learner.pretrain).
"""

from __future__ import annotations

from collections.abc import Callable
import os

from pamiq.learning.learner import Learner, LearnerConfig, Step
from pamiq.learning.pairing import StampPairer
from pamiq.learning.sense_arrays import extra_senses
from pamiq.ros import topics
from pamiq.ros.bags import deserialize, read_messages
from pamiq.ros.messages import is_neutral_command, stamp_ns
from pamiq.ros.sense_messages import frame_part, frame_parts
from pamiq.vocabulary import DEFAULT_SENSES, parse_senses


def load_steps(
    paths: list[str], action_space: str, senses: tuple[str, ...] = DEFAULT_SENSES
) -> tuple[dict[str, list[Step]], int]:
    """Each actor's recorded steps, in step order, and the number of incomplete frames (with
    more senses a frame is complete once agent/hearing and agent/body are paired too)."""
    extras = extra_senses(senses)
    parts = frame_parts(extras)
    pairers: dict[str, StampPairer] = {}
    steps: dict[str, list[Step]] = {}
    for message in read_messages(paths):
        part = next((p for p, t in parts.items() if topics.matches(message.topic, t)), None)
        if part is None:
            continue
        actor = topics.actor_of(message.topic, parts[part])
        msg = deserialize(message)
        if part == 'action' and is_neutral_command(msg):
            continue  # a paused agent's release of every input: no frame's action
        try:
            value = frame_part(part, msg, action_space)
        except ValueError:
            continue  # a malformed message leaves its frame incomplete
        pairer = pairers.setdefault(actor, StampPairer(parts=tuple(parts)))
        entry = pairer.add(stamp_ns(msg), part, value)
        if entry is not None:
            sensed = {sense: entry[sense] for sense in extras}
            steps.setdefault(actor, []).append(
                Step.from_fields(entry['step'], entry['observation'], entry['action'], sensed)
            )
    for actor_steps in steps.values():
        actor_steps.sort(key=lambda s: s.index)
    return steps, sum(p.incomplete() for p in pairers.values())


def train_from_bags(
    paths: list[str],
    run_dir: str,
    config: LearnerConfig,
    epochs: float,
    seed: int,
    say: Callable[[str], None] = print,
) -> str:
    """Pretrain on the bags' steps, continuing from run_dir's newest checkpoint if any; writes
    a checkpoint there and returns its path."""
    steps, incomplete = load_steps(paths, config.action_space, parse_senses(config.senses))
    total = sum(len(s) for s in steps.values())
    say(
        f'{total} recorded steps of {len(steps)} actor(s) ({incomplete} incomplete frames skipped)'
    )
    config = LearnerConfig(
        **{**vars(config), 'dynamics_buffer_size': max(config.dynamics_buffer_size, total)}
    )
    learner = Learner(config, seed)
    resumed = learner.load_checkpoint(run_dir, say)
    if resumed is not None:
        say(f'continuing from {resumed} (version {learner.version})')
    result = learner.pretrain(steps, epochs, say)
    path = learner.save_checkpoint(
        run_dir, keep=5, extra={'offline_transitions': int(result['transitions'])}
    )
    say(f'checkpoint {path}: start the graph with run_dir:={os.path.abspath(run_dir)} to use it')
    return path
