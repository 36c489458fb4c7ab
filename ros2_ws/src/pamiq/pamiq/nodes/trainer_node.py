"""trainer_node: learns from what the agent lived through, in its own process, without pausing it.

Follows every actor of its namespace (pamiq.ros.actors: the namespace itself, or
`actor<i>` below it, on this host or another), pairs each actor's `agent/observation`, `action`
and `agent/step` by stamp (pamiq.learning.pairing) into steps, feeds them to the Learner as that
actor's sequence, and runs training rounds on a thread of its own; after each round it publishes
all weights as one safetensors blob on `trainer/weights` (transient local: a restarted or
late-joining agent gets the newest), which every actor's agent takes, and the round's values on
`trainer/<name>`. Checkpoints are written atomically every `checkpoint_every` rounds and on
shutdown; a restart resumes from the newest valid one.
"""

from __future__ import annotations

import array
from collections import Counter
from dataclasses import dataclass
import os
import threading
import time

from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger
import torch

from pamiq import run_dir as layout
from pamiq.learning.config import RECURRENT_NEEDS_PLUGINS, uses_plugins
from pamiq.learning.learner import Learner, LearnerConfig, Step
from pamiq.learning.pairing import StampPairer
from pamiq.learning.sense_arrays import extra_senses
from pamiq.ros import qos, spin, topics
from pamiq.ros.actors import ActorDiscovery
from pamiq.ros.diagnostics import ERROR, OK, WARN, Diagnostics, steady_clock
from pamiq.ros.messages import is_neutral_command, stamp_ns
from pamiq.ros.parameters import (
    ParameterError,
    check_senses,
    declare_settings,
    writable_directory,
)
from pamiq.ros.priority import lower_process_priority
from pamiq.ros.queue_wait import QueueWait
from pamiq.ros.sense_messages import frame_part, frame_parts
from pamiq.settings import setting
from pamiq.storage.checkpoint import CheckpointError
from pamiq.storage.weights import pack_weights


@dataclass(frozen=True)
class TrainerConfig:
    run_dir: str = setting('runs/default', 'Where checkpoints are written and resumed from')
    seed: int = setting(
        0, 'Seed of the initial weights (the agent uses the same)', low=0, high=2**31 - 1
    )
    torch_threads: int = setting(
        1, 'CPU threads for training (leave the agent a core)', low=1, high=256
    )
    nice: int = setting(
        10, 'Niceness added to every trainer thread: acting wins the CPU', low=0, high=19
    )
    checkpoint_every: int = setting(
        10, 'Rounds between two checkpoints', low=1, high=100000, dynamic=True
    )
    keep_checkpoints: int = setting(5, 'Checkpoints kept on disk', low=1, high=1000, dynamic=True)
    pairing_timeout: float = setting(
        10.0,
        'Wall seconds a frame waits for a part whose topic went silent (an actor paused, left '
        'or restarted); a part that brings a later frame has lost the earlier one at once',
        low=0.1,
        high=60.0,
    )
    intake_depth: int = setting(
        qos.STEP.depth,
        'Messages of each part of a step (observation, action, step) held per actor while the '
        'trainer is busy (pamiq up and the launch file: twice the steps a lockstep agent acts on '
        'one version; at 64, 256-step bursts lost parts of hundreds of steps)',
        low=1,
        high=100000,
    )


PARAMETERS = (TrainerConfig, LearnerConfig)
NOW = Duration(seconds=0)  # wait_for_all_acked without waiting
# A message that waited longer than this in the intake's queue means the intake is behind.
INTAKE_BEHIND = 0.25
INTAKE_WAIT_LIMIT = 10.0  # the longest a round is put off for the intake (s)


