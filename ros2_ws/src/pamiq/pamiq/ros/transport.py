"""The DDS transport settings that travel with the graph (`ros2 launch` and `pamiq up`).

**This host only** (`network:=loopback`, the default). Fast DDS's defaults send a camera frame
larger than its 512 KB shared-memory segment as UDP fragments, and about half of them are lost:
a 1280x720 VRChat screen then acts at ~4.4 Hz instead of 10. The project's profile
(config/fastdds_loopback.xml: shared memory with a 64 MB segment plus UDP on 127.0.0.1) holds
10 Hz up to 1920x1080. It is applied to every node unless the user has chosen a profile of their
own.

**Several hosts** (`network:=lan`, `discovery:=...`, `secure:=true`): one host's processes get
profiles written into the run directory (pamiq.ros.fastdds_profiles) and the environment that
makes rmw_fastrtps use them as written:

- `lan`: UDP on every interface, multicast discovery (one LAN).
- `discovery:=server` on one host, `discovery:=<host>:<port>` on the others: every participant
  is a client of a Fast DDS discovery server that `pamiq up` (or the launch file) runs beside
  the nodes, so no multicast is needed (cloud networks have none).
- `secure:=true certs:=<dir>`: TCP with TLS, certificates of the run's CA on both sides
  (pamiq.tools.certs), discovery through the server. The server's host listens; the others only
  connect, so they may sit behind NAT.
- `weights_mbit`: the weights writer is paced by a flow controller (a slow link otherwise drops
  nearly all of a 29 MB burst, again and again).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
import ipaddress
import json
import os
import shlex
import shutil
import socket
import sys

from pamiq.ros import acting_domain, topics
from pamiq.ros.fastdds_profiles import (
    Endpoint,
    TlsFiles,
    node_profile,
    openssl_config,
    server_profile,
)
from pamiq.ros.host_certs import CertificateError, check_host_certs
from pamiq.ros.isolation import WATCH_VARIABLE, watch_value
from pamiq.ros.share import config_file

# Fast DDS 2.x (Jazzy) reads FASTRTPS_..., 3.x (Kilted and later) FASTDDS_...: set both.
PROFILE_VARIABLES = ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE')
PROFILE = 'fastdds_loopback.xml'
NETWORKS = ('loopback', 'lan')
UDP_SERVER_PORT = 11811  # ROS 2's and fast-discovery-server's default
# Fast DDS 2.14 decides which side of a TCP pair connects by comparing ports: the lower
# listening port connects to the higher. A participant that only connects announces a bound,
# not listening, ephemeral port (32768-60999 on Linux), so a listener below that range also
# tries to connect to it, and the pair then often never matches (13 of 20 runs with the server
# on 11811; 0 of 11 above the range). So the secure server's host listens above it: the server
# at its port, that host's own processes on the HUB_PORTS ports just below.
TLS_SERVER_PORT = 61811
EPHEMERAL_PORTS_END = 60999
HUB_PORTS = 32
# Below the hub's ports, one port per ROS tool process started through `pamiq tool` (and
# `pamiq ctl`/`record`/`replay`) on the server's host, in turn (pamiq.ros.tool_ports): Fast DDS
# 2.14 keeps a dead participant's connections under the port it announced and refuses the next
# one announcing it, so a second tool on the first one's port heard nothing from other hosts.
TOOL_PORTS = 256
TOOLS_ENV = 'ros2_tools.env'
TOOL_PORTS_FILE = 'tool_ports.json'
# ros2_tools.env names its folder, so that `pamiq tool` finds the run's tool ports.
TOOLS_DIRECTORY_VARIABLE = 'PAMIQ_TOOLS_DIR'
# The process names whose profiles do not come from the graph's node list.
PAMIQ_PROCESS = 'pamiq'  # `pamiq up` itself: its status line is a participant too
TOOLS_PROCESS = 'tools'  # ROS 2 command line tools on this host (ros2_tools.env)
SERVER_PROCESS = 'discovery_server'
DISCOVERY_SERVER = 'fast-discovery-server'


class TransportError(ValueError):
    """Transport arguments that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Transport:
    """One host's DDS transport, as the launch arguments chose it (see `parse_transport`)."""

    network: str = 'loopback'
    server: Endpoint | None = None
    """The discovery server as this host's participants reach it; None: multicast."""
    serves: bool = False
    """This host runs the discovery server."""
    tls: TlsFiles | None = None
    weights_mbit: float | None = None

    def describe(self) -> str:
        if self.network == 'loopback':
            return 'this host only'
        if self.server is None:
            how = 'UDP on every interface, multicast discovery'
        else:
            where = f'here, port {self.server.port}' if self.serves else f'at {self.server}'
            how = f'{"TCP + TLS" if self.tls else "UDP"}, discovery server {where}'
        if self.weights_mbit:
            how += f', weights at most {self.weights_mbit:g} Mbit/s'
        return how


