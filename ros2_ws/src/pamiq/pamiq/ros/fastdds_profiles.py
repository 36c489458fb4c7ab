"""Fast DDS XML profiles for pamiq's network transports, written into the run directory.

Every element here was checked against the Fast DDS 2.14 that the ros-jazzy wheels ship, by
experiment between network namespaces (it reads FASTRTPS_DEFAULT_PROFILES_FILE; 3.x reads
FASTDDS_DEFAULT_PROFILES_FILE, and was not tried):

- Shared memory with a 64 MB segment between the nodes of one host, as in the loopback profile:
  frames up to full HD and the ~29 MB weights blob travel whole.
- UDPv4 on the host's interfaces (`lan`), or TCPv4 with TLS (`secure`): with TLS, no UDP
  transport exists at all, so nothing leaves the host in clear.
- A discovery server (`SERVER`) and its clients (`SUPER_CLIENT`s: they hear of every endpoint),
  so no multicast is needed; the server's GUID prefix is fixed here, since 2.x clients name it.
- A flow controller for the weights writer only: a 29 MB sample sent at the speed of the local
  interface floods a slower link's queue, and Fast DDS's repairs flood it again (at 20 Mbit/s
  it did not arrive in 100 s; bench/weights_over_link.py).

TLS on the wheels' Fast DDS 2.14 verifies the peer only on the side that connects: the verify
mode from the XML is set on a socket after the accepting side's handshake, and only the first
of VERIFY_PEER / VERIFY_FAIL_IF_NO_PEER_CERT is applied. A listening participant would admit a
peer with no certificate or another CA's. `openssl_config` closes that: OpenSSL (1.1.1 in the
wheels) applies its `system_default` section to every TLS context it creates, so each pamiq
process gets verify mode Peer,Require on the context itself, before any handshake.
"""

from __future__ import annotations

from dataclasses import dataclass
import xml.etree.ElementTree as ET

# fast-discovery-server's GUID prefix for server id 0 ("DS" 00 "_EPROSIMA"): a 2.x client
# names its server by prefix.
SERVER_PREFIX = '44.53.00.5f.45.50.52.4f.53.49.4d.41'
SHM_SEGMENT = 64 * 1024 * 1024
# Opening a shared-memory port checks that its listeners are alive and, on an idle port, sleeps
# a third of this timeout first (Fast DDS 2.x and 3.x, eProsima/Fast-DDS#6535): with the default
# 1000 ms every participant that joins stalled a publisher of the graph ~333 ms. 150 ms: a 50 ms
# stall at most, while a listener still has 150 ms to show it is alive before its port is redone.
SHM_HEALTH_CHECK_MS = 150
SOCKET_BUFFER = 8 * 1024 * 1024
FLOW_CONTROLLER = 'pamiq_weights_rate'
# A flow controller hands out max_bytes_per_period each period; its share also caps the
# fragment size, so a short period keeps the fragments and the bursts small.
FLOW_PERIOD_MS = 10
MIN_TLS = 'TLSv1.2'
# TLS 1.2 or newer, no compression (CRIME); OpenSSL's interoperability workarounds.
TLS_OPTIONS = (
    'DEFAULT_WORKAROUNDS', 'NO_COMPRESSION', 'NO_SSLV2', 'NO_SSLV3', 'NO_TLSV1', 'NO_TLSV1_1',
)  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    """A host and port: the discovery server's address as a client reaches it."""

    host: str
    port: int

    def __str__(self) -> str:
        return f'{self.host}:{self.port}'


@dataclass(frozen=True)
class TlsFiles:
    """A host's certificate folder (host_certs.check_host_certs says they belong together)."""

    ca: str
    cert: str
    key: str


def element(tag: str, *children: ET.Element, text: object = None, **attributes: str) -> ET.Element:
    node = ET.Element(tag, attributes)
    if text is not None:
        node.text = str(text)
    node.extend(children)
    return node


