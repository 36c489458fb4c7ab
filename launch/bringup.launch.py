"""Bring up the pamiq graph: ros2 launch pamiq bringup.launch.py [world:=doom|vrchat] ...

The node list comes from pamiq.tools.graph, the same definition `pamiq up` uses without launch.
"""

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from pamiq.tools.graph import LAUNCH_ARGUMENTS, BringupArgs, graph

from launch import LaunchDescription


def launch_nodes(context):
    values = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    args = BringupArgs.from_strings(values)
    return [
        Node(
            package='pamiq',
            executable=spec.executable,
            name=spec.name,
            namespace=args.namespace,
            parameters=[args.params_file, spec.parameters],
            respawn=spec.respawn,
            output='screen',
            # Let the actuator send its reset before launch escalates to SIGTERM.
            sigterm_timeout='5',
        )
        for spec in graph(args)
    ]


def generate_launch_description():
    return LaunchDescription(
        [
            DeclareLaunchArgument(name, default_value=default, description=description)
            for name, (default, description) in LAUNCH_ARGUMENTS.items()
        ]
        + [OpaqueFunction(function=launch_nodes)]
    )
