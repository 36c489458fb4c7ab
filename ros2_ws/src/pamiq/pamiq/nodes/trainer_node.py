"""trainer_node: learns from what the agent lived through, in its own process, without pausing it.

Pairs `agent/observation`, `action` and `agent/step` by stamp into steps, feeds them to the
Learner, and runs training rounds on a thread of its own; after each round it publishes all
weights as one safetensors blob on `trainer/weights` (transient local: a restarted agent gets
the newest) and the losses on `trainer/<model>/loss`. Checkpoints are written atomically every
`checkpoint_every` rounds and on shutdown; a restart resumes from the newest valid one.
"""

from __future__ import annotations

import array
import os
import threading
import time

from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32, UInt8MultiArray
from std_srvs.srv import SetBool, Trigger
import torch

from pamiq.learning.learner import Learner, LearnerConfig, Step
from pamiq.ros import messages, qos, spin
from pamiq.ros.diagnostics import ERROR, OK, WARN, Diagnostics
from pamiq.ros.image_conversion import ImageConversionError, image_to_numpy
from pamiq.ros.parameters import ParameterError, declare, writable_directory
from pamiq.ros.priority import lower_process_priority
from pamiq.storage.checkpoint import CheckpointError, load_latest_checkpoint, save_checkpoint
from pamiq.storage.weights import pack_weights