def parse_transport(
    network: str,
    discovery: str,
    secure: str,
    certs: str,
    weights_mbit: str,
    network_given: bool = True,
) -> Transport:
    """Validate the transport launch arguments (strings, as launch passes them).

    `discovery` and `secure` imply `network:=lan`; `network_given` says whether the user named
    a network, so that an explicit `network:=loopback` with them is refused.
    """
    if network not in NETWORKS:
        raise TransportError(f'network:={network} is not one of {", ".join(NETWORKS)}')
    secure = secure.lower()
    if secure not in ('true', 'false'):
        raise TransportError(f'secure:={secure} is not true or false')
    tls = secure == 'true'
    if tls and not discovery:
        raise TransportError(
            'secure:=true needs a discovery server (TLS runs over TCP, which has no multicast '
            'discovery): discovery:=server on one host, discovery:=<that host> on the others'
        )
    if (discovery or tls) and network == 'loopback':
        if network_given:
            raise TransportError(
                'network:=loopback keeps DDS on this host; discovery:= and secure:= are for '
                'several hosts (leave network out, or network:=lan)'
            )
        network = 'lan'
    if certs and not tls:
        raise TransportError('certs:= is for secure:=true')
    files = None
    if tls:
        if not certs:
            raise TransportError(
                "secure:=true needs certs:=<this host's folder from `pamiq certs`>"
            )
        try:
            files = TlsFiles(**check_host_certs(certs))
        except CertificateError as error:
            raise TransportError(str(error)) from None
    server, serves = parse_discovery(discovery, tls)
    rate = None
    if weights_mbit:
        try:
            rate = float(weights_mbit)
            if not 0.0 < rate <= 100000.0:
                raise ValueError
        except ValueError:
            raise TransportError(
                f'weights_mbit:={weights_mbit} is not a rate in Mbit/s in (0, 100000]'
            ) from None
        if network == 'loopback':
            raise TransportError('weights_mbit:= paces weights across hosts (network:=lan)')
    return Transport(network, server, serves, files, rate)


def parse_discovery(value: str, tls: bool) -> tuple[Endpoint | None, bool]:
    """'' -> no server; 'server[:port]' -> run one here; '<host>[:port]' -> use that one."""
    if not value:
        return None, False
    host, sep, port_text = value.rpartition(':')
    if not sep:
        host, port_text = value, ''
    port = TLS_SERVER_PORT if tls else UDP_SERVER_PORT
    if port_text:
        if not (port_text.isdigit() and 0 < int(port_text) < 65536):
            raise TransportError(f'discovery:={value}: {port_text!r} is not a port number')
        port = int(port_text)
    if tls and port <= EPHEMERAL_PORTS_END + HUB_PORTS + TOOL_PORTS:
        raise TransportError(
            f'discovery:={value}: with secure:=true the port must be above '
            f'{EPHEMERAL_PORTS_END + HUB_PORTS + TOOL_PORTS} (the server listens there, its '
            f"host's processes on the {HUB_PORTS} ports below it and its ROS tools on the "
            f'{TOOL_PORTS} below those, all above the ephemeral ports that Fast DDS mistakes '
            f'for listening ones); the default is {TLS_SERVER_PORT}'
        )
    if host == 'server':
        return Endpoint('127.0.0.1', port), True
    if not host:
        raise TransportError(f"discovery:={value} names no host (server, or the server's host)")
    return Endpoint(resolve_ipv4(host, value), port), False


