"""The package's shape shows its architecture: layers whose imports only point down, ROS only
where ROS belongs, and one table of executables that everything is built from."""

from __future__ import annotations

import ast
import glob
import os
import subprocess
import sys

from conftest import REPO, import_without
from pamiq.executables import EXECUTABLES, executable_of
from pamiq.tools.graph import node_command

PACKAGE = os.path.join(REPO, 'ros2_ws', 'src', 'pamiq', 'pamiq')
# Top to bottom: a module may import from its own layer and the layers below it.
LAYERS = (
    'nodes', 'tools', 'ros',  # the ROS nodes, the pamiq command, the ROS glue
    'evaluation', 'learning', 'doom', 'vrchat', 'media', 'storage',  # domains, no ROS
    'shared',  # the modules at the package's top
)  # fmt: skip
# Layers that must run without any ROS package (plain Python: tests, benchmarks, offline use).
ROS_FREE = ('evaluation', 'learning', 'doom', 'vrchat', 'media', 'storage', 'shared')
ROS_PACKAGES = {
    'rclpy', 'rcl_interfaces', 'rosidl_runtime_py', 'builtin_interfaces', 'ament_index_python',
    'sensor_msgs', 'std_msgs', 'geometry_msgs', 'std_srvs', 'diagnostic_msgs', 'rosgraph_msgs',
    'launch', 'launch_ros', 'rosbags', 'cv_bridge',
}  # fmt: skip


def layer_of(module: str) -> str:
    """'pamiq.nodes.agent_node' (or 'pamiq.nodes') -> 'nodes'; a module directly under pamiq is
    'shared'."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else 'shared'


def modules() -> dict[str, str]:
    """Module name -> path, for every module of the package."""
    found = {}
    for path in glob.glob(os.path.join(PACKAGE, '**', '*.py'), recursive=True):
        relative = os.path.relpath(path, os.path.dirname(PACKAGE))[: -len('.py')]
        found[relative.replace(os.sep, '.').removesuffix('.__init__')] = path
    return found


def imports(path: str) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    with open(path) as stream:
        tree = ast.parse(stream.read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f'{node.module}.{alias.name}' for alias in node.names)
    return names


def test_the_package_is_grouped_by_layer():
    found = {layer_of(m) for m in modules()}
    assert found == set(LAYERS)
    # Only the vocabulary, the settings, the run-directory layout and the executables stay at
    # the top; everything else lives in the folder that says what it is.
    top = {m for m in modules() if layer_of(m) == 'shared'}
    assert top == {
        'pamiq', 'pamiq.vocabulary', 'pamiq.settings', 'pamiq.run_dir', 'pamiq.executables',
    }  # fmt: skip
    nodes = {m.rsplit('.', 1)[1] for m in modules() if layer_of(m) == 'nodes'} - {'nodes'}
    assert nodes == {
        'camera_node', 'doom_world_node', 'osc_actuator_node', 'agent_node', 'trainer_node',
        'recorder_node', 'audio_node', 'body_node',
    }  # fmt: skip


def test_imports_only_point_down_the_layers():
    known = modules()
    upward = []
    for module, path in known.items():
        rank = LAYERS.index(layer_of(module))
        for name in imports(path):
            if name in known and LAYERS.index(layer_of(name)) < rank:
                upward.append(f'{module} imports {name}')
    assert not upward, '\n'.join(upward)


def test_no_imports_run_in_a_circle():
    # Imports inside functions count too: a circle that only a late import hides is a circle.
    known = modules()
    edges = {m: {n for n in imports(path) if n in known and n != m} for m, path in known.items()}
    circles, done = [], set()

    def visit(module: str, path: list[str]) -> None:
        for name in sorted(edges[module]):
            if name in path:
                circles.append(' -> '.join([*path[path.index(name) :], name]))
            elif name not in done:
                visit(name, [*path, name])
        done.add(module)

    for module in sorted(known):
        if module not in done:
            visit(module, [module])
    assert not circles, '\n'.join(circles)


def test_architecture_md_lists_every_module():
    # Every module with code in it, by its path under pamiq/ (a package face that only names
    # its folder, an __init__.py holding a docstring at most, is no module to describe).
    with open(os.path.join(REPO, 'docs', 'architecture.md')) as stream:
        text = stream.read()
    missing = []
    for path in modules().values():
        relative = os.path.relpath(path, PACKAGE).replace(os.sep, '/')
        if is_face(path) or f'`{relative}`' in text:
            continue
        missing.append(relative)
    assert not missing, 'docs/architecture.md does not list: ' + ', '.join(sorted(missing))


def is_face(path: str) -> bool:
    with open(path) as stream:
        body = ast.parse(stream.read()).body
    docstring = (
        body[:1] and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    )
    return os.path.basename(path) == '__init__.py' and len(body) <= int(bool(docstring))


def test_nothing_below_the_ros_layer_imports_ros():
    offending = []
    for module, path in modules().items():
        if layer_of(module) in ROS_FREE:
            for name in imports(path):
                if name.split('.')[0] in ROS_PACKAGES:
                    offending.append(f'{module} imports {name}')
    assert not offending, '\n'.join(offending)


def test_the_learning_and_storage_layers_import_without_rclpy(tmp_path):
    # A Python whose rclpy cannot be imported: learning and storage still work.
    modules = (
        'pamiq.learning.learner, pamiq.learning.curiosity_policy, '
        'pamiq.learning.random_policy, pamiq.storage.checkpoint, pamiq.doom.game, '
        'pamiq.vrchat.osc, pamiq.media.video, pamiq.settings, pamiq.run_dir, pamiq.vocabulary'
    )
    result = import_without('rclpy', modules, tmp_path)
    assert result.returncode == 0, result.stderr


def test_one_table_of_executables_builds_scripts_entry_points_and_command_lines():
    scripts = os.path.join(REPO, 'ros2_ws', 'src', 'pamiq', 'scripts')
    links = {name for name in os.listdir(scripts) if os.path.islink(os.path.join(scripts, name))}
    assert links == set(EXECUTABLES)
    for name in links:
        assert os.readlink(os.path.join(scripts, name)) == 'node_wrapper'
    for name, module in EXECUTABLES.items():
        assert executable_of(module) == name
        assert os.path.isfile(os.path.join(os.path.dirname(PACKAGE), *module.split('.')) + '.py')
    command = node_command('trainer_node', 'trainer', 'pamiq', [])
    assert command[1:3] == ['-m', EXECUTABLES['trainer_node']]
    # The console scripts pip wrote come from the same table.
    for name, module in EXECUTABLES.items():
        with open(os.path.join(sys.prefix, 'bin', name)) as stream:
            assert f'from {module} import main' in stream.read(), name


def test_nodes_without_learning_start_without_torch():
    # Importing torch takes seconds: the world, sense, actuator and recorder nodes and a random
    # agent go without it (only the curiosity agent and the trainer learn).
    code = (
        'import sys\n'
        'from pamiq.nodes import agent_node, audio_node, body_node, camera_node, '
        'doom_world_node, osc_actuator_node, recorder_node\n'
        'agent_node.make_policy(agent_node.AgentConfig(policy="random"))\n'
        'print("torch" in sys.modules)'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == 'False', result.stdout + result.stderr
