"""Private acting (issue 24): the acting path on a DDS domain of its own, the public face UDP-only.

A ROS tool started without the project's profile (`ros2 topic hz`, `ros2 param list`, rqt)
stores Fast DDS's default 1,000 ms health-check timeout in its shared-memory ports. A pamiq
participant with shared memory opens such a port lazily, in its send path and under the lock
every send of that participant takes; the open can sleep 333 ms, and rclpy's `publish()` keeps
the GIL meanwhile, so the whole node process stops (docs/troubleshooting.md).

With `PAMIQ_PRIVATE_ACTING=1`, which `pamiq up` and the launch file set on one host with Fast DDS
unless told `0` (pamiq.ros.transport.transport_settings), every pamiq node process gets two
participants:

- **acting** (the default context, so the node's own publishers, subscriptions, timers and
  services): on the private domain `acting_domain()`, with shared memory (64 MB segment).
  Tools never join that domain, so this participant never opens a tool's port.
- **public** (a second rclpy context on ROS_DOMAIN_ID): UDP on 127.0.0.1 only, no shared
  memory at all, so it never opens a tool's port either. It carries a node of the same name
  whose parameters mirror the acting node's (at start-up), a relay of every publisher of the
  acting node (the weights excepted) and an inlet for each of its subscriptions: what
  `ros2 topic hz`, `ros2 param list` and rqt look at, and what teleop publishes to.

How the two participants get different transports in one process (checked in the sources of
rmw_fastrtps_shared_cpp 8.4 and Fast DDS 2.14.5):

- rmw_fastrtps_shared_cpp `create_participant()` (participant.cpp) starts from the XML default
  participant QoS (loaded once per process) and, under ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST,
  sets `use_builtin_transports = false` and appends its own SHM (512 KB, 1,000 ms) and UDP
  transports. Under SYSTEM_DEFAULT (or SUBNET without peers) it leaves the transports as the
  profile gives them. rcl reads the range at `rcl_init`, i.e. per context.
- Fast DDS's `RTPSParticipantImpl` constructor calls `set_builtin_transports_from_env_var`
  when the participant still has `useBuiltinTransports`: FASTDDS_BUILTIN_TRANSPORTS is read
  per participant (NONE: no builtin transport; SHM?sockets_size=32MB: a SHM transport with a
  64 MB segment). rmw_fastrtps creates the participant at the context's first node.

So the profile config/fastdds_split.xml has loopback UDP as its only user transport, leaves
builtin transports on and does localhost-only discovery itself; each context is initialised
(and its first node created) with the range SYSTEM_DEFAULT and FASTDDS_BUILTIN_TRANSPORTS set
for that participant.

Requests from tools reach the acting node: a parameter set on the public node, and a call of
any of the acting node's own services (`set_active`, `save`, `reset`), which the public node
offers under the same name. They run on the acting node's executor (a guard condition wakes it),
so the node's callbacks never run in two threads; the public thread waits for the result.

What tools publish reaches the acting node's subscriptions (teleop on `cmd_vel`) through the
public node's subscriptions of the same topics, on topics no node of the graph publishes itself:
those reach it privately, and the public side would hear their relays too.

The process that starts the graph claims both domains on this host (`claim_domains`), so a
second graph that would use them the other way round is refused. Not done: the acting
participants' ports carry the default 1,000 ms health check (the builtin SHM transport has no
setting); only pamiq's own nodes open them, when one joins (start-up, a respawn), and such a
join can then cost one publish up to 333 ms.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
import copy
import fcntl
import os
import queue
import tempfile
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rclpy.node import Node

ENABLE_VARIABLE = 'PAMIQ_PRIVATE_ACTING'
DOMAIN_VARIABLE = 'PAMIQ_ACTING_DOMAIN'
SPLIT_PROFILE = 'fastdds_split.xml'
SHM_TRANSPORTS = 'SHM?sockets_size=32MB'  # Fast DDS sizes the SHM segment 2 x the sockets: 64 MB
UDP_ONLY = 'NONE'  # no builtin transport: the profile's loopback UDP alone
NOT_RELAYED = ('weights',)  # topic name parts the public node does not carry (29 MB blobs)
NOT_RELAYED_TOPICS = ('/rosout', '/parameter_events')  # the public node has its own
# The parameter services every node has: the public node answers those itself.
PARAMETER_SERVICES = (
    'describe_parameters',
    'get_parameter_types',
    'get_parameters',
    'get_type_description',
    'list_parameters',
    'set_parameters',
    'set_parameters_atomically',
)
FORWARD_TIMEOUT = 10.0  # seconds a tool's request waits for the acting node
# What a message that came in through the public side tells of its journey: nothing (rclpy's
# keys; a sequence number of 0 means "not said" to pamiq.ros.diagnostics.TransitLoss).
NO_MESSAGE_INFO = {
    'source_timestamp': 0,
    'received_timestamp': 0,
    'publication_sequence_number': 0,
    'reception_sequence_number': 0,
}


def enabled(env: Mapping[str, str] = os.environ) -> bool:
    return env.get(ENABLE_VARIABLE, '') not in ('', '0')


def public_domain(env: Mapping[str, str] = os.environ) -> int:
    return int(env.get('ROS_DOMAIN_ID') or 0)


def acting_domain(env: Mapping[str, str] = os.environ) -> int:
    """PAMIQ_ACTING_DOMAIN, or ROS_DOMAIN_ID + 100 (- 100 above 100): Fast DDS's ports allow
    domains up to 232."""
    if env.get(DOMAIN_VARIABLE):
        return int(env[DOMAIN_VARIABLE])
    public = public_domain(env)
    return public + 100 if public <= 100 else public - 100


class DomainInUse(RuntimeError):
    """Another pamiq graph on this host uses one of this graph's domains the other way round."""


