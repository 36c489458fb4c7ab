"""Bring up the pamiq graph: ros2 launch pamiq bringup.launch.py [world:=doom|vrchat] ...

The node list comes from pamiq.tools.graph, the same definition `pamiq up` uses without launch,
and so do the respawn rule and the DDS transport settings (across hosts: the profiles written
into run_dir/dds and, with discovery:=server, the Fast DDS discovery server).
"""

import os

from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    LogInfo,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    TimerAction,
    UnsetEnvironmentVariable,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from pamiq.ros.isolation import WATCH_VARIABLE
from pamiq.ros.transport import (
    DISCOVERY_SERVER,
    SERVER_PROCESS,
    describe_settings,
    this_host_transport,
)
from pamiq.tools.graph import (
    LAUNCH_ARGUMENTS,
    BringupArgs,
    NodeSpec,
    graph,
    network_plan,
    respawns,
)
from pamiq.tools.supervisor import RESPAWN_DELAY

from launch import LaunchDescription


def node_action(spec, args, env, restart_env=None):
    """One node (with `env` added to its environment: its DDS profile across hosts; once it has
    exited, `restart_env()`'s, when given: on the secure server's host a new listening port)."""
    node = Node(
        package='pamiq',
        executable=spec.executable,
        name=spec.name,
        namespace=spec.full_namespace(args.namespace),
        parameters=[args.params_file, spec.parameters],
        remappings=list(spec.remappings),
        output='screen',
        additional_env=env,
        # Let the actuator send its reset and the trainer write its checkpoint before launch
        # escalates to SIGTERM.
        sigterm_timeout=str(spec.stop_timeout),
    )
    return respawning(
        spec,
        node,
        lambda: node_action(spec, args, restart_env() if restart_env else env, restart_env),
    )


def respawning(spec, process, again):
    """`process`, and the handler that starts `again()` after it exits, where it respawns.

    launch's own `respawn=True` restarts a node after any exit, a clean one too; pamiq restarts
    only after an abnormal exit of a respawning node, or any node's that discovery left out
    (pamiq.tools.graph.respawns), in launch as in `pamiq up`.
    """

    def exited(event, context):
        if context.is_shutdown or not respawns(spec, event.returncode):
            return None
        return [TimerAction(period=RESPAWN_DELAY, actions=again())]

    return [process, RegisterEventHandler(OnProcessExit(target_action=process, on_exit=exited))]


def server_action(command, env):
    """The Fast DDS discovery server of discovery:=server, respawned as the trainer is."""
    spec = NodeSpec(DISCOVERY_SERVER, SERVER_PROCESS, respawn=True)
    process = ExecuteProcess(cmd=command, name=SERVER_PROCESS, output='screen', additional_env=env)
    return respawning(spec, process, lambda: server_action(command, env))


def launch_nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    # As `pamiq up`, only what the user named: discovery:= and secure:= then choose the network
    # themselves, while a network:=loopback named with them is refused.
    named = {argument.split(':=', 1)[0] for argument in context.argv}
    values = {
        name: value
        for name, value in values.items()
        if name in named or value != LAUNCH_ARGUMENTS[name][0]
    }
    args = BringupArgs.from_strings(values)
    os.makedirs(args.run_dir, exist_ok=True)
    specs = graph(args)
    plan = network_plan(args, specs)
    if plan is None:  # this host only
        settings = this_host_transport(os.environ)
        actions = [SetEnvironmentVariable(name, value) for name, value in settings.items()]
        actions.append(LogInfo(msg=f'DDS transport: {describe_settings(os.environ, settings)}'))
        return actions + [a for spec in specs for a in node_action(spec, args, {})]
    shared = plan.shared_environment()
    if len(specs) < 2:
        # A node alone on its host (a trainer whose actors start later) finds nobody for a
        # while by design; `pamiq up` keeps it company with its own participant, launch cannot.
        shared.pop(WATCH_VARIABLE, None)
    actions = [
        UnsetEnvironmentVariable(name) if value is None else SetEnvironmentVariable(name, value)
        for name, value in shared.items()
    ]
    server = plan.server_command()
    if server:
        actions += server_action(server, plan.server_environment())
    return actions + [
        action
        for spec in specs
        for action in node_action(
            spec,
            args,
            plan.profile_environment(spec.label),
            lambda label=spec.label: plan.restart_profile_environment(label),
        )
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in LAUNCH_ARGUMENTS.items()
        ]
        + [OpaqueFunction(function=launch_nodes)]
    )
