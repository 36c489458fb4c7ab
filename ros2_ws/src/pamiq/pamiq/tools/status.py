"""The one-line live status `pamiq up` prints every few seconds (`--quiet` turns it off)."""

from __future__ import annotations

from collections.abc import Callable
import os
import threading
import time

from diagnostic_msgs.msg import DiagnosticStatus
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import Float32

from pamiq.ros import topics
from pamiq.ros.diagnostics import LEVEL_NAMES, DiagnosticsCollector, steady_clock
from pamiq.run_dir import disk_use
from pamiq.vocabulary import MODEL_LOSSES, REWARD_KEY

# How the status line names each model's loss.
SHORT = dict(zip(MODEL_LOSSES, ('id', 'vae', 'fd', 'ppo')))


class OwnNode:
    """A node of `pamiq up`'s own process, in a context of its own, spun by a thread once its
    callbacks exist (`start`)."""

    def __init__(self, name: str, namespace: str, sim_time: bool = False) -> None:
        self.context = Context()
        # Ctrl-C belongs to the supervisor: rclpy must not install its own signal handlers.
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = Node(
            name,
            namespace=namespace,
            context=self.context,
            parameter_overrides=[Parameter('use_sim_time', value=sim_time)],
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread: threading.Thread | None = None

    def start(self, thread_name: str) -> None:
        self.thread = threading.Thread(target=self.executor.spin, name=thread_name, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.executor.shutdown()
        if self.thread is not None:
            self.thread.join(timeout=5.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class StatusLine:
    def __init__(
        self,
        namespace: str,
        run_dir: str,
        say: Callable[[str], None],
        period: float = 5.0,
        sim_time: bool = False,
    ) -> None:
        self.run_dir, self.say = run_dir, say
        # Every `period` wall seconds also under simulated time: lockstep runs some 45 simulated
        # seconds per wall second, and a line per simulated period would flood the terminal.
        self.own = OwnNode('pamiq_status', namespace, sim_time)
        self.node = self.own.node
        self.diagnostics = DiagnosticsCollector(self.node)
        self.last_steps: tuple[float, float] | None = None  # (wall time, worlds' steps)
        self.losses: dict[str, float] = {}
        for loss, short in SHORT.items():
            self.node.create_subscription(
                Float32,
                topics.trainer_metric(loss),
                lambda m, s=short: self.losses.__setitem__(s, m.data),
                10,
            )
        self.node.create_timer(period, self.print_line, clock=steady_clock())
        self.own.start('status')

    def line(self) -> str:
        parts = []
        rates = [float(r) for r in self.diagnostics.values('agent', 'action rate (Hz)').values()]
        if len(rates) > 1:
            each = ' '.join(f'{r:.1f}' for r in rates)
            parts.append(f'acting {len(rates)} actors {sum(rates):.1f} Hz ({each})')
        else:
            parts.append(f'acting {rates[0]:.1f} Hz' if rates else 'acting ?')
        throughput = self.simulated_steps_per_second()
        if throughput is not None:
            parts.append(f'{throughput:.0f} steps/s ({throughput / 10:.1f}x real time)')
        # Each agent's mean of its last steps (REWARD_KEY), averaged over the actors.
        rewards = [float(r) for r in self.diagnostics.values('agent', REWARD_KEY).values()]
        if rewards:
            parts.append(f'reward {sum(rewards) / len(rewards):.3f}')
        versions = sorted(
            {int(v) for v in self.diagnostics.values('agent', 'weights version').values()}
        )
        if versions:
            span = f'{versions[0]}' if len(versions) == 1 else f'{versions[0]}-{versions[-1]}'
            parts.append(f'weights v{span}')
        if self.losses:
            parts.append(
                'losses ' + ' '.join(f'{k} {v:.3g}' for k, v in sorted(self.losses.items()))
            )
        parts.append(f'run_dir {disk_use(self.run_dir) / 1e6:.0f} MB')
        worst = self.diagnostics.worst()
        if worst is None:
            parts.append('no diagnostics yet')
        elif worst.level == DiagnosticStatus.OK:
            parts.append('all OK')
        else:
            parts.append(f'{LEVEL_NAMES.get(worst.level, "STALE")} {worst.name}: {worst.message}')
        return ' | '.join(parts)

    def simulated_steps_per_second(self) -> float | None:
        """All worlds' simulated steps per wall second since the last line (None in real time:
        then the action rate says it all)."""
        steps = self.diagnostics.values('world', 'simulated steps')
        now = time.monotonic()
        total = sum(float(v) for v in steps.values())
        last, self.last_steps = self.last_steps, (now, total)
        if not total or last is None or now <= last[0]:
            return None
        return (total - last[1]) / (now - last[0])

    def print_line(self) -> None:
        self.say(f'[status] {self.line()}')

    def stop(self) -> None:
        self.own.stop()


def host_anchor(namespace: str) -> OwnNode:
    """A bare participant in `pamiq up`'s own process, where no status line has one: with
    secure:=true every node of the host then has at least one other to find
    (pamiq.ros.isolation). Named after the process: one runs on every host of the graph."""
    anchor = OwnNode(f'pamiq_up_{os.getpid()}', namespace)
    anchor.start('anchor')
    return anchor