CLAIMS_DIRECTORY = os.path.join(tempfile.gettempdir(), 'pamiq-domains')
_claims: list[int] = []  # held for the life of the process that started the graph


def claim_domains(env: Mapping[str, str] = os.environ) -> None:
    """Mark this graph's public and acting domains as used on this host while this process
    lives (a shared lock on a file per domain and role: graphs of the same two domains are one
    graph, e.g. a trainer and an actor started apart). Raises DomainInUse when another graph
    acts on our public domain or is seen on our acting one: tools would then see its acting
    nodes, and its nodes ours."""
    public, acting = public_domain(env), acting_domain(env)
    if public == acting:
        raise DomainInUse(f'{DOMAIN_VARIABLE}={acting} is ROS_DOMAIN_ID: choose another')
    if not os.path.isdir(CLAIMS_DIRECTORY):
        os.makedirs(CLAIMS_DIRECTORY, exist_ok=True)
        with contextlib.suppress(PermissionError):
            os.chmod(CLAIMS_DIRECTORY, 0o1777)  # every user's graphs claim here
    for role, domain, other in (('public', public, 'acting'), ('acting', acting, 'public')):
        if _held_elsewhere(_claim_path(other, domain)):
            raise DomainInUse(
                f'domain {domain} is the {other} domain of another pamiq graph on this host; '
                f'this graph would use it as its {role} domain. Give this graph another '
                f'ROS_DOMAIN_ID or {DOMAIN_VARIABLE}, or {ENABLE_VARIABLE}=0'
            )
        descriptor = os.open(_claim_path(role, domain), os.O_RDONLY | os.O_CREAT, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_SH)
        _claims.append(descriptor)


def _claim_path(role: str, domain: int) -> str:
    return os.path.join(CLAIMS_DIRECTORY, f'{role}-{domain}')


def _held_elsewhere(path: str) -> bool:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing drops a lock taken here
    return False


