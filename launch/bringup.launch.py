"""Bring up the pamiq graph: ros2 launch pamiq bringup.launch.py [world:=doom|vrchat] ...

The node list comes from pamiq.tools.graph, the same definition `pamiq up` uses without launch,
and so do the respawn rule and the DDS transport settings.
"""

import os

from launch.actions import (
    DeclareLaunchArgument,
    OpaqueFunction,
    RegisterEventHandler,
    SetEnvironmentVariable,
    TimerAction,
)
from launch.event_handlers import OnProcessExit
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from pamiq.ros.transport import transport_settings
from pamiq.tools.graph import LAUNCH_ARGUMENTS, BringupArgs, graph, respawns
from pamiq.tools.supervisor import RESPAWN_DELAY

from launch import LaunchDescription


def node_action(spec, args):
    """One node, and for a respawning node the handler that starts it again.

    launch's own `respawn=True` restarts a node after any exit, a clean one too; pamiq restarts
    only after an abnormal exit (pamiq.tools.graph.respawns), in launch as in `pamiq up`.
    """
    node = Node(
        package='pamiq',
        executable=spec.executable,
        name=spec.name,
        namespace=spec.full_namespace(args.namespace),
        parameters=[args.params_file, spec.parameters],
        remappings=list(spec.remappings),
        output='screen',
        # Let the actuator send its reset before launch escalates to SIGTERM.
        sigterm_timeout='5',
    )
    if not spec.respawn:
        return [node]

    def exited(event, context):
        if context.is_shutdown or not respawns(spec, event.returncode):
            return None
        return [TimerAction(period=RESPAWN_DELAY, actions=node_action(spec, args))]

    return [node, RegisterEventHandler(OnProcessExit(target_action=node, on_exit=exited))]


def launch_nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    args = BringupArgs.from_strings(values)
    os.makedirs(args.run_dir, exist_ok=True)
    transport = [
        SetEnvironmentVariable(name, value)
        for name, value in transport_settings(os.environ).items()
    ]
    return transport + [action for spec in graph(args) for action in node_action(spec, args)]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in LAUNCH_ARGUMENTS.items()
        ]
        + [OpaqueFunction(function=launch_nodes)]
    )