def resolve_ipv4(host: str, value: str) -> str:
    """The IPv4 address of `host` (Fast DDS's locators want addresses)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TransportError(
            f'discovery:={value}: {host!r} is neither an IPv4 address nor a name that resolves'
        ) from None
    return infos[0][4][0]


def transport_settings(env: Mapping[str, str]) -> dict[str, str]:
    """The environment variables to add to `env` for the nodes on this host only: none when
    `env` names a profile already; else private acting (pamiq.ros.acting_domain) with its
    profile, unless PAMIQ_PRIVATE_ACTING=0 or another RMW is chosen, when the project's
    profile for both Fast DDS generations."""
    if any(env.get(name) for name in PROFILE_VARIABLES):
        return {}
    if private_acting(env):
        path = config_file(acting_domain.SPLIT_PROFILE)
        return {**{name: path for name in PROFILE_VARIABLES}, acting_domain.ENABLE_VARIABLE: '1'}
    return {name: config_file(PROFILE) for name in PROFILE_VARIABLES}


def this_host_transport(env: Mapping[str, str]) -> dict[str, str]:
    """`transport_settings(env)`, with this graph's two domains claimed on this host (for as
    long as this process lives) when it acts privately: what `pamiq up` and the launch file
    start a one-host graph with. Raises acting_domain.DomainInUse."""
    settings = transport_settings(env)
    merged = {**env, **settings}
    if acting_domain.enabled(merged):
        acting_domain.claim_domains(merged)
    return settings


def private_acting(env: Mapping[str, str]) -> bool:
    """Whether this host's graph acts on a private domain: by default, with Fast DDS."""
    if env.get(acting_domain.ENABLE_VARIABLE, '') == '0':
        return False
    return env.get('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp') == 'rmw_fastrtps_cpp'


def describe_settings(env: Mapping[str, str], settings: Mapping[str, str]) -> str:
    """For the log: what `transport_settings(env)` chose (`settings`), in `env` with them (a
    launch started by `pamiq up` finds them in `env` already)."""
    env = {**env, **settings}
    profile = env.get(PROFILE_VARIABLES[0]) or env.get(PROFILE_VARIABLES[1])
    if acting_domain.enabled(env):
        return (
            f'acting on private domain {acting_domain.acting_domain(env)} with shared memory, '
            f'ROS tools see it on domain {acting_domain.public_domain(env)} '
            f'(PAMIQ_PRIVATE_ACTING=0: all on one); the profile {profile}'
        )
    if not settings:
        return f'your own profile {profile}'
    return f"the project's profile {profile}"


