"""The container files can't be built here (no Docker engine): check what can be checked."""

from __future__ import annotations

import os
import shlex

from conftest import REPO
import yaml

DOCKERFILE = os.path.join(REPO, 'docker', 'Dockerfile')
DOCUMENTED_COMMAND = ['ros2', 'launch', 'pamiq', 'bringup.launch.py']


def instructions() -> list[tuple[str, str]]:
    lines, current = [], ''
    with open(DOCKERFILE) as stream:
        for raw in stream:
            line = raw.rstrip('\n')
            if not current and (not line.strip() or line.lstrip().startswith('#')):
                continue
            current += line.rstrip('\\').strip() + ' '
            if not line.endswith('\\'):
                keyword, _, rest = current.strip().partition(' ')
                lines.append((keyword.upper(), rest.strip()))
                current = ''
    return lines


def test_dockerfile_base_copies_and_command():
    parsed = instructions()
    assert parsed[0] == ('FROM', 'ros:jazzy')
    for keyword, rest in parsed:
        if keyword == 'COPY':
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert os.path.exists(os.path.join(REPO, source)), (
                    f'COPY {source}: not in the repository'
                )
    cmd = [rest for keyword, rest in parsed if keyword == 'CMD'][-1]
    assert yaml.safe_load(cmd) == DOCUMENTED_COMMAND
    entrypoint = yaml.safe_load([rest for keyword, rest in parsed if keyword == 'ENTRYPOINT'][-1])
    assert entrypoint == ['/entrypoint.sh']
    assert os.access(os.path.join(REPO, 'docker', 'entrypoint.sh'), os.X_OK)
    args = {rest.split('=')[0] for keyword, rest in parsed if keyword == 'ARG'}
    assert {'TORCH_VERSION', 'TORCH_INDEX'} <= args  # CPU by default, CUDA as a build argument
    assert any('colcon build' in rest for keyword, rest in parsed if keyword == 'RUN')
    assert any('rosdep install' in rest for keyword, rest in parsed if keyword == 'RUN')
    with open(os.path.join(REPO, 'README.md')) as stream:
        assert ' '.join(DOCUMENTED_COMMAND) in stream.read()


def test_compose_runs_the_documented_graph():
    with open(os.path.join(REPO, 'docker', 'compose.yaml')) as stream:
        compose = yaml.safe_load(stream)
    default = compose['services']['pamiq']
    assert default['build']['dockerfile'] == 'docker/Dockerfile'
    assert default['command'][:4] == DOCUMENTED_COMMAND
    vrchat = compose['services']['pamiq-vrchat']
    assert vrchat['network_mode'] == 'host' and vrchat['devices']