class Trainer(Node):
    def __init__(self) -> None:
        super().__init__('trainer')
        self.config = declare_settings(self, TrainerConfig, self.reconfigure)
        learning = declare_settings(self, LearnerConfig)
        # Before building the learner (a second of CPU at start-up, while agents already act):
        # every thread so far, DDS's included, is lowered, and later ones inherit it.
        lower_process_priority(self.config.nice)
        self.run_dir = writable_directory('run_dir', self.config.run_dir)
        torch.set_num_threads(self.config.torch_threads)
        self.extras = extra_senses(check_senses(learning.senses, learning.encoder))
        try:
            self.learner = make_learner(learning, self.config.seed)
        except ValueError as error:  # the device, or a reward the live graph cannot give
            raise ParameterError(str(error)) from error
        resumed = self.learner.load_checkpoint(self.run_dir, self.get_logger().warning)
        if resumed is not None:
            self.get_logger().info(f'resumed from {resumed} at version {self.learner.version}')
        self.pairers: dict[str, StampPairer] = {}
        self.queue_wait = QueueWait(INTAKE_BEHIND)
        self.intake_waits = 0  # rounds put off while the intake caught up
        self.intake_waiting_since = 0.0
        self.intake_wait_seconds = 0.0
        self.intake_qos = QoSProfile(
            depth=self.config.intake_depth, reliability=qos.STEP.reliability
        )
        self.subs: dict[str, list] = {}
        self.rejected = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()

        self.weights_pub = qos.publisher(self, UInt8MultiArray, topics.WEIGHTS, qos.WEIGHTS)
        self.weights: UInt8MultiArray | None = None  # the newest packed
        self.weights_due = False  # the newest is not out yet: a reader still receives the last
        self.weights_withheld = 0  # versions replaced before they could go out
        self.weights_lock = threading.Lock()  # the training thread and the executor send
        self.weights_timer = self.create_timer(0.2, self.send_due_weights, clock=steady_clock())
        # Every metric's publisher exists from the start, so a plot opened before the first
        # round is already connected when the values come.
        self.metric_pubs = {
            name: qos.publisher(self, Float32, topics.trainer_metric(name), qos.DEFAULT)
            for name in self.learner.metrics()
        }
        # The namespace's own actor (the default graph's) is heard from the start; actors in
        # namespaces below it once discovery finds them.
        self.listen_to(topics.namespaced(self.get_namespace(), '').rstrip('/'))
        self.discovery = ActorDiscovery(self, self.actor_joined, self.actor_left)
        self.expire_timer = self.create_timer(0.5, self.expire_pairs, clock=steady_clock())
        self.active = threading.Event()
        self.active.set()
        self.active_srv = self.create_service(
            SetBool, topics.TRAINER_SET_ACTIVE, self.set_active_callback
        )
        self.save_srv = self.create_service(Trigger, topics.TRAINER_SAVE, self.save_callback)
        self.round_seconds = 0.0
        self.round_started = 0.0  # monotonic start of the round in progress, 0 between rounds
        self.last_error = ''
        device = str(self.learner.device)
        self.diagnostics = Diagnostics(self, f'torch {device}')
        self.diagnostics.add('training', self.training_check)
        self.tensorboard = open_tensorboard(
            os.path.join(self.run_dir, layout.TENSORBOARD), self.get_logger()
        )
        if self.tensorboard is not None:
            table = '\n'.join(f'|{k}|{v}|' for k, v in sorted(vars(learning).items()))
            self.tensorboard.add_text('hyperparameters', '|parameter|value|\n|-|-|\n' + table)
        self.publish_weights()
        self.thread = threading.Thread(target=self.training_loop, name='training', daemon=True)
        self.thread.start()
        self.get_logger().info(
            f'training {describe(learning)} on {device}; checkpoints in {self.run_dir}'
        )

    def reconfigure(self, config: TrainerConfig) -> None:
        self.config = config

    # --- data in ---------------------------------------------------------------------------
    def listen_to(self, actor: str) -> None:
        """Subscribe to an actor's frame messages (once: a returning actor reuses them)."""
        if actor in self.subs:
            return
        parts = frame_parts(self.extras)  # part -> topic (more with hearing, body)
        # StampPairer's own clock, the wall clock: delivery takes wall time, simulated or not.
        self.pairers[actor] = StampPairer(self.config.pairing_timeout, parts=tuple(parts))
        self.subs[actor] = [
            self.create_subscription(
                Image if part in ('observation', 'hearing') else JointState,
                f'{actor}/{topic}',
                lambda msg, info, part=part: self.part_callback(actor, part, msg, info),
                self.intake_qos,
            )
            for part, topic in parts.items()
        ]

    def actor_joined(self, actor: str) -> None:
        self.listen_to(actor)
        self.get_logger().info(
            f'actor {actor} joined: learning from {len(self.discovery.active)} '
            f'actor(s) ({", ".join(self.discovery.actors())})'
        )
        # Its agent counts the steps it may act ahead of us from the newest weights it got:
        # from now on, when we hear it (a lockstep agent waits for weights after that many).
        with self.weights_lock:  # the last round's (the models may be mid-round now)
            self.weights_due = self.weights is not None
        self.send_due_weights()

    def actor_left(self, actor: str) -> None:
        remaining = self.discovery.actors()
        self.get_logger().warning(
            f'actor {actor} left (its agent/step has no publisher); '
            f'{len(remaining)} actor(s) go on' + (f': {", ".join(remaining)}' if remaining else '')
        )

    def part_callback(self, actor: str, part: str, msg, info: dict) -> None:
        self.queue_wait.taken(actor, info)
        if part == 'action' and is_neutral_command(msg):
            return  # a paused agent's release of every input, not a step's action
        try:
            value = frame_part(part, msg, self.learner.config.action_space)
        except ValueError as error:
            self.rejected += 1
            self.get_logger().warning(
                f'{actor}: {part}: {error} ({self.rejected} rejected so far)',
                throttle_duration_sec=5.0,
            )
            return
        entry = self.pairers[actor].add(stamp_ns(msg), part, value)
        if entry is not None:
            senses = {sense: entry[sense] for sense in self.extras}
            step = Step.from_fields(entry['step'], entry['observation'], entry['action'], senses)
            try:
                self.learner.add(step, actor)
            except ValueError as error:  # a step this learner cannot train on
                self.rejected += 1
                self.get_logger().warning(
                    f'{actor}: step: {error} ({self.rejected} rejected so far)',
                    throttle_duration_sec=5.0,
                )

    def expire_pairs(self) -> None:
        for pairer in list(self.pairers.values()):
            pairer.expire()

    def dropped_pairs(self) -> int:
        return sum(p.dropped for p in list(self.pairers.values()))

    def dropped_parts(self) -> str:
        """Which parts the dropped frames lacked: 'observation 3, action 1' (or 'none')."""
        missing = sum((p.missing for p in list(self.pairers.values())), Counter())
        return ', '.join(f'{part} {n}' for part, n in sorted(missing.items())) or 'none'

    def frames_before_matched(self) -> int:
        return sum(p.before_matched for p in list(self.pairers.values()))

    # --- training (own thread) -------------------------------------------------------------
    def training_loop(self) -> None:
        while not self.stopping.is_set():
            if not self.active.is_set() or not self.learner.ready(self.discovery.actors()):
                self.stopping.wait(0.05)
                continue
            if self.wait_for_the_intake():
                continue
            started = self.round_started = time.monotonic()
            with self.lock:
                metrics = self.learner.train_round(self.stopping.is_set)
            self.round_started = 0.0
            if self.stopping.is_set():
                return
            self.round_seconds = time.monotonic() - started
            self.publish_weights()
            for name, value in metrics.items():
                self.metric_pubs[name].publish(Float32(data=float(value)))
            rounds = self.learner.rounds
            if self.tensorboard is not None:
                for key, value in metrics.items():
                    self.tensorboard.add_scalar(key, value, rounds)
                self.tensorboard.add_scalar('charts/round_seconds', self.round_seconds, rounds)
                self.tensorboard.add_scalar('charts/samples', self.learner.samples, rounds)
                self.tensorboard.flush()
            self.get_logger().info(
                f'round {rounds} in {self.round_seconds:.1f} s: '
                f'version {self.learner.version}, '
                + ', '.join(f'{k} {v:.4g}' for k, v in metrics.items() if k.endswith('loss'))
            )
            if rounds == self.learner.config.encoder_rounds:
                self.get_logger().info(f'encoder frozen after {rounds} rounds')
            if rounds % self.config.checkpoint_every == 0:
                self.save()

    def wait_for_the_intake(self) -> bool:
        """Put the round off while messages wait in the intake's queues (the executor, not the
        round, should have the CPU then): a lockstep agent acts on while we train, and a queue
        holds `intake_depth` messages before it drops the oldest, so what piles up during a
        round must be taken before the next one releases more. Not once an actor has as many
        rollouts waiting as it may keep (one more would go untrained), and not past
        INTAKE_WAIT_LIMIT s."""
        if not self.queue_wait.behind() or self.learner.rollouts_full():
            self.intake_waiting_since = 0.0
            return False
        now = time.monotonic()
        if not self.intake_waiting_since:
            self.intake_waiting_since = now
            self.intake_waits += 1
        if now - self.intake_waiting_since > INTAKE_WAIT_LIMIT:
            return False
        self.stopping.wait(0.01)
        self.intake_wait_seconds += time.monotonic() - now
        return True

    def publish_weights(self) -> None:
        """Pack the models as they are after a round and send them when the topic is free."""
        blob = pack_weights(self.learner.models, self.learner.version)
        msg = UInt8MultiArray()
        msg.data = array.array('B', blob)  # the array fast path: no per-byte Python checks
        with self.weights_lock:
            if self.weights_due:
                self.weights_withheld += 1  # a version that never went out: a newer replaces it
            self.weights, self.weights_due = msg, True
        self.send_due_weights()

    def send_due_weights(self) -> None:
        """Publish the newest weights once every reader has the blob sent before.

        The topic keeps only the newest blob, so a new one would drop the last while a slow link
        still carries it: over a link slower than the rounds (29 MB take ~14 s at 20 Mbit/s) no
        version would ever arrive. On loopback the last is acknowledged in milliseconds and every
        version goes out.
        """
        with self.weights_lock:
            if not self.weights_due or not self.weights_pub.wait_for_all_acked(NOW):
                return
            self.weights_pub.publish(self.weights)
            self.weights_due = False

    def set_active_callback(
        self, request: SetBool.Request, response: SetBool.Response
    ) -> SetBool.Response:
        (self.active.set if request.data else self.active.clear)()
        response.success = True
        response.message = 'training' if request.data else 'paused (after the current round)'
        self.get_logger().info(response.message)
        return response

    def save_callback(
        self, request: Trigger.Request, response: Trigger.Response
    ) -> Trigger.Response:
        with self.lock:  # between rounds: models and optimizers agree
            path = self.save()
        response.success = path is not None
        response.message = path if path is not None else f'checkpoint failed: {self.last_error}'
        return response

    def training_check(self):
        learner = self.learner
        started = self.round_started  # read once: the training thread resets it
        actors = self.discovery.actors()
        departed = sorted(self.discovery.departed)
        values = {
            'version': learner.version,
            'rounds': learner.rounds,
            'actors': len(actors),
            'actor namespaces': ' '.join(actors),
            'actors left': ' '.join(departed),
            'steps received': learner.samples,
            **{
                f'steps from {name}': stream.steps
                for name, stream in sorted(learner.streams.items())
            },
            'dropped pairs': self.dropped_pairs(),
            'rounds put off while the intake caught up': self.intake_waits,
            'waiting for the intake (s)': self.intake_wait_seconds,
            'longest wait in the intake (s)': self.queue_wait.longest,
            'parts the dropped pairs lacked': self.dropped_parts(),
            'frames before every part was subscribed': self.frames_before_matched(),
            'rejected messages': self.rejected,
            'buffer': len(learner.buffer),
            'rollouts skipped (trainer behind)': learner.skipped,
            'sequence gaps': learner.gaps,
            'last round (s)': self.round_seconds,
            'weights versions withheld (a reader was still receiving)': self.weights_withheld,
            'round in progress (s)': time.monotonic() - started if started else 0.0,
            'device': str(learner.device),
        }
        if self.last_error:
            return ERROR, self.last_error, values
        if not self.active.is_set():
            return OK, 'paused (trainer/set_active)', values
        problems = []
        if departed:
            problems.append(f'actor(s) left: {", ".join(departed)}')
        if learner.skipped:
            problems.append(f'trainer behind: {learner.skipped} rollouts skipped')
        if problems:
            return WARN, '; '.join(problems) + f'; learning from {len(actors)}', values
        if not actors:
            return OK, f'version {learner.version}: waiting for an actor', values
        return (
            OK,
            f'version {learner.version}, {learner.rounds} rounds, {len(actors)} actor(s)',
            values,
        )

    def save(self) -> str | None:
        try:
            path = self.learner.save_checkpoint(
                self.run_dir, self.config.keep_checkpoints, {'dropped_pairs': self.dropped_pairs()}
            )
        except CheckpointError as error:
            self.last_error = str(error)
            self.get_logger().error(str(error))
            return None
        self.last_error = ''
        self.get_logger().info(f'checkpoint {path}')
        return path

    def destroy_node(self) -> None:
        # The training thread publishes after each round: it ends before its publishers do (a
        # round that ended as Ctrl-C came published into a destroyed publisher and died).
        self.stopping.set()
        self.thread.join(timeout=30.0)
        super().destroy_node()

    def shutdown(self) -> None:
        # spin.run destroys the node first, so the training thread has ended (destroy_node).
        with self.lock:
            self.save()
        if self.tensorboard is not None:
            self.tensorboard.close()


def make_learner(config: LearnerConfig, seed: int):
    """The original's Learner for its own configuration, else the plug-in path's."""
    if uses_plugins(config.model, config.reward):
        from pamiq.learning.plugin_learner import PluginLearner

        return PluginLearner(config, seed)
    if config.recurrent:
        raise ValueError(RECURRENT_NEEDS_PLUGINS)
    return Learner(config, seed)


def describe(config: LearnerConfig) -> str:
    if uses_plugins(config.model, config.reward):
        return f'the {config.model} model, reward {config.reward} and PPO'
    return f'{config.encoder} + forward dynamics + PPO'


def open_tensorboard(directory: str, logger):
    """A SummaryWriter for run_dir/tb, or None (with a warning) if TensorBoard is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        logger.warning(f'no TensorBoard scalars: {error}')
        return None
    return SummaryWriter(directory)


def main(args: list[str] | None = None) -> int:
    return spin.run(Trainer, args)


if __name__ == '__main__':
    raise SystemExit(main())