def apply_environment(env: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    """`env` with `changes` made: a value sets a variable, None removes it."""
    result = dict(env)
    for name, value in changes.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


class NetworkPlan:
    """What one host's processes need for a network transport: the files it writes into
    `directory` (profiles, OpenSSL configuration, the ROS tools' environment) and each
    process's environment.

    `processes`: the nodes this host starts, by label ('trainer', 'actor1/world'); with
    `secure` on the server's host each gets its own profile, since each needs a listening port
    of its own.
    """

    def __init__(
        self, transport: Transport, directory: str, processes: list[str], namespace: str
    ) -> None:
        if transport.network == 'loopback':
            raise TransportError('a NetworkPlan is for network transports')
        self.transport = transport
        self.directory = os.path.abspath(directory)
        self.names = [TOOLS_PROCESS, PAMIQ_PROCESS, *processes]
        self.listens = bool(transport.tls and transport.serves)
        if self.listens and len(self.names) > HUB_PORTS:
            raise TransportError(
                f"{len(self.names)} processes on the discovery server's host: at most "
                f'{HUB_PORTS} have listening ports below {transport.server.port}'
            )
        os.makedirs(self.directory, exist_ok=True)
        self.restarts = 0
        namespace = namespace.strip('/')
        self.weights_topic = (
            f'/{namespace}/{topics.WEIGHTS}' if namespace else f'/{topics.WEIGHTS}'
        )
        self.openssl = self.write('openssl.cnf', openssl_config()) if transport.tls else None
        self.profiles = self.write_node_profiles()
        self.server_xml = None
        if transport.serves:
            xml = server_profile(transport.server.port, transport.tls)
            self.server_xml = self.write('discovery_server.xml', xml)
        self.tools_env = self.write(TOOLS_ENV, self.tools_script())
        if self.listens:
            self.write(TOOL_PORTS_FILE, self.tool_ports())

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.directory, name)
        with open(path, 'w') as stream:
            stream.write(text)
        return path

    def listening_port(self, name: str) -> int | None:
        """The hub's processes listen on the ports just below the server's; others connect."""
        if not self.listens:
            return None
        return self.transport.server.port - 1 - self.names.index(name)

    def profile_name(self, name: str) -> str:
        """One profile for every process of the host, unless each listens on its own port."""
        own = name.replace('/', '_')  # a node's label: 'trainer', 'actor1/world'
        return f'{own}.xml' if self.listens else 'node.xml'

    def write_node_profiles(self) -> dict[str, str]:
        paths: dict[str, str] = {}
        for name in self.names:
            file = self.profile_name(name)
            path = os.path.join(self.directory, file)
            if path not in paths.values():
                xml = node_profile(
                    server=self.transport.server,
                    tls=self.transport.tls,
                    listening_port=self.listening_port(name),
                    weights_topic=self.weights_topic,
                    weights_mbit=self.transport.weights_mbit,
                )
                self.write(file, xml)
            paths[name] = path
        return paths

    def restart_environment(self, name: str) -> dict[str, str | None]:
        """The environment of process `name` started again after it died (see
        `restart_profile_environment`)."""
        return {**self.shared_environment(), **self.restart_profile_environment(name)}

    def restart_profile_environment(self, name: str) -> dict[str, str]:
        """The profile of process `name` started again after it died.

        On the secure server's host a restarted process listens on a port no process of this
        run has used yet (the spare ports of HUB_PORTS, in turn). Fast DDS 2.14 keys each TCP
        connection by the peer's announced port: the server and the other hosts kept the dead
        process's connection under its port and refused the new one's, so a trainer respawned
        on its old port never heard from an actor again (120 s, secure two-host run).
        """
        spares = HUB_PORTS - len(self.names)
        if not self.listens or spares <= 0:
            return self.profile_environment(name)
        port = self.transport.server.port - 1 - len(self.names) - self.restarts % spares
        self.restarts += 1
        xml = node_profile(
            server=self.transport.server,
            tls=self.transport.tls,
            listening_port=port,
            weights_topic=self.weights_topic,
            weights_mbit=self.transport.weights_mbit,
        )
        path = self.write(f'{name.replace("/", "_")}.{port}.xml', xml)
        return {variable: path for variable in PROFILE_VARIABLES}

    def environment(self, name: str) -> dict[str, str | None]:
        """The variables to set (None: to remove) for process `name` of this host."""
        return {**self.shared_environment(), **self.profile_environment(name)}

    def profile_environment(self, name: str) -> dict[str, str]:
        """The profile of process `name` (the one setting that differs between processes)."""
        if name not in self.profiles:
            raise TransportError(f'no DDS profile for process {name!r}: name it in the plan')
        return {variable: self.profiles[name] for variable in PROFILE_VARIABLES}

    def shared_environment(self) -> dict[str, str | None]:
        """What every DDS process of this host gets besides its profile."""
        changes: dict[str, str | None] = {
            # rmw_fastrtps adds its own localhost transports (UDP on every interface among
            # them) for LOCALHOST, and static peers for LOCALHOST and SUBNET: SUBNET leaves
            # the profile's transports alone.
            'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SUBNET',
            'ROS_LOCALHOST_ONLY': None,
            # Fast DDS makes a multicast participant the client of these servers: the
            # profile says which server, if any.
            'ROS_DISCOVERY_SERVER': None,
            'ROS_SUPER_CLIENT': None,
            'RMW_IMPLEMENTATION': 'rmw_fastrtps_cpp',
            # rmw sets every writer's publish mode unless AUTO, which keeps the profile's
            # (synchronous, Fast DDS's default; asynchronous through the flow controller
            # for the weights).
            'RMW_FASTRTPS_PUBLICATION_MODE': 'AUTO',
        }
        if self.transport.server is not None:
            changes['ROS_STATIC_PEERS'] = None  # unicast peers without the server's say
        if self.openssl:
            changes['OPENSSL_CONF'] = self.openssl
        if self.transport.tls:  # a node discovery left out ends, to be started again
            changes[WATCH_VARIABLE] = watch_value(self.transport.server.port)
        return changes

    def server_command(self) -> list[str] | None:
        """fast-discovery-server with its profile, when this host runs the server."""
        if self.server_xml is None:
            return None
        return [discovery_server_executable(), '-x', self.server_xml]

    def server_environment(self) -> dict[str, str]:
        """The server's own profile as the default one too (it reads -x; this keeps a node
        profile from the environment out of it), and its transports only: fast-discovery-server
        turns Fast DDS's builtin ones on whenever it reads a file, and a secure server then
        listened on UDP 7411 too."""
        changes = {variable: self.server_xml for variable in PROFILE_VARIABLES}
        changes['FASTDDS_BUILTIN_TRANSPORTS'] = 'NONE'
        if self.openssl:
            changes['OPENSSL_CONF'] = self.openssl
        return changes

    def tools_script(self) -> str:
        lines = [
            '# ROS 2 command line tools on this host, seeing the whole pamiq graph:',
            f'#   . {os.path.join(self.directory, TOOLS_ENV)} && ros2 daemon stop && '
            'ros2 topic list',
        ]
        if self.listens:
            lines += [
                "# On the secure server's host this file's port serves one tool process a run:",
                '# start each further one with `pamiq tool -- ros2 ... --no-daemon` (a port of',
                '# its own).',
            ]
        changes = {
            **self.environment(TOOLS_PROCESS),
            TOOLS_DIRECTORY_VARIABLE: self.directory,
        }
        domain = os.environ.get('ROS_DOMAIN_ID')
        if domain:
            changes['ROS_DOMAIN_ID'] = domain
        for name, value in sorted(changes.items()):
            quoted = None if value is None else shlex.quote(value)
            lines.append(f'unset {name}' if quoted is None else f'export {name}={quoted}')
        return '\n'.join(lines) + '\n'

    def tool_ports(self) -> str:
        """What a tool process on the secure server's host needs to write its own profile
        (pamiq.ros.tool_ports): the ports it may take and this host's node profile's settings."""
        assert self.transport.server is not None and self.transport.tls is not None
        return json.dumps(
            {
                'highest': self.transport.server.port - HUB_PORTS - 1,
                'count': TOOL_PORTS,
                'server': asdict(self.transport.server),
                'tls': asdict(self.transport.tls),
                'weights_topic': self.weights_topic,
                'weights_mbit': self.transport.weights_mbit,
            },
            indent=1,
        )


def discovery_server_executable() -> str:
    """fast-discovery-server beside this Python (the wheels put it in the venv's bin), else on
    PATH (a ROS 2 install)."""
    beside = os.path.join(os.path.dirname(sys.executable), DISCOVERY_SERVER)
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which(DISCOVERY_SERVER)
    if found is None:
        raise TransportError(
            f'{DISCOVERY_SERVER} not found beside {sys.executable} or on PATH '
            '(it comes with Fast DDS: ros-jazzy-rmw-fastrtps-cpp, or a ROS 2 install)'
        )
    return found
