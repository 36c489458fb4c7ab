#!/bin/bash
# Source ROS 2 and the pamiq workspace, then run the command (default: the bring-up launch).
set -e
source "/opt/ros/${ROS_DISTRO:-jazzy}/setup.bash"
source /pamiq/ros2_ws/install/setup.bash
exec "$@"
