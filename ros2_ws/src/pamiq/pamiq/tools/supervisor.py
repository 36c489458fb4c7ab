"""Run the pamiq graph as child processes when the ROS 2 launch tools are not installed.

It does what `ros2 launch` does for this graph: one process per node with the same remapping and
parameter arguments, output prefixed with the node name (and copied to run_dir/logs), Ctrl-C
stops every node cleanly (SIGINT, then SIGTERM, then SIGKILL), and a node that exits is reported
and either respawned (where the graph says so, after an abnormal exit) or the whole graph is
stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO

from pamiq import run_dir as layout
from pamiq.ros.isolation import ISOLATED_EXIT
from pamiq.ros.transport import DISCOVERY_SERVER, SERVER_PROCESS, NetworkPlan, apply_environment
from pamiq.tools.graph import BringupArgs, NodeSpec, node_command, respawns, write_parameters

SIGTERM_TIMEOUT = 5.0
RESPAWN_DELAY = 1.0


def spec_command(spec: NodeSpec, args: BringupArgs, directory: str) -> list[str]:
    """The node's command line: the params file, then its argument-derived overrides."""
    files = [args.params_file]
    namespace = spec.full_namespace(args.namespace)
    if spec.parameters:
        path = os.path.join(directory, f'{file_name(spec)}.yaml')
        files.append(write_parameters(path, namespace, spec.name, spec.parameters))
    return node_command(spec.executable, spec.name, namespace, files, spec.remappings)


def file_name(spec: NodeSpec) -> str:
    """The node's log and parameter file name: 'trainer', 'actor1_world'."""
    return spec.label.replace('/', '_')


def die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies, even by SIGKILL (Linux).

    The children run in sessions of their own (so Ctrl-C reaches them only through us); without
    this, a killed supervisor would leave the whole graph running as orphans.
    """
    if sys.platform.startswith('linux'):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Child:
    """One node process, its output pumped to our stdout with a prefix and to a log file."""

    def __init__(
        self,
        spec: NodeSpec,
        command: list[str],
        log_path: str,
        out: IO[str],
        env: Mapping[str, str | None] | None = None,
    ) -> None:
        self.spec, self.command, self.log_path, self.out = spec, command, log_path, out
        self.env = dict(env or {})  # changes to ours: a value sets, None removes
        self.process: subprocess.Popen[bytes] | None = None
        self.pump: threading.Thread | None = None
        self.starts = 0

    def start(self) -> None:
        env = apply_environment(os.environ, {**self.env, 'PYTHONUNBUFFERED': '1'})
        # A new session keeps the terminal's Ctrl-C away from the child: we forward it in order.
        self.process = subprocess.Popen(
            self.command,
            preexec_fn=die_with_parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.starts += 1
        self.pump = threading.Thread(
            target=self.pump_output, name=f'out-{self.spec.label}', daemon=True
        )
        self.pump.start()

    def pump_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        prefix = f'[{self.spec.label}] '
        with open(self.log_path, 'a', encoding='utf-8') as log:
            for raw in self.process.stdout:
                line = raw.decode('utf-8', 'replace').rstrip('\n')
                log.write(line + '\n')
                log.flush()
                self.out.write(prefix + line + '\n')
                self.out.flush()

    def stop(self) -> int:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code."""
        process = self.process
        if process is None:
            return 0
        for sig, timeout in (
            (signal.SIGINT, self.spec.stop_timeout),
            (signal.SIGTERM, SIGTERM_TIMEOUT),
            (signal.SIGKILL, None),
        ):
            if process.poll() is not None:
                break
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                continue
        code = process.wait()
        if self.pump is not None:
            self.pump.join(timeout=2.0)
        return code


class Supervisor:
    """`plan`: a network transport's files and environments (None: this host only, the
    environment as it is); with a discovery server to run, it starts first and stops last."""

    def __init__(
        self,
        args: BringupArgs,
        specs: list[NodeSpec],
        out: IO[str] = sys.stdout,
        plan: NetworkPlan | None = None,
    ) -> None:
        self.args, self.out, self.plan = args, out, plan
        logs = os.path.join(args.run_dir, layout.LOGS)
        params = os.path.join(args.run_dir, layout.PARAMS)
        os.makedirs(logs, exist_ok=True)
        os.makedirs(params, exist_ok=True)
        self.children = []
        server = plan.server_command() if plan else None
        if server:
            # Clients wait for a restarted server and find each other again through it.
            spec = NodeSpec(DISCOVERY_SERVER, SERVER_PROCESS, respawn=True)
            log = os.path.join(logs, f'{SERVER_PROCESS}.log')
            self.children.append(Child(spec, server, log, out, plan.server_environment()))
        self.children += [
            Child(
                spec,
                spec_command(spec, args, params),
                os.path.join(logs, f'{file_name(spec)}.log'),
                out,
                plan.environment(spec.label) if plan else None,
            )
            for spec in specs
        ]
        self.stopping = threading.Event()

    def say(self, text: str) -> None:
        self.out.write(f'[pamiq] {text}\n')
        self.out.flush()

    def run(self) -> int:
        """Start every node, watch them until Ctrl-C/SIGTERM or a death; return the exit code."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        code = 0
        try:
            for child in self.children:
                child.start()
                self.say(f'started {child.spec.label} (pid {child.process.pid})')
            self.say(
                f'logs in {os.path.join(self.args.run_dir, layout.LOGS)}; Ctrl-C stops the graph'
            )
            code = self.watch()
        finally:
            for child in reversed(self.children):  # agent first, world (and server) last
                exit_code = child.stop()
                if exit_code not in (0, -signal.SIGINT):
                    self.say(f'{child.spec.label} exited with code {exit_code}')
                    code = code or 1
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.say('graph stopped' + ('' if code == 0 else f' (exit code {code})'))
        return code

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping.set()

    def watch(self) -> int:
        """Until a stop is requested or a node exits for good; returns the graph's exit code."""
        while not self.stopping.wait(0.2):
            for child in self.children:
                code = child.process.poll() if child.process else None
                if code is None:
                    continue
                if respawns(child.spec, code):
                    why = 'was left out of discovery' if code == ISOLATED_EXIT else 'died'
                    self.say(
                        f'{child.spec.label} {why} (exit code {code}); '
                        f'respawning in {RESPAWN_DELAY:.0f} s'
                    )
                    time.sleep(RESPAWN_DELAY)
                    if self.plan is not None and child.spec.label != SERVER_PROCESS:
                        child.env = self.plan.restart_environment(child.spec.label)
                    child.start()
                    self.say(f'started {child.spec.label} (pid {child.process.pid})')
                    continue
                if code == 0:  # it was asked to stop (a signal that reached it, not us)
                    self.say(f'{child.spec.label} stopped (exit code 0); stopping the graph')
                    return 0
                self.say(f'{child.spec.label} died (exit code {code}); stopping the graph')
                return 1
        self.say('stopping the graph')
        return 0
