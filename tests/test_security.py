"""Security defaults: loopback binds, no code execution from received data, validated paths."""

from __future__ import annotations

import glob
import os
import re

from conftest import REPO
from rosgraph import NodeProcess
import yaml

PACKAGE = os.path.join(REPO, 'ros2_ws', 'src', 'pamiq', 'pamiq')


def sources() -> dict[str, str]:
    return {
        path: open(path).read()
        for path in glob.glob(os.path.join(PACKAGE, '**', '*.py'), recursive=True)
    }


def test_nothing_received_is_unpickled_or_executed():
    for path, text in sources().items():
        assert not re.search(r'\bimport pickle\b|pickle\.loads?\(', text), path
        # torch.load unpickles; safetensors.torch.load does not.
        assert not re.search(r'(?<!safetensors\.)torch\.load\((?![^)]*weights_only=True)', text), (
            path
        )
        assert not re.search(r'(?<![.\w])(eval|exec)\(', text), path  # model.eval() is fine


def test_every_server_binds_loopback_by_default():
    with open(os.path.join(REPO, 'config', 'pamiq.yaml')) as stream:
        params = yaml.safe_load(stream)
    assert params['/**/world']['ros__parameters']['osc_host'] == '127.0.0.1'
    assert params['/**/osc_actuator']['ros__parameters']['osc_host'] == '127.0.0.1'
    with open(os.path.join(REPO, 'config', 'fastdds_loopback.xml')) as stream:
        assert '<address>127.0.0.1</address>' in stream.read()
    from pamiq.nodes.doom_world_node import WorldConfig

    assert WorldConfig().osc_host == '127.0.0.1'  # the default the world binds without a YAML


def test_an_unusable_run_dir_is_refused_with_its_name(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a directory')
    trainer = NodeProcess('trainer_node', 'trainer', {'run_dir': str(blocker / 'run')})
    assert trainer.process.wait(60) == 1
    assert "parameter 'run_dir': cannot create" in trainer.output()
