"""Both install paths: colcon (a ROS 2 workspace) and pip (this venv) put pamiq where ROS looks."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

EXECUTABLES = ('camera_node', 'osc_actuator_node', 'doom_world_node', 'agent_node', 'pamiq')


def check_prefix(prefix: str) -> None:
    for name in EXECUTABLES:
        path = os.path.join(prefix, 'lib', 'pamiq', name)
        assert os.path.isfile(path) and os.access(path, os.X_OK), path
    share = os.path.join(prefix, 'share', 'pamiq')
    for relative in (
        'package.xml',
        'launch/bringup.launch.py',
        'config/pamiq.yaml',
        'config/fastdds_loopback.xml',
    ):
        assert os.path.isfile(os.path.join(share, relative)), relative
    assert os.path.isfile(
        os.path.join(prefix, 'share', 'ament_index', 'resource_index', 'packages', 'pamiq')
    )


def test_pip_install_puts_executables_where_ros2_run_looks():
    check_prefix(sys.prefix)
    # The lib/pamiq wrapper runs with this prefix's interpreter, from any working directory.
    result = subprocess.run(
        [os.path.join(sys.prefix, 'lib', 'pamiq', 'pamiq'), '--version'],
        capture_output=True,
        text=True,
        cwd='/',
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'pamiq 0.1.0'


def test_colcon_build_installs_an_ament_python_package(tmp_path):
    colcon = os.path.join(sys.prefix, 'bin', 'colcon')  # a pinned requirement of the venv
    result = subprocess.run(
        [
            colcon,
            '--log-base',
            str(tmp_path / 'log'),
            'build',
            '--base-paths',
            os.path.join(REPO, 'ros2_ws', 'src'),
            '--build-base',
            str(tmp_path / 'build'),
            '--install-base',
            str(tmp_path / 'install'),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'Finished <<< pamiq' in result.stdout
    prefix = tmp_path / 'install' / 'pamiq'
    check_prefix(str(prefix))
    # Sourcing the workspace makes its pamiq the one that runs (not the venv's copy).
    script = (
        f'. {tmp_path}/install/setup.sh && {prefix}/lib/pamiq/pamiq --version'
        ' && python3 -c "import pamiq; print(pamiq.__file__)"'
    )
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ['PATH'])
    result = subprocess.run(
        ['sh', '-c', script], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    version, module = result.stdout.splitlines()
    assert version == 'pamiq 0.1.0'
    assert module.startswith(str(prefix)), module
