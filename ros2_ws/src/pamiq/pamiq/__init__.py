"""pamiq: P-AMI<Q>, a curiosity-driven autonomous agent for VRChat as a ROS 2 node graph."""

__version__ = '0.1.0'
