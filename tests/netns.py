"""Hosts for tests of several hosts on one machine: network namespaces on a switch.

Each host is a network namespace with one interface, eth0, on a bridge that lives in a namespace
of its own; its address (10.231.0.x/24) exists only inside the namespaces, and there is no
route anywhere else, so nothing a test sends can leave them. Each host also gets its own
/dev/shm: Fast DDS's shared-memory transport would otherwise let "hosts" on one machine reach
each other past the links.

Root only (CI runs as root): `Lab.open` skips the test with the reason otherwise. Everything is
removed when the lab closes, on failure too, and a lab left behind by a killed earlier run is
removed when the next one opens.

    with Lab.open(tmp_path, ['trainer', 'actor']) as lab:
        process = lab.hosts['actor'].run([...], env_changes, 'actor')
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
from dataclasses import dataclass, field
import os
import shutil
import signal
import subprocess
import time

from pamiq.ros.transport import apply_environment
import pytest

PREFIX = 'pamiqnet'  # namespaces are named pamiqnet<pid>-<host>: the pid finds leftovers
SUBNET = '10.231.0'  # a private /24 that exists only inside the lab's namespaces
SWITCH = 'sw'


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(['ip', *args], capture_output=True, text=True, check=check)


def in_namespace(namespace: str, *command: str, check: bool = True) -> None:
    subprocess.run(['ip', 'netns', 'exec', namespace, *command], capture_output=True, check=check)


@dataclass
class Host:
    """One namespace: its address, its /dev/shm, the processes started in it."""

    name: str
    namespace: str
    address: str
    shm: str
    logs: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def run(
        self, command: list[str], env_changes: Mapping[str, str | None], log_name: str
    ) -> subprocess.Popen:
        """Start `command` on this host with this process's environment changed by
        `env_changes` (a value sets, None removes); output goes to <logs>/<log_name>.log."""
        env = apply_environment(os.environ, {**env_changes, 'PYTHONUNBUFFERED': '1'})
        # ip netns exec gives the command a mount namespace of its own: this host's /dev/shm
        # is bound there, so all processes of one host share it and no other host sees it.
        wrapped = [
            'ip', 'netns', 'exec', self.namespace,
            'unshare', '--mount', '--propagation', 'private',
            'sh', '-c', 'mount --bind "$0" /dev/shm && exec "$@"', self.shm, *command,
        ]  # fmt: skip
        log = open(os.path.join(self.logs, f'{log_name}.log'), 'ab')
        process = subprocess.Popen(
            wrapped, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def log(self, log_name: str) -> str:
        with open(os.path.join(self.logs, f'{log_name}.log'), errors='replace') as stream:
            return stream.read()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT to every process started here, then SIGKILL to what is left."""
        for process in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class Lab:
    """Hosts on one switch (see the module's docstring)."""

    def __init__(self, directory: str, names: list[str]) -> None:
        self.tag = f'{PREFIX}{os.getpid()}'
        self.switch = f'{self.tag}-{SWITCH}'
        self.hosts: dict[str, Host] = {}
        for index, name in enumerate(names):
            host = Host(
                name=name,
                namespace=f'{self.tag}-{name}',
                address=f'{SUBNET}.{index + 1}',
                shm=os.path.join(directory, 'shm', name),
                logs=os.path.join(directory, 'logs'),
            )
            os.makedirs(host.shm, exist_ok=True)
            os.makedirs(host.logs, exist_ok=True)
            self.hosts[name] = host

    @classmethod
    @contextlib.contextmanager
    def open(cls, directory: str, names: list[str]) -> Iterator[Lab]:
        """A lab of `names` hosts, removed on exit; skips the test without root or iproute2."""
        skip_without_namespaces()
        remove_leftovers()
        lab = cls(str(directory), names)
        try:
            lab.create()
            yield lab
        finally:
            lab.close()

    def create(self) -> None:
        ip('netns', 'add', self.switch)
        in_namespace(self.switch, 'ip', 'link', 'add', SWITCH, 'type', 'bridge')
        in_namespace(self.switch, 'ip', 'link', 'set', SWITCH, 'up')
        for index, host in enumerate(self.hosts.values()):
            port = f'p{index}'
            ip('netns', 'add', host.namespace)
            ip('link', 'add', 'eth0', 'netns', host.namespace, 'type', 'veth', 'peer', 'name',
               port, 'netns', self.switch)  # fmt: skip
            in_namespace(self.switch, 'ip', 'link', 'set', port, 'master', SWITCH)
            in_namespace(self.switch, 'ip', 'link', 'set', port, 'up')
            in_namespace(host.namespace, 'ip', 'addr', 'add', f'{host.address}/24', 'dev', 'eth0')
            in_namespace(host.namespace, 'ip', 'link', 'set', 'eth0', 'up')
            in_namespace(host.namespace, 'ip', 'link', 'set', 'lo', 'up')

    def switch_port(self, name: str) -> str:
        return f'p{list(self.hosts).index(name)}'

    def block_multicast(self) -> None:
        """Links that carry no multicast, as in a cloud network. The switch floods no multicast
        (snooping off, so it does not learn groups either) and the hosts' interfaces say so."""
        in_namespace(self.switch, 'ip', 'link', 'set', SWITCH, 'type', 'bridge', 'mcast_snooping',
                     '0')  # fmt: skip
        for name, host in self.hosts.items():
            port = self.switch_port(name)
            in_namespace(self.switch, 'bridge', 'link', 'set', 'dev', port, 'mcast_flood', 'off')
            in_namespace(host.namespace, 'ip', 'link', 'set', 'eth0', 'multicast', 'off')

    def limit(self, name: str, mbit: float) -> None:
        """`name`'s link at `mbit` Mbit/s each way (a token bucket, as a home upload's shaper:
        a 32 KB burst and at most 100 ms of queue; what does not fit is dropped)."""
        rate = ['tbf', 'rate', f'{mbit}mbit', 'burst', '32kb', 'latency', '100ms']
        for namespace, device in ((self.hosts[name].namespace, 'eth0'),
                                  (self.switch, self.switch_port(name))):  # fmt: skip
            in_namespace(namespace, 'tc', 'qdisc', 'add', 'dev', device, 'root', *rate)

    def dropped(self, name: str) -> int:
        """Packets the shaper on `name`'s own interface dropped (its upload)."""
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.hosts[name].namespace,
             'tc', '-s', 'qdisc', 'show', 'dev', 'eth0'],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        words = result.stdout.replace(',', ' ').replace('(', ' ').split()
        return int(words[words.index('dropped') + 1]) if 'dropped' in words else 0

    def udp_sockets(self, name: str) -> list[str]:
        """The UDP sockets open in `name`'s namespace, one `ss` line each."""
        return self.sockets(name, '-uanpH')

    def sockets(self, name: str, options: str = '-tuanpH') -> list[str]:
        """`ss <options>` in `name`'s namespace (by default every TCP and UDP socket)."""
        result = subprocess.run(
            ['ip', 'netns', 'exec', self.hosts[name].namespace, 'ss', options],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return result.stdout.splitlines()

    def picture(self, name: str) -> str:
        """What a failed test shows of a host: its sockets and its /dev/shm."""
        return (
            f'\n--- {name}: sockets\n' + '\n'.join(self.sockets(name))
            + f'\n--- {name}: /dev/shm\n' + ' '.join(sorted(os.listdir(self.hosts[name].shm)))
        )  # fmt: skip

    def close(self) -> None:
        for host in self.hosts.values():
            host.stop()
        for namespace in [host.namespace for host in self.hosts.values()] + [self.switch]:
            ip('netns', 'del', namespace, check=False)  # takes its veth ends with it


def skip_without_namespaces() -> None:
    if os.geteuid() != 0:
        pytest.skip('needs root: hosts are network namespaces joined by veth links (CI is root)')
    for tool in ('ip', 'tc', 'unshare', 'bridge', 'ss'):
        if shutil.which(tool) is None:
            pytest.skip(f'needs `{tool}` (iproute2, util-linux) for network namespaces')
    probe = f'{PREFIX}{os.getpid()}-probe'
    result = ip('netns', 'add', probe, check=False)
    if result.returncode != 0:
        pytest.skip(f'cannot create a network namespace here: {result.stderr.strip()}')
    ip('netns', 'del', probe, check=False)


def remove_leftovers() -> None:
    """Namespaces of labs whose process is gone (a killed run never closed them), and what
    still runs in them."""
    listing = ip('netns', 'list', check=False).stdout.split()
    for name in listing:
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX) :].split('-', 1)[0]
        if pid.isdigit() and not os.path.exists(f'/proc/{pid}'):
            # Its processes too: a killed run never stopped them, and they keep the CPU busy.
            for process in ip('netns', 'pids', name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(process), signal.SIGKILL)
            ip('netns', 'del', name, check=False)