@contextlib.contextmanager
def participant_environment(shared_memory: bool) -> Iterator[None]:
    """Inside: a context initialised, and its first node created, gets shared memory or not."""
    names = ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'FASTDDS_BUILTIN_TRANSPORTS')
    saved = {name: os.environ.get(name) for name in names}
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
    os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = SHM_TRANSPORTS if shared_memory else UDP_ONLY
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class PublicFace:
    """The acting node's public side: same name, UDP-only, on ROS_DOMAIN_ID, spun in a thread
    of its own."""

    def __init__(self, node: Node) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from pamiq.ros import qos

        with participant_environment(shared_memory=False):
            self.context = rclpy.Context()
            self.context.init(domain_id=public_domain())
            self.node = rclpy.create_node(
                node.get_name(), namespace=node.get_namespace(), context=self.context
            )
        for name, parameter in node._parameters.items():
            if not self.node.has_parameter(name):
                descriptor = copy.copy(node._descriptors.get(name))
                if descriptor is not None:
                    descriptor.dynamic_typing = True
                    descriptor.read_only = False
                self.node.declare_parameter(name, parameter.value, descriptor)
        for publisher in list(node.publishers):
            topic = publisher.topic_name
            if any(part in topic for part in NOT_RELAYED) or topic in NOT_RELAYED_TOPICS:
                continue
            relay = qos.publisher(self.node, publisher.msg_type, topic, publisher.qos_profile)
            publisher.publish = _relaying(publisher.publish, relay.publish)
        self.acting = ActingCalls(node)
        for subscription in list(node.subscriptions):
            topic = subscription.topic_name
            if any(part in topic for part in NOT_RELAYED) or topic in NOT_RELAYED_TOPICS:
                continue
            self.node.create_subscription(
                subscription.msg_type,
                topic,
                self._inlet(subscription),
                subscription.qos_profile,
            )
        self.node.add_on_set_parameters_callback(self._forward_parameters)
        for service in list(node.services):
            if service.srv_name.rsplit('/', 1)[-1] not in PARAMETER_SERVICES:
                self.node.create_service(
                    service.srv_type, service.srv_name, self._forwarding(service)
                )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self._spin, name='public_face', daemon=True)
        self.thread.start()

    def _forward_parameters(self, parameters):
        """A tool's parameter set, made on the acting node; the public copy takes it only if
        the acting node did."""
        from rcl_interfaces.msg import SetParametersResult

        try:
            results = self.acting.call(lambda: self.acting.node.set_parameters(parameters))
        except TimeoutError as error:
            return SetParametersResult(successful=False, reason=str(error))
        refused = [r.reason for r in results if not r.successful]
        return SetParametersResult(successful=not refused, reason='; '.join(refused))

    def _forwarding(self, service):
        def forward(request, response):
            return self.acting.call(lambda: service.callback(request, response))

        return forward

    def _inlet(self, subscription):
        """What a tool publishes on a topic the acting node subscribes to (teleop on `cmd_vel`),
        handed to the node's callback on its executor; not where a node of the graph publishes
        that topic itself, which reaches it privately (and whose relay the public side hears).
        The message info of such a message says nothing (sequence number 0)."""
        from rclpy.subscription import Subscription

        takes_info = subscription._callback_type == Subscription.CallbackType.WithMessageInfo

        def deliver(message) -> None:
            if subscription.get_publisher_count() > 0:
                return
            if takes_info:
                self.acting.post(lambda: subscription.callback(message, NO_MESSAGE_INFO))
            else:
                self.acting.post(lambda: subscription.callback(message))

        return deliver

    def _spin(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.spin()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.executor.shutdown(timeout_sec=1.0)
            self.node.destroy_node()
            self.context.try_shutdown()


class ActingCalls:
    """Runs functions on the acting node's executor for another thread and hands back their
    result: a queue, and a guard condition of the acting context that wakes the executor."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.pending: queue.SimpleQueue = queue.SimpleQueue()
        self.wake = node.create_guard_condition(self._run_pending)

    def _run_pending(self) -> None:
        while True:
            try:
                function, done, outcome = self.pending.get_nowait()
            except queue.Empty:
                return
            try:
                outcome.append((True, function()))
            except Exception as error:  # handed to the caller, raised in its thread
                outcome.append((False, error))
            done.set()

    def post(self, function) -> None:
        """`function()` on the acting executor, not waited for (an exception is logged)."""

        def logged() -> None:
            try:
                function()
            except Exception as error:  # the node's callback failed on a tool's message
                self.node.get_logger().error(f'a message from the public side failed: {error!r}')

        self.pending.put((logged, threading.Event(), []))
        self.wake.trigger()

    def call(self, function):
        """`function()` on the acting executor; raises what it raised, or TimeoutError."""
        done, outcome = threading.Event(), []
        self.pending.put((function, done, outcome))
        self.wake.trigger()
        if not done.wait(FORWARD_TIMEOUT):
            raise TimeoutError(f'the acting node did not answer within {FORWARD_TIMEOUT:g} s')
        ok, value = outcome[0]
        if not ok:
            raise value
        return value


def _relaying(publish, relay):
    def both(message) -> None:
        publish(message)
        relay(message)

    return both