def document(*children: ET.Element, comment: str) -> str:
    root = element('profiles', xmlns='http://www.eprosima.com')
    root.append(ET.Comment(f' {comment} '))
    root.extend(children)
    ET.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding='unicode') + '\n'
    )


def transport(transport_id: str, kind: str, *settings: ET.Element) -> ET.Element:
    return element(
        'transport_descriptor',
        element('transport_id', text=transport_id),
        element('type', text=kind),
        *settings,
    )


def socket_buffers() -> list[ET.Element]:
    return [
        element('sendBufferSize', text=SOCKET_BUFFER),
        element('receiveBufferSize', text=SOCKET_BUFFER),
    ]


def shm_transport() -> ET.Element:
    return transport(
        'shm',
        'SHM',
        element('segment_size', text=SHM_SEGMENT),
        element('healthy_check_timeout_ms', text=SHM_HEALTH_CHECK_MS),
    )


def udp_transport() -> ET.Element:
    return transport('udp', 'UDPv4', *socket_buffers())


def tls_transport(tls: TlsFiles, listening_port: int | None) -> ET.Element:
    """TCPv4 with TLS, both sides verified against the run's CA.

    `listening_port`: accept connections there (above the ephemeral ports, see
    pamiq.ros.transport); None: only connect (a host behind NAT, which nobody can reach).
    """
    listening = []
    if listening_port is not None:
        listening = [element('listening_ports', element('port', text=listening_port))]
    return transport(
        'tls',
        'TCPv4',
        *socket_buffers(),
        *listening,
        # TLS authenticates every record; Fast DDS's own CRC of each message, computed byte by
        # byte (TCPTransportInterface::calculate_crc), would only add a loop over 29 MB.
        element('calculate_crc', text='false'),
        element('check_crc', text='false'),
        element(
            'tls',
            element('verify_file', text=tls.ca),
            element('cert_chain_file', text=tls.cert),
            element('private_key_file', text=tls.key),
            element(
                'verify_mode',
                element('verify', text='VERIFY_PEER'),
                element('verify', text='VERIFY_FAIL_IF_NO_PEER_CERT'),
            ),
            element('options', *(element('option', text=o) for o in TLS_OPTIONS)),
        ),
    )


def locator(kind: str, address: str, port: int) -> ET.Element:
    if kind == 'udp':
        return element(
            'locator',
            element('udpv4', element('address', text=address), element('port', text=port)),
        )
    return element(
        'locator',
        element(
            'tcpv4',
            element('address', text=address),
            element('physical_port', text=port),
            element('port', text=port),
        ),
    )


def flow_controllers(weights_mbit: float | None) -> list[ET.Element]:
    if not weights_mbit:
        return []
    per_period = max(1, int(weights_mbit * 1e6 / 8 * FLOW_PERIOD_MS / 1000))
    return [
        element(
            'flow_controller_descriptor_list',
            element(
                'flow_controller_descriptor',
                element('name', text=FLOW_CONTROLLER),
                element('scheduler', text='FIFO'),
                element('max_bytes_per_period', text=per_period),
                element('period_ms', text=FLOW_PERIOD_MS),
            ),
        )
    ]


def weights_writer(weights_topic: str, weights_mbit: float | None) -> list[ET.Element]:
    """The weights writer's profile (rmw_fastrtps looks a writer's profile up by its topic's
    full name): asynchronous, through the flow controller. rmw keeps it only with
    RMW_FASTRTPS_PUBLICATION_MODE=AUTO; every other writer stays synchronous, Fast DDS's default
    and rmw's."""
    if not weights_mbit:
        return []
    return [
        element(
            'data_writer',
            element(
                'qos',
                element(
                    'publishMode',
                    element('kind', text='ASYNCHRONOUS'),
                    element('flow_controller_name', text=FLOW_CONTROLLER),
                ),
            ),
            profile_name=weights_topic,
        )
    ]


