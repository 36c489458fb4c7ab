"""ament_python package for pamiq; installs with colcon and with plain pip."""

from glob import glob
import os
import runpy

from setuptools import find_packages, setup

package_name = 'pamiq'
HERE = os.path.dirname(os.path.abspath(__file__))
# One executable per node, as in demo_nodes_py, plus the `pamiq` CLI: pamiq/executables.py is
# the one table of them (read as a file: the package itself is not importable yet).
EXECUTABLES = runpy.run_path(os.path.join(HERE, 'pamiq', 'executables.py'))['EXECUTABLES']


def here(pattern):
    """Glob relative to this file, so pip and colcon builds find the same files."""
    return sorted(os.path.relpath(p, HERE) for p in glob(os.path.join(HERE, pattern)))


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        ('share/' + package_name + '/launch', here('launch/*.launch.py')),
        ('share/' + package_name + '/config', here('config/*.yaml') + here('config/*.xml')),
        # colcon puts console scripts in lib/pamiq through setup.cfg; pip ignores that and
        # only writes bin/, so the same executables also travel as data files (which keep
        # their executable bit) for `ros2 run` / `ros2 launch` in a pip-installed prefix.
        ('lib/' + package_name, ['scripts/' + name for name in EXECUTABLES]),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='pamiq developers',
    maintainer_email='pamiq@example.com',
    description='P-AMI<Q> curiosity-driven agent for VRChat as a ROS 2 node graph',
    license='MIT',
    entry_points={
        'console_scripts': [f'{name} = {module}:main' for name, module in EXECUTABLES.items()],
    },
)
