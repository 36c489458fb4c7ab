"""Transport arguments across hosts: what is refused and why, and what each host's processes
get (profiles, environment, the discovery server's command). The profiles at work, over real
links: tests/test_multihost.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

from pamiq.ros.fastdds_profiles import FLOW_CONTROLLER, SERVER_PREFIX
from pamiq.ros.tool_ports import read_environment_script, tool_environment
from pamiq.ros.transport import (
    EPHEMERAL_PORTS_END,
    HUB_PORTS,
    PAMIQ_PROCESS,
    PROFILE_VARIABLES,
    TLS_SERVER_PORT,
    TOOL_PORTS,
    TOOLS_DIRECTORY_VARIABLE,
    TOOLS_PROCESS,
    UDP_SERVER_PORT,
    NetworkPlan,
    TransportError,
    apply_environment,
    parse_transport,
)
from pamiq.tools.certs import make_certs
from pamiq.tools.graph import BringupArgs, BringupError, graph
from pamiq.tools.supervisor import Supervisor
import pytest

NS = '{http://www.eprosima.com}'


def transport(network='lan', discovery='', secure='false', certs='', weights_mbit='', given=True):
    return parse_transport(network, discovery, secure, certs, weights_mbit, given)


def texts(path: str, tag: str) -> list[str]:
    return [node.text for node in ET.parse(path).iter(NS + tag)]


@pytest.mark.parametrize(
    ('arguments', 'message'),
    [
        ({'network': 'wan'}, 'network:=wan is not one of loopback, lan'),
        ({'secure': 'yes'}, 'secure:=yes is not true or false'),
        ({'secure': 'true'}, 'secure:=true needs a discovery server'),
        ({'secure': 'true', 'discovery': 'server'}, 'needs certs:='),
        ({'certs': '/tmp'}, 'certs:= is for secure:=true'),
        ({'discovery': 'server', 'network': 'loopback'}, 'network:=loopback keeps DDS'),
        ({'discovery': '10.0.0.1:http'}, "'http' is not a port number"),
        ({'discovery': '10.0.0.1:70000'}, "'70000' is not a port number"),
        ({'discovery': ':11811'}, 'names no host'),
        ({'weights_mbit': '-3'}, 'is not a rate in Mbit/s'),
        ({'weights_mbit': 'fast'}, 'is not a rate in Mbit/s'),
        ({'weights_mbit': '18', 'network': 'loopback'}, 'paces weights across hosts'),
    ],
)
def test_transport_arguments_that_cannot_work_are_refused_with_the_reason(arguments, message):
    with pytest.raises(TransportError, match=message):
        transport(**arguments)


def test_a_secure_port_among_the_ephemeral_ones_is_refused_and_certs_are_checked(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'certs'), ['trainer'])
    with pytest.raises(TransportError, match='the port must be above 61287'):
        transport(discovery='server:11811', secure='true', certs=trainer)
    os.chmod(os.path.join(trainer, 'host.key'), 0o640)
    with pytest.raises(TransportError, match='readable by others'):
        transport(discovery='server', secure='true', certs=trainer)


def test_discovery_names_a_server_here_or_there_with_its_default_port():
    here = transport(discovery='server')
    assert (here.serves, here.server.host, here.server.port) == (
        True,
        '127.0.0.1',
        UDP_SERVER_PORT,
    )
    there = transport(discovery='10.1.2.3')
    assert (there.serves, str(there.server)) == (False, f'10.1.2.3:{UDP_SERVER_PORT}')
    assert str(transport(discovery='localhost:7400').server) == '127.0.0.1:7400'
    assert transport(discovery='server:12000').server.port == 12000


def test_certs_may_start_with_a_tilde_the_shell_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    make_certs(str(tmp_path / 'pamiq-certs'), ['trainer'])
    args = BringupArgs.from_strings(
        {'discovery': 'server', 'secure': 'true', 'certs': '~/pamiq-certs/trainer'}
    )
    assert args.transport().tls.ca == str(tmp_path / 'pamiq-certs' / 'trainer' / 'ca.crt')


def test_launch_arguments_refuse_bad_transports_and_discovery_chooses_the_network(tmp_path):
    args = BringupArgs.from_strings({'discovery': 'server', 'run_dir': str(tmp_path)})
    assert args.network == 'lan'  # and a launch command built from it says so
    assert args.transport().serves
    with pytest.raises(BringupError, match='secure:=true needs a discovery server'):
        BringupArgs.from_strings({'secure': 'true'})
    assert BringupArgs.from_strings({}).transport().network == 'loopback'


def test_lan_hosts_share_one_profile_udp_and_shared_memory_multicast_discovery(tmp_path):
    plan = NetworkPlan(transport(), str(tmp_path), ['world', 'agent'], 'pamiq')
    env = plan.environment('agent')
    profile = env['FASTRTPS_DEFAULT_PROFILES_FILE']
    assert all(env[v] == profile for v in PROFILE_VARIABLES)
    assert plan.environment('world')['FASTRTPS_DEFAULT_PROFILES_FILE'] == profile
    assert texts(profile, 'type') == ['SHM', 'UDPv4']
    assert texts(profile, 'useBuiltinTransports') == ['false']
    assert texts(profile, 'segment_size') == [str(64 * 1024 * 1024)]
    assert not texts(profile, 'discoveryProtocol')  # multicast: Fast DDS's SIMPLE
    # rmw would add UDP on every interface for LOCALHOST, and a server from the environment
    # would override the profile: neither reaches the nodes.
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'SUBNET'
    assert env['ROS_DISCOVERY_SERVER'] is None and env['RMW_IMPLEMENTATION'] == 'rmw_fastrtps_cpp'
    assert 'ROS_STATIC_PEERS' not in env  # a LAN without multicast may list its peers
    assert 'OPENSSL_CONF' not in env and plan.server_command() is None
    with pytest.raises(TransportError, match="no DDS profile for process 'trainer'"):
        plan.environment('trainer')


def test_weights_mbit_paces_only_the_weights_writer(tmp_path):
    plan = NetworkPlan(transport(weights_mbit='18'), str(tmp_path), ['trainer'], 'pamiq')
    root = ET.parse(plan.profiles['trainer']).getroot()
    (writer,) = root.iter(NS + 'data_writer')
    assert writer.get('profile_name') == '/pamiq/trainer/weights'
    assert [n.text for n in writer.iter(NS + 'kind')] == ['ASYNCHRONOUS']
    assert [n.text for n in writer.iter(NS + 'flow_controller_name')] == [FLOW_CONTROLLER]
    # 18 Mbit/s in 10 ms periods: 22,500 bytes each.
    assert [n.text for n in root.iter(NS + 'max_bytes_per_period')] == ['22500']
    assert [n.text for n in root.iter(NS + 'period_ms')] == ['10']
    # rmw keeps the profile's publish mode only when told AUTO.
    assert plan.environment('trainer')['RMW_FASTRTPS_PUBLICATION_MODE'] == 'AUTO'
    other = NetworkPlan(transport(weights_mbit='18'), str(tmp_path / 'o'), ['trainer'], 'robot')
    assert b'"/robot/trainer/weights"' in open(other.profiles['trainer'], 'rb').read()


def test_the_server_host_runs_fast_discovery_server_and_every_process_is_a_super_client(tmp_path):
    plan = NetworkPlan(transport(discovery='server'), str(tmp_path), ['trainer'], 'pamiq')
    command = plan.server_command()
    assert os.path.basename(command[0]) == 'fast-discovery-server' and os.access(
        command[0], os.X_OK
    )
    assert command[1:] == ['-x', plan.server_xml]
    server = ET.parse(plan.server_xml).getroot()
    assert texts(plan.server_xml, 'discoveryProtocol') == ['SERVER']
    assert texts(plan.server_xml, 'prefix') == [SERVER_PREFIX]
    assert [n.text for n in server.iter(NS + 'port')] == [str(UDP_SERVER_PORT)]
    node = plan.profiles['trainer']
    assert texts(node, 'discoveryProtocol') == ['SUPER_CLIENT']
    assert texts(node, 'address') == ['127.0.0.1']
    (remote,) = ET.parse(node).getroot().iter(NS + 'RemoteServer')
    assert remote.get('prefix') == SERVER_PREFIX
    assert plan.environment('trainer')['ROS_STATIC_PEERS'] is None
    assert plan.server_environment()['FASTRTPS_DEFAULT_PROFILES_FILE'] == plan.server_xml
    client = NetworkPlan(transport(discovery='10.0.0.7'), str(tmp_path / 'c'), ['agent'], 'pamiq')
    assert client.server_command() is None
    assert texts(client.profiles['agent'], 'address') == ['10.0.0.7']


def test_secure_hub_processes_listen_below_the_servers_port_and_others_only_connect(tmp_path):
    trainer, actor = make_certs(str(tmp_path / 'certs'), ['trainer', 'actor'])
    secure = {'secure': 'true'}
    hub = NetworkPlan(
        transport(discovery='server', certs=trainer, **secure),
        str(tmp_path / 'hub'),
        ['trainer', 'actor0/agent'],
        'pamiq',
    )
    ports = {
        name: texts(hub.profiles[name], 'port')[0]
        for name in (TOOLS_PROCESS, PAMIQ_PROCESS, 'trainer', 'actor0/agent')
    }
    expected = [TLS_SERVER_PORT - 1, TLS_SERVER_PORT - 2, TLS_SERVER_PORT - 3, TLS_SERVER_PORT - 4]
    assert list(ports.values()) == [str(p) for p in expected]
    assert hub.profiles['actor0/agent'].endswith('actor0_agent.xml')
    profile = hub.profiles['trainer']
    assert texts(profile, 'type') == ['SHM', 'TCPv4']  # no UDP: nothing leaves in clear
    assert texts(profile, 'verify') == ['VERIFY_PEER', 'VERIFY_FAIL_IF_NO_PEER_CERT']
    assert texts(profile, 'verify_file') == [os.path.join(trainer, 'ca.crt')]
    assert texts(profile, 'private_key_file') == [os.path.join(trainer, 'host.key')]
    env = hub.environment('trainer')
    conf = open(env['OPENSSL_CONF']).read()
    assert 'system_default' in conf and 'VerifyMode = Peer,Require' in conf
    assert hub.server_environment()['OPENSSL_CONF'] == env['OPENSSL_CONF']
    assert hub.server_environment()['FASTDDS_BUILTIN_TRANSPORTS'] == 'NONE'  # no UDP beside
    assert texts(hub.server_xml, 'type') == ['TCPv4']
    other = NetworkPlan(
        transport(discovery=f'10.0.0.1:{TLS_SERVER_PORT}', certs=actor, **secure),
        str(tmp_path / 'other'),
        ['actor0/world', 'actor0/agent'],
        'pamiq',
    )
    assert other.profiles['actor0/world'] == other.profiles['actor0/agent']
    assert not texts(other.profiles['actor0/agent'], 'listening_ports')  # connects only
    assert texts(other.profiles['actor0/agent'], 'physical_port') == [str(TLS_SERVER_PORT)]


def test_a_restarted_process_on_a_secure_hub_listens_on_a_port_nobody_used(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'certs'), ['trainer'])
    secure = transport(discovery='server', secure='true', certs=trainer)
    hub = NetworkPlan(secure, str(tmp_path / 'hub'), ['trainer', 'recorder'], 'pamiq')

    def port(env: dict) -> int:
        return int(texts(env['FASTRTPS_DEFAULT_PROFILES_FILE'], 'port')[0])

    first = {name: port(hub.environment(name)) for name in hub.names}
    restarts = [port(hub.restart_environment('trainer')) for _ in range(HUB_PORTS)]
    spares = HUB_PORTS - len(hub.names)
    # Each restart a port that no process and no earlier restart has used, in the hub's range,
    # until the spares are used up; then they come round again.
    assert len(set(restarts[:spares])) == spares
    assert not set(restarts) & set(first.values())
    assert all(TLS_SERVER_PORT - HUB_PORTS <= p < TLS_SERVER_PORT for p in restarts)
    assert restarts[spares] == restarts[0]
    env = hub.restart_environment('recorder')
    assert env['OPENSSL_CONF'] == hub.environment('recorder')['OPENSSL_CONF']
    assert env['FASTDDS_DEFAULT_PROFILES_FILE'] == env['FASTRTPS_DEFAULT_PROFILES_FILE']
    # Without listening ports (a client host), a restart is started as before.
    client = NetworkPlan(transport(discovery='10.0.0.7'), str(tmp_path / 'c'), ['agent'], 'pamiq')
    assert client.restart_environment('agent') == client.environment('agent')


def test_too_many_processes_on_a_secure_hub_are_refused(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'certs'), ['trainer'])
    secure = transport(discovery='server', secure='true', certs=trainer)
    names = [f'actor{i}/agent' for i in range(31)]
    with pytest.raises(TransportError, match='33 processes'):
        NetworkPlan(secure, str(tmp_path / 'hub'), names, 'pamiq')


def test_the_ros_tools_file_sets_and_unsets_what_the_nodes_get(tmp_path):
    directory = str(tmp_path / 'a run dir' / 'dds')  # a space: the values are quoted
    plan = NetworkPlan(transport(discovery='server'), directory, ['trainer'], 'pamiq')
    assert read_environment_script(plan.tools_env) == {
        **plan.environment(TOOLS_PROCESS),
        TOOLS_DIRECTORY_VARIABLE: directory,
        'ROS_DOMAIN_ID': os.environ['ROS_DOMAIN_ID'],
    }
    sourced = subprocess.run(
        ['sh', '-c', f'. "{plan.tools_env}" && echo "${TOOLS_DIRECTORY_VARIABLE}"'],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert sourced.stdout.strip() == directory


def profile_port(env: dict) -> int:
    return int(texts(env['FASTRTPS_DEFAULT_PROFILES_FILE'], 'port')[0])


def test_each_tool_on_a_secure_hub_listens_on_a_port_no_earlier_tool_had(tmp_path):
    trainer, actor = make_certs(str(tmp_path / 'certs'), ['trainer', 'actor'])
    secure = transport(discovery='server', secure='true', certs=trainer)
    hub = NetworkPlan(secure, str(tmp_path / 'hub'), ['trainer', 'recorder'], 'pamiq')
    nodes = {profile_port(hub.environment(name)) for name in hub.names}
    # Tools starting at once (threads: each opens the counter on its own, as processes do).
    with ThreadPoolExecutor(8) as pool:
        taken = [profile_port(env) for env in pool.map(tool_environment, [hub.directory] * 32)]
    taken += [profile_port(tool_environment(hub.directory)) for _ in range(TOOL_PORTS - 32)]
    assert len(set(taken)) == TOOL_PORTS
    assert not set(taken) & nodes
    assert all(EPHEMERAL_PORTS_END < p < TLS_SERVER_PORT - HUB_PORTS for p in taken)
    # Then they come round again, with a warning.
    said = []
    env = tool_environment(hub.directory, say=said.append)
    assert profile_port(env) == max(taken) and 'have all been used' in said[0]
    # Each tool: the tools' environment and profile but for the port.
    tools = read_environment_script(hub.tools_env)
    assert {k: v for k, v in env.items() if k not in PROFILE_VARIABLES} == {
        k: v for k, v in tools.items() if k not in PROFILE_VARIABLES
    }
    first = profile_port(hub.environment(TOOLS_PROCESS))
    with open(hub.profiles[TOOLS_PROCESS]) as stream:
        expected = stream.read().replace(f'<port>{first}</port>', f'<port>{max(taken)}</port>')
    with open(env['FASTRTPS_DEFAULT_PROFILES_FILE']) as stream:
        assert stream.read() == expected
    # A host that only connects out has no port to take: its tools file as written.
    other = NetworkPlan(
        transport(discovery=f'10.0.0.1:{TLS_SERVER_PORT}', secure='true', certs=actor),
        str(tmp_path / 'other'),
        ['actor0/agent'],
        'pamiq',
    )
    assert tool_environment(other.directory) == read_environment_script(other.tools_env)
    with pytest.raises(TransportError, match=r'ros2_tools\.env not found'):
        tool_environment(str(tmp_path / 'nowhere'))


def test_pamiq_tool_runs_a_command_with_its_own_port_and_pamiq_ctl_takes_one(tmp_path):
    (trainer,) = make_certs(str(tmp_path / 'certs'), ['trainer'])
    secure = transport(discovery='server', secure='true', certs=trainer)
    hub = NetworkPlan(secure, str(tmp_path / 'hub'), ['trainer'], 'pamiq')
    show = 'import os; print(os.environ["FASTRTPS_DEFAULT_PROFILES_FILE"])'
    pamiq = [sys.executable, '-m', 'pamiq.tools.cli']

    def run(*arguments: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*pamiq, *arguments], capture_output=True, text=True, env={**os.environ, **env}
        )

    first = run('tool', '--dds', hub.directory, '--', sys.executable, '-c', show)
    second = run('tool', '--', sys.executable, '-c', show, PAMIQ_TOOLS_DIR=hub.directory)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    ports = [
        profile_port({'FASTRTPS_DEFAULT_PROFILES_FILE': p.stdout.strip()}) for p in (first, second)
    ]
    assert ports == [TLS_SERVER_PORT - HUB_PORTS - 1, TLS_SERVER_PORT - HUB_PORTS - 2]
    # pamiq's own tools take the next one themselves.
    take = 'from pamiq.tools.cli import take_tool_port; take_tool_port(); ' + show
    ctl = subprocess.run(
        [sys.executable, '-c', take], capture_output=True, text=True,
        env={**os.environ, TOOLS_DIRECTORY_VARIABLE: hub.directory},
    )  # fmt: skip
    assert profile_port({'FASTRTPS_DEFAULT_PROFILES_FILE': ctl.stdout.strip()}) == ports[1] - 1
    # What cannot work says why.
    no_command = run('tool', '--dds', hub.directory)
    assert no_command.returncode == 2 and 'name the command to run' in no_command.stderr
    environment = {k: v for k, v in os.environ.items() if k != TOOLS_DIRECTORY_VARIABLE}
    no_folder = subprocess.run(
        [*pamiq, 'tool', '--', 'true'], capture_output=True, text=True, env=environment
    )
    assert no_folder.returncode == 2 and 'no dds folder' in no_folder.stderr


def test_apply_environment_sets_and_removes():
    env = apply_environment({'A': '1', 'B': '2'}, {'A': None, 'C': '3'})
    assert env == {'B': '2', 'C': '3'}


def test_the_supervisor_starts_the_server_first_and_gives_each_node_its_environment(tmp_path):
    args = BringupArgs.from_strings(
        {'agent': 'random', 'discovery': 'server', 'run_dir': str(tmp_path)}
    )
    specs = graph(args)
    plan = NetworkPlan(args.transport(), str(tmp_path / 'dds'), [s.label for s in specs], 'pamiq')
    children = Supervisor(args, specs, plan=plan).children
    assert [c.spec.name for c in children] == [
        'discovery_server',
        'world',
        'osc_actuator',
        'agent',
    ]
    assert children[0].command == plan.server_command() and children[0].spec.respawn
    assert children[0].env == plan.server_environment()
    assert children[3].env == plan.environment('agent')