def discovery(protocol: str, servers: list[ET.Element]) -> ET.Element:
    config = [element('discoveryProtocol', text=protocol)]
    if servers:
        config.append(
            element(
                'discoveryServersList',
                element(
                    'RemoteServer',
                    element('metatrafficUnicastLocatorList', *servers),
                    prefix=SERVER_PREFIX,
                ),
            )
        )
    return element('discovery_config', *config)


def participant(
    name: str,
    transports: list[str],
    builtin: list[ET.Element],
    extra: list[ET.Element],
    prefix: str = '',
) -> ET.Element:
    rtps = [element('prefix', text=prefix)] if prefix else []
    if builtin:
        rtps.append(element('builtin', *builtin))
    rtps.extend(extra)
    rtps.append(element('userTransports', *(element('transport_id', text=t) for t in transports)))
    rtps.append(element('useBuiltinTransports', text='false'))
    return element(
        'participant', element('rtps', *rtps), profile_name=name, is_default_profile='true'
    )


def node_profile(
    *,
    server: Endpoint | None,
    tls: TlsFiles | None,
    listening_port: int | None,
    weights_topic: str,
    weights_mbit: float | None,
) -> str:
    """The default participant profile of every pamiq process on a host (ROS tools too).

    `server`: the discovery server to use (None: multicast discovery, `lan` only). `tls`: TCP
    with TLS instead of UDP (needs `server`); `listening_port` as in `tls_transport`.

    With a server every participant is a SUPER_CLIENT: a plain CLIENT hears only of endpoints
    its own match, and the trainer finds actors by their topics (it would never see
    actor0/agent/step), ROS tools by every topic.
    """
    kind = 'tcp' if tls else 'udp'
    descriptors = [shm_transport(), tls_transport(tls, listening_port) if tls else udp_transport()]
    builtin = []
    if server is not None:
        builtin.append(discovery('SUPER_CLIENT', [locator(kind, server.host, server.port)]))
    if tls:
        mode = f'TCP + TLS, discovery server {server}'
    elif server:
        mode = f'UDP, discovery server {server}'
    else:
        mode = 'UDP on every interface, multicast discovery'
    return document(
        element('transport_descriptors', *descriptors),
        participant(
            'pamiq_node',
            ['shm', 'tls' if tls else 'udp'],
            builtin,
            flow_controllers(weights_mbit),
        ),
        *weights_writer(weights_topic, weights_mbit),
        comment=f'pamiq node profile (pamiq up): shared memory between local nodes; {mode}',
    )


def server_profile(port: int, tls: TlsFiles | None) -> str:
    """fast-discovery-server's profile: listens on every interface at `port` (UDP, or TCP with
    TLS), with the prefix the clients name."""
    kind = 'tcp' if tls else 'udp'
    descriptors = [tls_transport(tls, port) if tls else udp_transport()]
    return document(
        element('transport_descriptors', *descriptors),
        participant(
            'pamiq_discovery_server',
            ['tls' if tls else 'udp'],
            [
                discovery('SERVER', []),
                element('metatrafficUnicastLocatorList', locator(kind, '0.0.0.0', port)),
            ],
            [],
            prefix=SERVER_PREFIX,
        ),
        comment='pamiq discovery server profile, written by pamiq up (discovery:=server)',
    )


def openssl_config() -> str:
    """OPENSSL_CONF for every process of a secure graph: every TLS context requires and checks
    the peer's certificate, on the accepting side too (see the module's docstring)."""
    return (
        '# Written by pamiq up (secure:=true): every TLS context of this process verifies its\n'
        "# peer and requires a certificate, whichever side accepted. Fast DDS 2.14's XML alone\n"
        '# leaves the accepting side unverified.\n'
        'openssl_conf = pamiq_openssl\n\n'
        '[pamiq_openssl]\nssl_conf = pamiq_ssl\n\n'
        '[pamiq_ssl]\nsystem_default = pamiq_tls\n\n'
        f'[pamiq_tls]\nVerifyMode = Peer,Require\nMinProtocol = {MIN_TLS}\n'
    )