class StampPairer:
    """Joins the three per-frame messages by stamp; waits at most `timeout` for the rest."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.pending: dict[int, dict[str, object]] = {}
        self.dropped = 0

    def add(self, stamp_ns: int, kind: str, value: object) -> dict[str, object] | None:
        entry = self.pending.setdefault(stamp_ns, {'arrived': time.monotonic()})
        entry[kind] = value
        if all(k in entry for k in ('observation', 'action', 'step')):
            del self.pending[stamp_ns]
            return entry
        return None

    def expire(self) -> None:
        deadline = time.monotonic() - self.timeout
        for stamp in [s for s, e in self.pending.items() if e['arrived'] < deadline]:
            del self.pending[stamp]
            self.dropped += 1


def stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


class Trainer(Node):
    def __init__(self) -> None:
        super().__init__('trainer')
        d = lambda *a, **k: declare(self, *a, **k)
        encoder = d(
            'encoder',
            'inverse_dynamics',
            'What trains the embedding',
            choices=('inverse_dynamics', 'vae'),
            read_only=True,
        )
        action_space = d(
            'action_space',
            'continuous',
            'Must match the agent',
            choices=('continuous', 'discrete'),
            read_only=True,
        )
        device = d(
            'device',
            'auto',
            "'auto' uses CUDA when available",
            choices=('auto', 'cpu', 'cuda'),
            read_only=True,
        )
        self.run_dir = d(
            'run_dir',
            'runs/default',
            'Where checkpoints are written and resumed from',
            read_only=True,
        )
        self.run_dir = writable_directory('run_dir', self.run_dir)
        seed = d(
            'seed',
            0,
            'Seed of the initial weights (the agent uses the same)',
            low=0,
            high=2**31 - 1,
            read_only=True,
        )
        threads = d(
            'torch_threads',
            1,
            'CPU threads for training (leave the agent a core)',
            low=1,
            high=256,
            read_only=True,
        )
        nice = d(
            'nice',
            10,
            'Niceness added to every trainer thread: acting wins the CPU',
            low=0,
            high=19,
            read_only=True,
        )
        self.checkpoint_every = d(
            'checkpoint_every', 10, 'Rounds between two checkpoints', low=1, high=100000
        )
        self.keep_checkpoints = d(
            'keep_checkpoints', 5, 'Checkpoints kept on disk', low=1, high=1000
        )
        pairing_timeout = d(
            'pairing_timeout',
            2.0,
            'Seconds to wait for the rest of a step',
            low=0.1,
            high=60.0,
            read_only=True,
        )
        config = LearnerConfig(
            encoder=encoder,
            action_space=action_space,
            device=self.pick_device(device),
            rollout_length=d(
                'rollout_length', 128, 'Steps per PPO rollout', low=8, high=4096, read_only=True
            ),
            batch_size=d(
                'batch_size',
                32,
                'Encoder/forward-dynamics minibatch',
                low=1,
                high=1024,
                read_only=True,
            ),
            encoder_batches=d(
                'encoder_batches',
                32,
                'Encoder minibatches per round',
                low=0,
                high=10000,
                read_only=True,
            ),
            dynamics_batches=d(
                'dynamics_batches',
                64,
                'Forward-dynamics minibatches per round',
                low=0,
                high=10000,
                read_only=True,
            ),
            min_buffer_size=d(
                'min_buffer_size',
                64,
                'Transitions before training starts',
                low=1,
                high=100000,
                read_only=True,
            ),
            normalize_reward=d(
                'normalize_reward',
                True,
                'Normalise rewards by the std of their discounted sum',
                read_only=True,
            ),
            encoder_rounds=d(
                'encoder_rounds',
                5,
                'Rounds the encoder learns before it is frozen (0: never frozen)',
                low=0,
                high=2**31 - 1,
                read_only=True,
            ),
        )

        torch.set_num_threads(threads)
        self.learner = Learner(config, seed)
        resumed = load_latest_checkpoint(
            self.run_dir, self.learner.models, self.learner.optimizers, self.get_logger().warning
        )
        if resumed is not None:
            self.learner.version = resumed['version']
            self.learner.rounds = int(resumed['counters'].get('rounds', 0))
            self.get_logger().info(
                f'resumed from {resumed["path"]} at version {resumed["version"]}'
            )
        self.pairer = StampPairer(pairing_timeout)
        self.rejected = 0
        self.stopping = threading.Event()
        self.lock = threading.Lock()

        self.weights_pub = self.create_publisher(UInt8MultiArray, 'trainer/weights', qos.WEIGHTS)
        self.loss_pubs: dict[str, object] = {}
        self.observation_sub = self.create_subscription(
            Image, 'agent/observation', self.observation_callback, qos.OBSERVATION
        )
        self.action_sub = self.create_subscription(
            JointState, 'action', self.action_callback, qos.ACTION
        )
        self.step_sub = self.create_subscription(
            JointState, 'agent/step', self.step_callback, qos.STEP
        )
        self.expire_timer = self.create_timer(0.5, self.expire_callback)
        self.active = threading.Event()
        self.active.set()
        self.active_srv = self.create_service(
            SetBool, 'trainer/set_active', self.set_active_callback
        )
        self.save_srv = self.create_service(Trigger, 'trainer/save', self.save_callback)
        self.round_seconds = 0.0
        self.round_started = 0.0  # monotonic start of the round in progress, 0 between rounds
        self.last_error = ''
        self.diagnostics = Diagnostics(self, f'torch {config.device}')
        self.diagnostics.add('training', self.training_check)
        self.tensorboard = open_tensorboard(os.path.join(self.run_dir, 'tb'), self.get_logger())
        if self.tensorboard is not None:
            table = '\n'.join(f'|{k}|{v}|' for k, v in sorted(vars(config).items()))
            self.tensorboard.add_text('hyperparameters', '|parameter|value|\n|-|-|\n' + table)
        # After the node and its publishers exist, so the DDS threads are lowered too; the
        # training thread, started below, inherits the priority.
        lower_process_priority(nice)
        self.publish_weights()
        self.thread = threading.Thread(target=self.training_loop, name='training', daemon=True)
        self.thread.start()
        self.get_logger().info(
            f'training {encoder} + forward dynamics + PPO on {config.device}; '
            f'checkpoints in {self.run_dir}'
        )

    def pick_device(self, device: str) -> str:
        if device == 'auto':
            return 'cuda' if torch.cuda.is_available() else 'cpu'
        if device == 'cuda' and not torch.cuda.is_available():
            raise ParameterError("parameter 'device' is 'cuda' but no CUDA device is available")
        return device

    # --- data in ---------------------------------------------------------------------------
    def observation_callback(self, msg: Image) -> None:
        try:
            observation = image_to_numpy(msg, 'rgb8')
        except ImageConversionError as error:
            return self.reject(f'observation: {error}')
        if observation.shape != (84, 84, 3):
            return self.reject(f'observation of shape {observation.shape}, expected (84, 84, 3)')
        self.pair(stamp_ns(msg), 'observation', observation)

    def action_callback(self, msg: JointState) -> None:
        try:
            action = messages.action_vector(
                msg.name, msg.position, self.learner.config.action_space
            )
        except ValueError as error:
            return self.reject(str(error))
        self.pair(stamp_ns(msg), 'action', action)

    def step_callback(self, msg: JointState) -> None:
        try:
            fields = messages.step_fields(msg)
        except ValueError as error:
            return self.reject(str(error))
        self.pair(stamp_ns(msg), 'step', fields)

    def pair(self, stamp: int, kind: str, value: object) -> None:
        entry = self.pairer.add(stamp, kind, value)
        if entry is None:
            return
        self.learner.add(Step.from_fields(entry['step'], entry['observation'], entry['action']))

    def reject(self, problem: str) -> None:
        self.rejected += 1
        self.get_logger().warning(
            f'{problem} ({self.rejected} rejected so far)', throttle_duration_sec=5.0
        )

    def expire_callback(self) -> None:
        self.pairer.expire()

    # --- training (own thread) -------------------------------------------------------------
    def training_loop(self) -> None:
        while not self.stopping.is_set():
            if not self.active.is_set() or not self.learner.ready():
                self.stopping.wait(0.05)
                continue
            started = self.round_started = time.monotonic()
            with self.lock:
                losses = self.learner.train_round(self.stopping.is_set)
            self.round_started = 0.0
            if self.stopping.is_set():
                return
            self.round_seconds = time.monotonic() - started
            self.publish_weights()
            self.publish_losses(losses)
            rounds = self.learner.rounds
            if self.tensorboard is not None:
                for key, value in losses.items():
                    self.tensorboard.add_scalar(key, value, rounds)
                self.tensorboard.add_scalar('charts/round_seconds', self.round_seconds, rounds)
                self.tensorboard.add_scalar('charts/samples', self.learner.samples, rounds)
                self.tensorboard.flush()
            self.get_logger().info(
                f'round {rounds} in {self.round_seconds:.1f} s: '
                f'version {self.learner.version}, '
                + ', '.join(f'{k} {v:.4g}' for k, v in losses.items() if k.endswith('loss'))
            )
            if rounds == self.learner.config.encoder_rounds:
                self.get_logger().info(f'encoder frozen after {rounds} rounds')
            if rounds % self.checkpoint_every == 0:
                self.save()

    def publish_weights(self) -> None:
        blob = pack_weights(self.learner.models, self.learner.version)
        msg = UInt8MultiArray()
        msg.data = array.array('B', blob)  # the array fast path: no per-byte Python checks
        self.weights_pub.publish(msg)

    def publish_losses(self, losses: dict[str, float]) -> None:
        for key, value in losses.items():
            if key not in self.loss_pubs:
                self.loss_pubs[key] = self.create_publisher(Float32, f'trainer/{key}', qos.DEFAULT)
            self.loss_pubs[key].publish(Float32(data=float(value)))

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
        values = {
            'version': learner.version,
            'rounds': learner.rounds,
            'steps received': learner.samples,
            'dropped pairs': self.pairer.dropped,
            'rejected messages': self.rejected,
            'buffer': len(learner.buffer),
            'rollouts skipped (trainer behind)': learner.skipped,
            'sequence gaps': learner.gaps,
            'last round (s)': self.round_seconds,
            'round in progress (s)': time.monotonic() - started if started else 0.0,
            'device': learner.config.device,
        }
        if self.last_error:
            return ERROR, self.last_error, values
        if not self.active.is_set():
            return OK, 'paused (trainer/set_active)', values
        if learner.skipped:
            return WARN, f'trainer behind: {learner.skipped} rollouts skipped', values
        return OK, f'version {learner.version}, {learner.rounds} rounds', values

    def save(self) -> str | None:
        counters = {**self.learner.counters(), 'dropped_pairs': self.pairer.dropped}
        try:
            path = save_checkpoint(
                self.run_dir,
                self.learner.version,
                self.learner.models,
                self.learner.optimizers,
                counters,
                self.keep_checkpoints,
            )
        except CheckpointError as error:
            self.last_error = str(error)
            self.get_logger().error(str(error))
            return None
        self.last_error = ''
        self.get_logger().info(f'checkpoint {path}')
        return path

    def shutdown(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=30.0)
        with self.lock:
            self.save()
        if self.tensorboard is not None:
            self.tensorboard.close()


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
